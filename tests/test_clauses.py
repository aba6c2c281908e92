"""A streaming translator's clauses reach the listener's ear as they are written, the room's recent lines
reach the translator as context, and captions and the transcript keep the whole translation (pipeline
unit tests: two sessions in a room, driven through ``LegSession.interpret``, no server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from babelfish.config.pipeline import InterpretationSettings
from babelfish.config.settings import Settings
from babelfish.core.events import CaptionHub
from babelfish.core.rooms import Leg, Room
from babelfish.pipeline.playback import Playback
from babelfish.pipeline.segment import Speech
from babelfish.pipeline.stream import LegSession
from babelfish.pipeline.translate import Clauses

from .conftest import RecordedSynthesizer, double_engines


class ClauseTranslator:
    """Test double: writes ``[target] <text>`` in three clauses, ``gap_s`` apart, and notes each context."""

    name = "test-streaming-translator"

    def __init__(self, gap_s: float = 0.3) -> None:
        self.gap_s = gap_s
        self.contexts: list[list[tuple[str, str]]] = []
        self.written: list[float] = []  # when each clause was handed on

    async def translate(self, text: str, source: str, target: str, context: object = ()) -> str:
        return " ".join([clause async for clause in self.stream(text, source, target, context)])  # type: ignore[arg-type]

    async def stream(self, text: str, source: str, target: str,
                     context: list[tuple[str, str]] = ()) -> AsyncIterator[str]:  # type: ignore[assignment]
        self.contexts.append(list(context))
        for part in (f"[{target}] one,", "two,", f"{text}."):
            await asyncio.sleep(self.gap_s)
            self.written.append(time.monotonic())
            yield part


def two_sessions(tmp_path, translator: object, mode: str = "consecutive", voice: object | None = None,
                 ) -> tuple[LegSession, LegSession, list[float], CaptionHub]:
    settings = Settings(models_dir=tmp_path, playback_lead_ms=100,
                        interpretation=InterpretationSettings(mode=mode))
    engines = double_engines(voice, translator=translator)
    hub = CaptionHub()
    room = Room(id="r1")
    heard: list[float] = []

    async def send_audio(_: bytes) -> None:
        heard.append(time.monotonic())

    async def nowhere() -> None:
        return None

    sessions = []
    for leg_id, language in (("en-leg", "en-GB"), ("de-leg", "de-DE")):
        leg = Leg(id=leg_id, caller=leg_id, language=language, room=room)
        room.legs.append(leg)
        playback = Playback(send_audio if language == "de-DE" else _discard, nowhere, 16000, lead_s=0.1)
        leg.session = LegSession(leg, engines, hub, settings, 16000, playback)
        leg.session.playback.start()
        sessions.append(leg.session)
    return sessions[0], sessions[1], heard, hub


async def _discard(_: bytes) -> None:
    return None


def utterance(seconds: float = 1.0) -> Speech:
    now = time.monotonic()
    return Speech(np.full(int(16000 * seconds), 0.1, dtype=np.float32), 16000, started_at=now - seconds,
                  ended_at=now, detected_at=now)


async def test_the_listener_hears_the_first_clause_before_the_translation_is_written(tmp_path) -> None:
    translator = ClauseTranslator(gap_s=0.3)
    speaker, listener, heard, hub = two_sessions(tmp_path, translator)
    captions = hub.subscribe()
    record = await speaker.interpret(utterance())
    for _ in range(100):
        if len(translator.written) == 3 and heard:
            break
        await asyncio.sleep(0.05)
    assert heard and heard[0] < translator.written[-1] - 0.2, "the first clause played only after the last"
    final = None
    async with asyncio.timeout(5):
        while final is None:
            event = await captions.get()
            if event["type"] == "final" and event.get("listener") == "de-leg":
                final = event
    assert final["translation"] == f"[de-DE] one, two, {record.source_text}."
    while not record.translations.get("de-DE"):
        await asyncio.sleep(0.05)
    assert record.translations["de-DE"] == final["translation"]
    await speaker.close(drain_s=5)
    await listener.close(drain_s=5)


async def test_the_rooms_recent_lines_are_the_next_translations_context(tmp_path) -> None:
    translator = ClauseTranslator(gap_s=0.01)
    speaker, listener, _heard, _hub = two_sessions(tmp_path, translator)
    first = await speaker.interpret(utterance(1.0))
    async with asyncio.timeout(10):
        while not speaker.leg.room.lines:  # remembered once it has been played and written
            await asyncio.sleep(0.05)
    await listener.interpret(utterance(0.5))  # the German caller answers: translated de -> en
    async with asyncio.timeout(5):
        while len(translator.contexts) < 2:
            await asyncio.sleep(0.01)
    assert translator.contexts[0] == []
    said = f"[de-DE] one, two, {first.source_text}."
    assert translator.contexts[1] == [(said, first.source_text)]  # German text first: it is the source now
    await speaker.close(drain_s=5)
    await listener.close(drain_s=5)


async def test_simultaneous_each_clause_is_translated_knowing_the_clauses_before_it(tmp_path) -> None:
    """Clauses of one turn come faster than they play: the second is translated once the first is
    written, with it as context, long before the listener has heard the first."""
    translator = ClauseTranslator(gap_s=0.05)
    one_second = RecordedSynthesizer(np.full(8000, 0.1, dtype=np.float32), 8000)
    speaker, listener, _heard, _hub = two_sessions(tmp_path, translator, mode="simultaneous", voice=one_second)
    first = await speaker.interpret(utterance(1.0))
    second = await speaker.interpret(utterance(1.5))
    async with asyncio.timeout(5):
        while len(translator.contexts) < 2:
            await asyncio.sleep(0.01)
    assert translator.contexts[0] == []
    assert translator.contexts[1] == [(first.source_text, f"[de-DE] one, two, {first.source_text}.")]
    assert listener.playback.playing or not listener.playback.idle  # the first is still being heard
    await speaker.close(drain_s=10)
    await listener.close(drain_s=10)
    assert [line.text for line in speaker.leg.room.lines] == [first.source_text, second.source_text]  # once each


async def test_clauses_are_read_whole_by_every_listener() -> None:
    clauses = Clauses()

    async def read() -> list[str]:
        return [c async for c in clauses]

    readers = [asyncio.create_task(read()) for _ in range(2)]
    clauses.add("a,")
    await asyncio.sleep(0)
    clauses.add("b.")
    clauses.finish()
    assert await asyncio.gather(*readers) == [["a,", "b."], ["a,", "b."]]
    assert await clauses.wait() == "a, b."


def test_a_rooms_context_grows_and_moves_on_in_steps() -> None:
    room = Room(id="r")
    for i in range(9):
        room.remember("en", f"e{i}", {"de": f"d{i}"} if i != 2 else {})
    assert [a for a, _ in room.context("en", "de", 4)] == ["e4", "e5", "e6", "e7", "e8"]
    assert room.context("de", "en", 4)[0] == ("d4", "e4")  # seen from the other direction
    assert room.context("en", "de", 0) == []
    small = Room(id="s")
    small.remember("en", "e0", {"de": "d0"})
    small.remember("de", "d1", {"en": "e1"})
    small.remember("en", "e2", {})  # not translated: left out
    assert small.context("en", "de", 4) == [("e0", "d0"), ("e1", "d1")]


def test_chinese_and_japanese_clauses_end_at_their_own_punctuation_without_spaces() -> None:
    from babelfish.engines.llama import take_clause
    from babelfish.pipeline.synthesize import sentences

    assert take_clause("東京に行きます。明日の会議は") == ("東京に行きます。", "明日の会議は")
    assert take_clause("我明天早上，给你") == ("我明天早上，", "给你")
    assert take_clause("好，") == ("", "好，")  # too short to speak alone
    assert sentences("東京に行きます。明日の会議は三時からです。") == ["東京に行きます。", "明日の会議は三時からです。"]


async def test_a_voice_that_writes_whole_pieces_speaks_the_first_words_of_a_turn_on_their_own() -> None:
    """Kokoro writes a whole piece before any of it plays: the listener waits only for the first few words,
    cut at a comma where there is one; later clauses go whole (they are written while the first plays)."""
    from babelfish.core.first_words import FIRST_WORDS
    from babelfish.pipeline.synthesize import first_piece, speak_clauses

    class WholePieces:
        name, first_piece_words = "whole-pieces", 4

        def __init__(self) -> None:
            self.said: list[str] = []
            self.first_words: list[bool] = []

        async def synthesize(self, text: str) -> tuple[np.ndarray, int]:
            self.said.append(text)
            self.first_words.append(FIRST_WORDS.speaking)
            return np.zeros(160, dtype=np.float32), 8000

    voice = WholePieces()

    class Library:
        def get(self, language: str) -> WholePieces:
            return voice

    async def clauses() -> AsyncIterator[str]:
        for clause in ("Entschuldigung, aber ich konnte die Person nicht finden,", "die Sie rufen möchten."):
            yield clause

    async for _ in speak_clauses(Library(), "de", clauses(), 8000):
        pass
    assert voice.said == ["Entschuldigung, aber ich konnte", "die Person nicht finden,", "die Sie rufen möchten."]
    # translators writing on give way to the first piece only (babelfish/core/first_words.py)
    assert voice.first_words == [True, False, False] and not FIRST_WORDS.speaking
    assert first_piece("Ja, das ist wirklich richtig so, wie du sagst.", 4) == ["Ja, das ist wirklich richtig so,",
                                                                              "wie du sagst."]
    assert first_piece("Das ist wirklich ganz genau richtig so.", 4) == ["Das ist wirklich ganz", "genau richtig so."]
    assert first_piece("Well, I think we should go there now.", 4) == ["Well, I think we", "should go there now."]
    assert first_piece("Die Konferenz wurde verlängert.", 4) == ["Die Konferenz wurde verlängert."]


def test_after_the_first_piece_a_long_sentence_goes_in_pieces_of_at_most_twice_its_words() -> None:
    from babelfish.pipeline.synthesize import first_piece

    sentence = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
    pieces = first_piece(sentence, 4)
    assert pieces[0] == "one two three four" and all(len(p.split()) <= 10 for p in pieces)
    assert " ".join(pieces) == sentence
