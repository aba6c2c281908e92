"""Synthesizer stage: text -> audio at the listener's rate, sentence by sentence, in exact 20 ms frames."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Protocol

import numpy as np

from babelfish.core import audio
from babelfish.core.first_words import FIRST_WORDS
from babelfish.core.worker import EngineError


class SynthesisTimeout(EngineError):
    """A sentence took longer than its time limit to synthesize."""


class Synthesizer(Protocol):
    name: str

    async def synthesize(self, text: str) -> tuple[np.ndarray, int]: ...


class VoiceLibrary(Protocol):
    """The voice for each language (:class:`babelfish.engines.voices.Voices`, or Ray Serve's)."""

    def get(self, language: str) -> Synthesizer: ...


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|(?<=[。！？])\s*")  # Chinese and Japanese put no space after


def sentences(text: str) -> list[str]:
    """Split a translation into sentences so the first can play while the next is synthesized."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


_BREAK = re.compile(r"(?<=[,;:、，；：])\s*")


def first_piece(sentence: str, words: int) -> list[str]:
    """A sentence's first words as a piece of their own, where a voice writes a whole piece before any of it
    plays (Kokoro): the listener waits only for those. Cut after a comma within ``words + 2`` words, else
    after ``words`` words; a sentence barely longer than that stays whole (its synthesis is short anyway).
    The rest follows in pieces of at most twice that, so each is written while the one before plays."""
    parts = sentence.split()
    if words <= 0 or len(parts) <= words + 2:
        return [sentence]
    head, rest = " ".join(parts[:words]), " ".join(parts[words:])
    for match in _BREAK.finditer(sentence):
        before = sentence[: match.start()].strip()
        if 2 <= len(before.split()) <= words + 2 and sentence[match.end():].strip():
            head, rest = before, sentence[match.end():].strip()
            break
    return [head, *_pieces(rest, 2 * words)]


def _pieces(text: str, words: int) -> list[str]:
    """``text`` in pieces of at most ``words`` words (and no piece of a word or two left dangling)."""
    parts = text.split()
    if len(parts) <= words + 2:
        return [text]
    return [" ".join(parts[:words]), *_pieces(" ".join(parts[words:]), words)]


async def speak(synth: Synthesizer, text: str, rate: int, timeout_s: float | None = None,
                first: bool = True) -> AsyncGenerator[bytes]:
    """Yield the PCM of ``text`` at ``rate``, one sentence at a time, each cut into whole 20 ms frames. A
    sentence whose synthesis takes longer than ``timeout_s`` raises :class:`EngineError`. ``first``: this is
    the start of what the listener waits for, so a voice with ``first_piece_words`` speaks the first words
    on their own (:func:`first_piece`)."""
    native = rate in getattr(synth, "rates", ())
    pieces = sentences(text)
    if first and pieces:
        pieces[:1] = first_piece(pieces[0], getattr(synth, "first_piece_words", 0))
    for i, sentence in enumerate(pieces):
        # the first piece is what the listener waits for: translators writing on give it the cores
        waited_for = FIRST_WORDS.synthesizing() if first and i == 0 else contextlib.nullcontext()
        try:
            async with asyncio.timeout(timeout_s):
                with waited_for:
                    if native:
                        pcm = await synth.synthesize_pcm(sentence, rate)  # type: ignore[attr-defined]
                    else:
                        samples, sample_rate = await synth.synthesize(sentence)
                        pcm = audio.float_to_pcm(audio.resample(samples, sample_rate, rate))
        except TimeoutError:
            raise SynthesisTimeout(f"synthesizer timed out after {timeout_s:g} s") from None
        yield b"".join(audio.frames(pcm, rate))


async def speak_clauses(voices: VoiceLibrary, language: str, clauses: AsyncIterable[str], rate: int,
                        timeout_s: float | None = None) -> AsyncIterator[bytes]:
    """:func:`speak_in` for a translation still being written: each clause is spoken as soon as it comes."""
    voice = voices.get(language)
    first = True
    async for clause in clauses:
        async with contextlib.aclosing(speak(voice, clause, rate, timeout_s, first)) as pieces:
            async for pcm in pieces:
                yield pcm
        first = False


async def speak_in(voices: VoiceLibrary, language: str, text: str, rate: int,
                   timeout_s: float | None = None) -> AsyncIterator[bytes]:
    """:func:`speak` with the voice looked up (and loaded) only once playback starts: when Vonage speaks the
    translations itself, no local voice is ever needed."""
    async with contextlib.aclosing(speak(voices.get(language), text, rate, timeout_s)) as pieces:
        async for pcm in pieces:
            yield pcm
