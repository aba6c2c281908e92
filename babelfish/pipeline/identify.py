"""Following the language a caller actually speaks (``languages.detect``).

Each utterance's language is identified by the recognizer in its own pass (``recognize.among``), among a
few candidates: the room's languages, plus the menu's while the caller has not chosen. This module only
decides what the leg does with those answers:

- ``confirm``: the caller chose (menu, numbers map, remembered); an utterance confidently in another
  candidate language is recognized and translated as that language, and ``switch_after`` of them in a
  row switch the leg itself (what it hears, its notices, the remembered choice).
- ``auto``: the caller did not choose; the first utterance long enough to identify decides, whatever its
  confidence, then the leg is followed as in ``confirm``.

Short utterances (``min_speech_s``) are not identified at all and keep the leg's language.
"""

from __future__ import annotations

from collections.abc import Iterable

from babelfish.config.settings import LanguageSettings
from babelfish.core.languages import same_language
from babelfish.pipeline.recognize import Heard


class LanguageFollower:
    """One leg's language decisions."""

    def __init__(self, settings: LanguageSettings, *, decided: bool = True) -> None:
        self.settings = settings
        self.decided = decided or settings.detect == "off"  # False: the leg's language is a first guess
        self._streak: tuple[str, int] | None = None  # (another language, utterances in a row)

    @property
    def on(self) -> bool:
        return self.settings.detect != "off"

    def candidates(self, current: str, room: Iterable[str], menu: Iterable[str], seconds: float) -> list[str]:
        """The languages to tell apart in an utterance of ``seconds`` (none: do not identify it)."""
        if not self.on or seconds < self.settings.min_speech_s:
            return []
        tags = [current, *room, *([] if self.decided else menu)]
        out: list[str] = []
        for tag in tags:
            if not any(same_language(tag, seen) for seen in out):
                out.append(tag)
        return out if len(out) > 1 else []

    @property
    def min_confidence(self) -> float:
        """Undecided, the most likely language is taken whatever its share; decided, only a confident one."""
        return self.settings.min_confidence if self.decided else 0.0

    def observe(self, current: str, heard: Heard) -> str | None:
        """After an utterance: the language the leg switches to, or None to stay."""
        if heard.detected is None or not heard.text:
            return None
        if not self.decided:
            self.decided = True
            self._streak = None
            return None if same_language(heard.language, current) else heard.language
        if same_language(heard.language, current):
            self._streak = None
            return None
        count = self._streak[1] + 1 if self._streak and same_language(self._streak[0], heard.language) else 1
        if count >= self.settings.switch_after:
            self._streak = None
            return heard.language
        self._streak = (heard.language, count)
        return None
