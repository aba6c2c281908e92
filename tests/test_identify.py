"""Language identification (``languages.detect``): the restriction to a few candidates, the follower's
decisions, the transcript column, and calls through the fake Vonage, with a scripted recognizer (fast)
and with Whisper on real recorded speech (e2e)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from babelfish.config.settings import LanguageSettings, Settings
from babelfish.core import audio
from babelfish.core.utterance import Utterance
from babelfish.devtools import corpus
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.pipeline.identify import LanguageFollower
from babelfish.pipeline.recognize import Heard, IdentifyingRecognizer, among, recognize
from babelfish.pipeline.stream import LegSession
from babelfish.server.serving import background_server
from babelfish.transcripts.store import TranscriptStore

from .conftest import EchoRecognizer, double_engines

PACE = 4.0
GERMAN, ENGLISH = "4915100000007", "447700900007"


# -- restriction and threshold ----------------------------------------------------------------------


def test_among_restricts_to_the_candidates_and_renormalizes() -> None:
    probs = {"en": 0.6, "de": 0.1, "nl": 0.3}  # the detector's favourite, Dutch, is not in the room
    heard = among(probs, ["de-DE", "en-GB"], "de-DE", min_confidence=0.8)
    assert heard.detected == "en-GB" and heard.confidence == pytest.approx(6 / 7)
    assert heard.language == "en-GB"  # confident: recognized as English
    assert sum(heard.probabilities.values()) == pytest.approx(1.0)
    unsure = among(probs, ["de-DE", "en-GB"], "de-DE", min_confidence=0.9)
    assert unsure.language == "de-DE" and unsure.detected == "en-GB"  # not sure enough: the leg's language
    assert among({}, ["de-DE", "en-GB"], "de-DE", 0.5) == Heard("", "de-DE")


async def test_recognize_identifies_only_where_the_recognizer_can_and_there_is_a_choice() -> None:
    plain = EchoRecognizer()
    assert not isinstance(plain, IdentifyingRecognizer)
    heard = await recognize(plain, np.zeros(8000, np.float32), 8000, "de-DE", "", ["de-DE", "en-GB"])
    assert heard.language == "de-DE" and heard.detected is None and heard.text.endswith("in de-DE")
    scripted = ScriptedRecognizer("en-GB")
    assert isinstance(scripted, IdentifyingRecognizer)
    one = await recognize(scripted, np.zeros(8000, np.float32), 8000, "de-DE", "", ["de-DE"])
    assert one.detected is None and scripted.identified == 0  # one candidate: nothing to tell apart


# -- the follower -------------------------------------------------------------------------------------


def heard(language: str, confidence: float = 0.99, text: str = "words") -> Heard:
    return Heard(text, language, detected=language, confidence=confidence)


def test_confirm_switches_after_two_confident_utterances_in_a_row() -> None:
    follower = LanguageFollower(LanguageSettings(detect="confirm", switch_after=2))
    assert follower.min_confidence == 0.9
    assert follower.observe("de-DE", heard("en-GB")) is None  # one: recognized as English, leg stays
    assert follower.observe("de-DE", heard("de-DE")) is None  # broken by German
    assert follower.observe("de-DE", heard("en-GB")) is None
    assert follower.observe("de-DE", heard("en-GB")) == "en-GB"  # two in a row
    assert follower.observe("en-GB", heard("fr-FR")) is None  # the streak starts again after a switch
    assert follower.observe("en-GB", heard("", text="")) is None  # silence neither breaks nor counts
    assert follower.observe("en-GB", heard("fr-FR")) == "fr-FR"
    assert follower.observe("fr-FR", Heard("mots", "fr-FR")) is None  # not identified: nothing to follow


def test_candidates_are_the_room_languages_plus_the_menu_while_undecided() -> None:
    confirm = LanguageFollower(LanguageSettings(detect="confirm", min_speech_s=0.8))
    assert confirm.candidates("de-DE", ["en-GB", "en-US"], ["fr-FR"], 2.0) == ["de-DE", "en-GB"]
    assert confirm.candidates("de-DE", ["en-GB"], [], 0.5) == []  # too short to identify
    assert confirm.candidates("de-DE", ["de-AT"], [], 2.0) == []  # one language in the room: no choice
    auto = LanguageFollower(LanguageSettings(detect="auto"), decided=False)
    assert auto.candidates("de-DE", [], ["en-GB", "de-DE", "fr-FR"], 2.0) == ["de-DE", "en-GB", "fr-FR"]
    assert auto.min_confidence == 0.0  # undecided: the most likely language is taken
    assert auto.observe("de-DE", heard("fr-FR", confidence=0.4)) == "fr-FR"  # the first utterance decides
    assert auto.decided and auto.min_confidence == 0.9
    assert auto.candidates("fr-FR", [], ["en-GB", "de-DE"], 2.0) == []  # decided, alone: nothing to tell apart
    off = LanguageFollower(LanguageSettings(detect="off"), decided=False)
    assert off.decided and off.candidates("de-DE", ["en-GB"], [], 5.0) == []


# -- the benchmark's arithmetic -----------------------------------------------------------------------------


def test_language_id_figures_count_pairs_buckets_switches_and_confusions() -> None:
    from babelfish.devtools.bench import language_id

    def clip(language: str, words: int) -> corpus.Clip:
        return corpus.Clip(path=Path("/nowhere"), text=" ".join(["w"] * words), language=language)

    items = [clip("en", 6), clip("en", 6), clip("de", 3), clip("de", 1)]
    probs = [{"en": 0.9, "de": 0.1}, {"en": 0.4, "de": 0.6}, {"en": 0.05, "de": 0.95}, {"de": 0.7, "en": 0.3}]
    result = language_id.figures(items, probs, min_confidence=0.9, languages=("en", "de"))
    pair = result["pairs"]["en-de"]
    assert pair["5+"] == {"n": 2, "accuracy": 50.0, "switch": 50.0, "false_switch": 0.0}
    assert pair["2-4"] == {"n": 1, "accuracy": 100.0, "switch": 100.0, "false_switch": 0.0}
    assert pair["1"] == {"n": 1, "accuracy": 100.0, "switch": 0.0, "false_switch": 0.0}  # 0.7 is not sure
    assert result["confusion"] == {"en": {"en": 1, "de": 1}, "de": {"en": 0, "de": 2}}
    assert language_id.summary(result) == {"accuracy_1": 100.0, "worst_1": 100.0, "accuracy_2-4": 100.0,
                                           "worst_2-4": 100.0, "accuracy_5+": 50.0, "worst_5+": 50.0}
    assert "en-de" in language_id.table(result)
    assert [language_id.bucket(t) for t in ("one", "a b", "a b c d", "a b c d e")] == ["1", "2-4", "2-4", "5+"]


def test_the_dev_and_test_clips_are_disjoint() -> None:
    from babelfish.devtools.bench import language_id

    try:
        dev, test = language_id.split(dev_per_bucket=5, test_per_bucket=10)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    assert dev and test and not {c.path for c in dev} & {c.path for c in test}
    assert {c.language for c in test} == set(language_id.LANGUAGES)


# -- the transcript -----------------------------------------------------------------------------------


def test_the_transcript_keeps_the_language_and_its_confidence_and_old_databases_get_the_column(
        tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # a database from before the column existed
        db.execute("CREATE TABLE utterances (id VARCHAR(32) PRIMARY KEY, call_id VARCHAR(64) NOT NULL, "
                   "leg_id VARCHAR(128) NOT NULL, number VARCHAR(64) NOT NULL, language VARCHAR(16) NOT NULL, "
                   "started_at FLOAT NOT NULL, ended_at FLOAT NOT NULL, source_text TEXT NOT NULL, "
                   "translations TEXT NOT NULL, latencies TEXT NOT NULL, error TEXT)")
    store = TranscriptStore(f"sqlite:///{path}")
    store.call_started("room-1", "room-1", 1.0)
    store.add_utterance("room-1", Utterance(id="u1", room="room-1", leg="a", language="en-GB", started_at=1,
                                            ended_at=2, source_text="hello", language_confidence=0.97), "4915")
    store.add_utterance("room-1", Utterance(id="u2", room="room-1", leg="a", language="de-DE", started_at=3,
                                            ended_at=4, source_text="hallo"), "4915")
    said = store.get_call("room-1")["utterances"]
    assert [(u["language"], u["language_confidence"]) for u in said] == [("en-GB", 0.97), ("de-DE", None)]
    store.close()
    TranscriptStore(f"sqlite:///{path}").close()  # opening it again adds nothing twice


# -- through the fake Vonage, with a scripted recognizer -------------------------------------------------


class ScriptedRecognizer(EchoRecognizer):
    """Test double: every utterance is heard in ``speaks`` (when it is a candidate), surely."""

    def __init__(self, speaks: str) -> None:
        super().__init__()
        self.speaks = speaks
        self.identified = 0

    async def recognize(self, samples: np.ndarray, rate: int, language: str, prompt: str = "",
                        candidates: Sequence[str] = (), min_confidence: float = 1.0) -> Heard:
        if len(candidates) > 1:
            self.identified += 1
            found = among({self.speaks.split("-")[0]: 1.0}, candidates, language, min_confidence)
            return Heard(await self.transcribe(samples, rate, found.language), found.language,
                         found.detected, found.confidence, found.probabilities)
        return Heard(await self.transcribe(samples, rate, language), language)


def spoken_notices(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    said: list[tuple[str, str, str]] = []  # (leg, label, text)
    original = LegSession.say

    def say(self: LegSession, text: str, language: str, label: str = "notice") -> None:
        said.append((self.leg.id, label, text))
        original(self, text, language, label)

    monkeypatch.setattr(LegSession, "say", say)
    return said


@contextlib.asynccontextmanager
async def scripted_pair_server(tmp_path: Path, mode: str, speaks: str = "en-GB",
                               ) -> AsyncIterator[tuple[Any, CaptionFeed, FakeVonage, ScriptedRecognizer]]:
    """A server whose recognizer hears everything in ``speaks``, GERMAN and ENGLISH mapped, a caption feed
    and the fake Vonage."""
    engines = double_engines()
    engines.recognizer = recognizer = ScriptedRecognizer(speaks)
    settings = detecting(tmp_path, mode, numbers={GERMAN: "de-DE", ENGLISH: "en-GB"})
    async with background_server(settings, engines) as (url, server):
        feed = CaptionFeed(url)
        await feed.start()
        try:
            async with FakeVonage(url) as vonage:
                yield server, feed, vonage, recognizer
        finally:
            await feed.stop()


def detecting(tmp_path: Path, mode: str, **extra: Any) -> Settings:
    return Settings(models_dir=tmp_path / "models", data_dir=tmp_path / "data", playback_lead_ms=200,
                    languages={"detect": mode, "min_speech_s": 0.5}, **extra)


async def test_a_caller_who_chose_german_but_speaks_english_is_switched_after_two_utterances(
        tmp_path: Path, speech: tuple[np.ndarray, int], monkeypatch: pytest.MonkeyPatch) -> None:
    said = spoken_notices(monkeypatch)
    samples, rate = speech
    utterance = samples[: rate * 2]
    async with scripted_pair_server(tmp_path, "confirm") as (server, feed, vonage, _):
        german = await vonage.dial(GERMAN, pace=PACE)
        english = await vonage.dial(ENGLISH, pace=PACE)
        leg = server.switchboard.legs[german.leg]
        await german.say(utterance, rate)
        first = (await feed.wait_utterances(1, timeout=20))[0]
        assert first["language"] == "en-GB" and first["language_confidence"] == 1.0
        assert first["source_text"].endswith("in en-GB")  # recognized as English at once...
        assert leg.language == "de-DE" and not [n for n in said if n[1] == "language notice"]  # ...leg stays
        before = german.received_frames  # nobody else speaks: what the German leg hears next is the notice
        await german.say(utterance, rate)
        await feed.wait_utterances(2, timeout=20)
        async with asyncio.timeout(10):
            while leg.language != "en-GB" or not [n for n in said if n[1] == "language notice"]:
                await asyncio.sleep(0.05)
        assert [(n[0], n[2]) for n in said if n[1] == "language notice"] == [
            (german.leg, "You are speaking English: I will translate for you in English now.")]
        assert any(e.get("type") == "language" and e["language"] == "en-GB" and e["previous"] == "de-DE"
                   for e in feed.events)
        async with asyncio.timeout(10):
            while german.received_frames <= before + 10:  # the notice is spoken into the call
                await asyncio.sleep(0.05)
        await server.store.flush()
        remembered = await server.store.run(server.store.store.remembered_language, GERMAN)
        assert remembered == "en-GB"
        assert english.connected and german.connected


async def test_detection_off_identifies_nothing(tmp_path: Path, speech: tuple[np.ndarray, int]) -> None:
    samples, rate = speech
    async with scripted_pair_server(tmp_path, "off") as (_server, feed, vonage, recognizer):
        german = await vonage.dial(GERMAN, pace=PACE)
        await vonage.dial(ENGLISH, pace=PACE)
        await german.say(samples[: rate * 2], rate)
        record = (await feed.wait_utterances(1, timeout=20))[0]
    assert recognizer.identified == 0 and record["language"] == "de-DE" and record["language_confidence"] is None


async def test_auto_has_no_menu_greets_in_every_menu_language_and_the_first_utterance_decides(
        tmp_path: Path, speech: tuple[np.ndarray, int]) -> None:
    samples, rate = speech
    engines = double_engines()
    engines.recognizer = ScriptedRecognizer("fr-FR")
    settings = detecting(tmp_path, "auto", menu={"languages": ["en-GB", "de-DE", "fr-FR"]})
    async with background_server(settings, engines) as (url, server):
        async with FakeVonage(url) as vonage:
            caller = await vonage.dial("33100000009", pace=PACE)
            talks = [a for a in caller.ncco if a["action"] == "talk"]
            assert [t["language"] for t in talks] == ["en-GB", "de-DE", "fr-FR"]  # greeted in each, no menu
            assert not [a for a in caller.ncco if a["action"] == "input"]
            leg = server.switchboard.legs[caller.leg]
            assert leg.language == "de-DE"  # a first guess (default_languages)
            await caller.say(samples[: rate * 2], rate)
            async with asyncio.timeout(20):
                while leg.language != "fr-FR":
                    await asyncio.sleep(0.05)


# -- Whisper on real recorded speech --------------------------------------------------------------------


def trimmed(path: Path, rate: int = 8000) -> np.ndarray:
    """A recording without its leading and trailing silence."""
    samples, _ = audio.read_wav(path, rate)
    loud = np.flatnonzero(np.abs(samples) > 0.05 * max(1e-6, float(np.abs(samples).max())))
    return samples[loud[0]: loud[-1] + 1] if loud.size else samples


def german_words(n: int = 6) -> np.ndarray:
    """Real recorded German (klettres words) said one after the other, 150 ms apart: one utterance."""
    gap = np.zeros(int(0.15 * 8000), np.float32)
    words = corpus.klettres_words("de")[:n]
    return np.concatenate([x for w in words for x in (trimmed(w.path), gap)])


@pytest.fixture(scope="module")
def whisper_engines(models_dir: Path):  # noqa: ANN201 - Engines
    from babelfish.engines.whisper import WhisperRecognizer

    engines = double_engines()
    engines.recognizer = WhisperRecognizer("base", models_dir)
    return engines


@pytest.mark.e2e
async def test_whisper_switches_a_german_leg_whose_caller_speaks_english(
        tmp_path: Path, whisper_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    said = spoken_notices(monkeypatch)
    english_prompts = [audio.read_wav(c.path, 8000)[0] for c in corpus.asterisk_prompts(8)[:2]]
    settings = detecting(tmp_path, "confirm", numbers={ENGLISH: "en-GB"}, sample_rate=8000,
                         menu={"languages": ["en-GB", "de-DE"]})
    async with background_server(settings, whisper_engines) as (url, server):
        feed = CaptionFeed(url)
        await feed.start()
        async with FakeVonage(url) as vonage:
            german = await vonage.dial(GERMAN, pace=PACE, keys=["2"])  # chose German in the menu
            english = await vonage.dial(ENGLISH, pace=PACE)
            assert server.switchboard.legs[german.leg].language == "de-DE"
            for i, prompt in enumerate(english_prompts, 1):
                await german.say(prompt, 8000)
                await feed.wait_utterances(i, timeout=30)
            records = feed.utterances()
            assert [r["language"] for r in records] == ["en-GB", "en-GB"], records
            assert all(r["language_confidence"] > 0.9 for r in records)
            assert "agent" in records[0]["source_text"].lower()  # recognized as English, not German
            async with asyncio.timeout(10):
                while not [n for n in said if n[1] == "language notice"]:
                    await asyncio.sleep(0.05)
            assert server.switchboard.legs[german.leg].language == "en-GB"
            await server.store.flush()
            assert await server.store.run(server.store.store.remembered_language, GERMAN) == "en-GB"
            assert english.connected
        await feed.stop()


@pytest.mark.e2e
async def test_an_auto_room_pairs_an_english_and_a_german_caller_with_no_menu(
        tmp_path: Path, whisper_engines) -> None:
    english_prompt = audio.read_wav(corpus.asterisk_prompts(8)[0].path, 8000)[0]
    settings = detecting(tmp_path, "auto", menu={"languages": ["en-GB", "de-DE"]}, sample_rate=8000)
    async with background_server(settings, whisper_engines) as (url, server):
        feed = CaptionFeed(url)
        await feed.start()
        async with FakeVonage(url) as vonage:
            english = await vonage.dial("447700900011", pace=PACE)
            german = await vonage.dial("4915100000011", pace=PACE)
            assert not [a for a in english.ncco + german.ncco if a["action"] == "input"]  # no menu
            legs = server.switchboard.legs
            # first guesses by default_languages: the first caller German, the second English (wrong both)
            assert (legs[english.leg].language, legs[german.leg].language) == ("de-DE", "en-GB")
            turn = await english.say(english_prompt, 8000)
            await feed.wait_utterances(1, timeout=30)
            assert legs[english.leg].language == "en-GB"
            assert legs[german.leg].language == "de-DE"  # the guess moved off the language now taken
            assert await german.wait_heard(after=turn.started, quiet_s=0.3, timeout=20)
            turn = await german.say(german_words(), 8000)
            await feed.wait_utterances(2, timeout=30)
            assert await english.wait_heard(after=turn.started, quiet_s=0.3, timeout=20)
        await feed.stop()
    first, second = feed.utterances()[:2]
    assert first["language"] == "en-GB" and first["translations"]["de-DE"].startswith("[de-DE]")
    assert second["language"] == "de-DE" and second["translations"]["en-GB"].startswith("[en-GB]")
