"""Translator stage: text in one language -> text in another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from babelfish.core.utterance import Failure

Context = Sequence[tuple[str, str]]  # the room's earlier lines, each as (source-language, target-language)


class Translator(Protocol):
    name: str

    async def translate(self, text: str, source: str, target: str, context: Context = ()) -> str: ...


class StreamingTranslator(Translator, Protocol):
    """A translator that hands on each finished clause while it writes the next (the llama.cpp ones)."""

    def stream(self, text: str, source: str, target: str, context: Context = ()) -> AsyncIterator[str]: ...


class Clauses:
    """One translation arriving clause by clause: playback speaks each clause as it comes, captions and
    the transcript take the whole text once it is done. Several listeners may read it, each from the start.
    Bounded by the translator's output limit (``translator.max_tokens``)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.done = False
        self.error: str | None = None
        self.failure: Failure | None = None
        self._changed = asyncio.Event()

    @property
    def text(self) -> str:
        return " ".join(self.parts)

    def add(self, clause: str) -> None:
        self.parts.append(clause)
        self._changed.set()

    def finish(self, error: str | None = None, failure: Failure | None = None) -> None:
        self.done, self.error, self.failure = True, error, failure
        self._changed.set()

    async def wait(self) -> str:
        while not self.done:
            self._changed.clear()
            await self._changed.wait()
        return self.text

    async def __aiter__(self) -> AsyncIterator[str]:
        i = 0
        while True:
            while i < len(self.parts):
                yield self.parts[i]
                i += 1
            if self.done:
                return
            self._changed.clear()
            await self._changed.wait()
