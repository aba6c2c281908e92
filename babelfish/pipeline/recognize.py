"""Recognizer stage: speech -> text, in the leg's language or the one among a few it was spoken in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from babelfish.core import languages


@dataclass(frozen=True)
class Heard:
    """What a recognizer heard. ``language``: the tag the text was recognized in (the leg's, unless the
    utterance was identified as another candidate). ``detected``/``confidence``: the most likely candidate
    and its probability among the candidates; None when the language was not identified."""

    text: str
    language: str
    detected: str | None = None
    confidence: float | None = None
    probabilities: Mapping[str, float] = field(default_factory=dict)


class Recognizer(Protocol):
    name: str

    async def transcribe(self, samples: np.ndarray, rate: int, language: str, prompt: str = "") -> str:
        """``prompt``: what was said just before (the room's recent lines in this language), as a hint."""
        ...


@runtime_checkable
class IdentifyingRecognizer(Protocol):
    """A recognizer that also tells which of a few languages was spoken, in the same pass."""

    async def recognize(self, samples: np.ndarray, rate: int, language: str, prompt: str = "",
                        candidates: Sequence[str] = (), min_confidence: float = 1.0) -> Heard: ...


def among(probabilities: Mapping[str, float], candidates: Sequence[str], language: str,
          min_confidence: float) -> Heard:
    """Restrict a detector's ``probabilities`` (primary subtag -> p, over all languages it knows) to the
    ``candidates`` (BCP-47 tags) and renormalize. The text is to be recognized in the best candidate when
    its share is ``min_confidence`` or more, else in ``language``; ``text`` is left empty here."""
    shares: dict[str, float] = {}
    for tag in candidates:
        shares.setdefault(tag, probabilities.get(languages.primary(tag), 0.0))
    total = sum(shares.values())
    if total <= 0:
        return Heard("", language)
    shares = {tag: p / total for tag, p in shares.items()}
    best = max(shares, key=shares.__getitem__)
    confident = shares[best] >= min_confidence and not languages.same_language(best, language)
    return Heard("", best if confident else language, detected=best, confidence=shares[best], probabilities=shares)


async def recognize(recognizer: Recognizer, samples: np.ndarray, rate: int, language: str, prompt: str = "",
                    candidates: Sequence[str] = (), min_confidence: float = 1.0) -> Heard:
    """Recognize with language identification where the recognizer can and there is a choice."""
    if len(candidates) > 1 and isinstance(recognizer, IdentifyingRecognizer):
        return await recognizer.recognize(samples, rate, language, prompt, candidates, min_confidence)
    return Heard(await recognizer.transcribe(samples, rate, language, prompt), language)


