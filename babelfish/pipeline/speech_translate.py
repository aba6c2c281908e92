"""Speech-translation stage: one engine that recognizes and translates as the leg speaks (Azure's
TranslationRecognizer), in place of the recognizer and the translator.

It takes the leg's whole audio stream, not finished utterances: the service finds the utterances itself and
reports partial results while someone speaks and a final one (text and translations) per utterance. Results
are delivered on the event loop, whatever thread the engine's SDK calls back on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class SpeechTranslation:
    """One result of a speech-translation stream."""

    final: bool  # False: a partial result while the utterance goes on
    text: str = ""
    translations: dict[str, str] = field(default_factory=dict)  # listener language tag -> text
    offset_s: float = 0.0  # where the utterance starts in the leg's audio stream
    duration_s: float = 0.0
    error: str | None = None  # the stream failed (it stops; the call goes on without translations)


class TranslationStream(Protocol):
    """One leg's audio, going to the service for as long as the leg is connected."""

    async def start(self) -> None: ...

    def write(self, pcm: bytes) -> None:
        """16-bit mono PCM at the leg's rate; may be called from any thread."""

    def add_targets(self, targets: list[str]) -> None:
        """Listener languages to translate into from now on (a new partner)."""

    async def close(self) -> None:
        """End of the audio: the last utterance is finished, then the stream stops."""


class SpeechTranslator(Protocol):
    name: str

    def open(self, language: str, targets: list[str], rate: int,
             on_result: Callable[[SpeechTranslation], None]) -> TranslationStream:
        """A stream for a leg speaking ``language``, translated into ``targets``; ``on_result`` is called on
        the event loop that opened it."""
        ...
