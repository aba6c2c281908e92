"""LocalAgreement (whisper_streaming's policy, Macháček et al. 2023) on one clause's successive hypotheses: a
word is stable once two consecutive recognitions of the growing audio agree on it and on every word before
it. Stable words never change again; the rest of the latest hypothesis is tentative. Written here because
it is a dozen lines over our own recognizer, and whisper_streaming is not a package on PyPI."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\w']+")


def _key(word: str) -> str:
    return _WORD.sub("", word.lower())


class LocalAgreement:
    """The stable prefix of a clause in progress; :meth:`reset` when the clause is handed on."""

    def __init__(self) -> None:
        self.stable: list[str] = []
        self._last: list[str] = []

    def update(self, hypothesis: str) -> tuple[str, str]:
        """A new recognition of the clause so far: returns (stable text, tentative text)."""
        words = hypothesis.split()
        agreed = 0
        for a, b in zip(self._last, words, strict=False):
            if _key(a) != _key(b):
                break
            agreed += 1
        if agreed > len(self.stable):
            self.stable = words[:agreed]
        self._last = words
        # the words after the stable ones, by position (a hypothesis that rewrote a stable word keeps it)
        return " ".join(self.stable), " ".join(words[len(self.stable):])

    def reset(self) -> None:
        self.stable, self._last = [], []
