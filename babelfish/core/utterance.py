"""Utterance records: every finished utterance becomes one :class:`Utterance` (leg, language, times, source
text, translations, stage latencies, and what went wrong, typed as a :class:`Failure`). They are published on
the caption feed (:mod:`babelfish.core.events`) and kept in the transcript."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)


class Failure(StrEnum):
    """What went wrong with an utterance, by stage: the kind ``babelfish_errors_total`` counts."""

    RECOGNIZE_TIMEOUT = "recognize_timeout"
    RECOGNIZE_ERROR = "recognize_error"
    TRANSLATE_TIMEOUT = "translate_timeout"
    TRANSLATE_ERROR = "translate_error"
    SYNTHESIZE_TIMEOUT = "synthesize_timeout"
    SYNTHESIZE_ERROR = "synthesize_error"  # our voice, or Vonage's talk refused
    PLAYBACK_HUNG_UP = "playback_hung_up"  # the listener's socket closed while it played
    PLAYBACK_CLEARED = "playback_cleared"  # barge-in: the listener spoke over it
    PLAYBACK_DROPPED = "playback_dropped"  # too late to play (stale), or the listener's queue was full


@dataclass(frozen=True)
class Fault:
    """A failure and what it was, in words (the transcript keeps the words)."""

    kind: Failure
    text: str


@dataclass
class Utterance:
    id: str
    room: str
    leg: str
    language: str  # what it was recognized in: the leg's language, or the one identified (languages.detect)
    started_at: float  # wall clock (epoch seconds)
    ended_at: float
    source_text: str = ""
    translations: dict[str, str] = field(default_factory=dict)  # listener language -> text
    latencies: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    cut: bool = False
    speculated: bool = False  # recognition began at a pause, before the end of the turn was sure
    clause: bool = False  # simultaneous interpretation: a clause of a turn, handed on while the turn went on
    error: str | None = None  # in words
    failure: Failure | None = None  # its kind
    language_confidence: float | None = None  # the identified language's share among the candidates
    # the glossary: how many required renderings the translations were checked for, and those they lacked
    # ("de: Zuzahlung")
    terms_checked: int = 0
    terms_missed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latencies"] = {k: round(v, 4) for k, v in self.latencies.items()}
        data["failure"] = str(self.failure) if self.failure is not None else None
        return data

    def fail(self, fault: Fault, where: str = "") -> None:
        """Record the first thing that went wrong (``where``: e.g. the listener it went wrong for)."""
        if self.error is None:
            self.error, self.failure = f"{where}{fault.text}", fault.kind
