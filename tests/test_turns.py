"""Turn-taking on a live call, through the fake Vonage on recorded speech: barge-in, speakerphone echo,
stale translations and backlogs, overlapping speech."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from babelfish.config.pipeline import InterpretationSettings, TurnSettings
from babelfish.config.settings import Settings
from babelfish.core import audio
from babelfish.core.events import BargeIn, Final
from babelfish.core.utterance import Failure
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_call import FakeCall, Turn
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.pipeline.echo import EchoCanceller
from babelfish.server.serving import background

from . import harness
from .conftest import HEAVY, RecordedSynthesizer, asterisk, dial_pair, double_engines

PACE = 2.0


def test_echo_canceller_removes_a_delayed_copy_and_keeps_double_talk() -> None:
    rate = 16000
    far, _ = audio.read_wav(asterisk("agent-alreadyon"), rate)
    near, _ = audio.read_wav(asterisk("conf-getconfno"), rate)
    near = np.concatenate([np.zeros(rate, dtype=np.float32), near, np.zeros(far.size, dtype=np.float32)])
    near = near[: far.size]
    delay = int(0.13 * rate)
    echo = 0.3 * np.concatenate([np.zeros(delay, dtype=np.float32), far])[: far.size]
    for with_near in (False, True):
        canceller = EchoCanceller(rate)
        inbound = echo + (near if with_near else 0)
        out = []
        step = rate // 50
        for i in range(0, far.size - step + 1, step):
            t = 10.0 + (i + step) / rate
            canceller.played(far[i : i + step], t - step / rate)
            out.append(canceller.clean(inbound[i : i + step].astype(np.float32), t))
        residual = np.concatenate(out)[rate:]  # after the first second the delay is known
        assert canceller.delay is not None and abs(canceller.delay - delay) <= 2
        if with_near:
            kept = near[rate : rate + residual.size]
            assert np.corrcoef(residual, kept)[0, 1] > 0.95  # the caller's own voice survives
        else:
            assert audio.rms_dbfs(residual) < audio.rms_dbfs(echo[rate:]) - 25



def test_a_caller_who_talks_as_playback_begins_is_not_muted_for_being_quiet() -> None:
    """While the echo is not located yet, only audio that is a copy of what played is muted: a caller's own
    soft voice over the start of a notice passes whole (muting it cut one turn in two)."""
    rate = 16000
    far, _ = audio.read_wav(asterisk("conf-muted"), rate)
    near, _ = audio.read_wav(asterisk("conf-getconfno"), rate)
    near = 0.3 * near[: far.size]
    far = far[: near.size]
    canceller = EchoCanceller(rate)
    step, out = rate // 50, []
    for i in range(0, far.size - step + 1, step):
        t = 10.0 + (i + step) / rate
        canceller.played(far[i : i + step], t - step / rate)
        out.append(canceller.clean(near[i : i + step].astype(np.float32), t))
    kept = np.concatenate(out)
    first = slice(0, rate)  # the canceller's first second: still converging
    assert abs(audio.rms_dbfs(kept[first]) - audio.rms_dbfs(near[first])) < 0.5


@pytest.mark.parametrize("batch_ms", [20, 1000])
def test_echo_canceller_follows_a_playout_shift_within_a_quarter_second(batch_ms: int) -> None:
    """The far end's playout moves by 8 ms halfway (it buffered a late frame), with inbound audio in 20 ms
    frames or, from a busy server, a second at once: the echo is located again within a quarter second."""
    rate = 8000
    far = np.concatenate([audio.read_wav(asterisk(n), rate)[0] for n in ("agent-alreadyon", "conf-getconfno")])
    half = far.size // 2
    first, second = int(0.12 * rate), int(0.128 * rate)
    echo = np.zeros(far.size, dtype=np.float32)
    echo[first:half] = far[: half - first]
    echo[half:] = far[half - second : far.size - second]
    echo *= 0.35
    canceller = EchoCanceller(rate)
    step, batch, lead = rate // 50, rate * batch_ms // 1000, rate // 5
    out, played = [], 0
    for i in range(0, far.size, batch):
        while played < min(i + batch + lead, far.size - step + 1):  # the server plays 200 ms ahead
            canceller.played(far[played : played + step], 10.0 + played / rate)
            played += step
        out.append(canceller.clean(echo[i : i + batch], 10.0 + min(i + batch, far.size) / rate))
    residual = np.concatenate(out)
    assert abs(canceller.delay - second) <= 2
    settled = half + rate // 4
    assert audio.rms_dbfs(residual[settled:]) < audio.rms_dbfs(echo[settled:]) - 30


async def speakerphone_turn(settings: Settings, voice: object, samples: np.ndarray, rate: int,
                            after_joined: bool = False) -> tuple[CaptionFeed, FakeCall, FakeCall, Turn]:
    """A speaks one turn to B, who is on a speakerphone, in real time through the fake Vonage (a speakerphone's
    echo lives on the real playback timeline); returns once B has heard it all."""
    async with background(settings, double_engines(voice)) as url:
        feed = CaptionFeed(url)
        await feed.start()
        async with FakeVonage(url) as vonage:
            a = await vonage.dial("4915100000001", pace=1.0)
            b = await vonage.dial("447700900002", pace=1.0)
            b.echo_gain = 0.35  # about -9 dB: a speakerphone
            if after_joined:
                assert await a.wait_heard(after=0, quiet_s=0.3, timeout=10)  # "someone has joined" plays out
            turn = await a.say(samples, rate)
            assert await b.wait_heard(after=turn.ended if after_joined else turn.started, quiet_s=1.5, timeout=30)
            await asyncio.sleep(1.0)
        await feed.stop()
    return feed, a, b, turn


@pytest.mark.parametrize("suppress", [True, False])
async def test_speakerphone_echo_of_the_translation_is_not_translated_back(tmp_path: Path, speech,
                                                                        suppress: bool) -> None:
    samples, rate = speech
    voice = RecordedSynthesizer(*audio.read_wav(asterisk("conf-getconfno")))
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200,
                        turns=TurnSettings(echo_suppression=suppress, barge_in=False))
    feed, a, b, _turn = await speakerphone_turn(settings, voice, samples, rate)
    finals = [e for e in feed.events if e["type"] == "final"]
    from_b = [e for e in finals if e["leg"] == b.leg]
    from_a = [e for e in finals if e["leg"] == a.leg]
    assert len(from_a) == 1
    if suppress:
        assert from_b == []  # the translation B heard, looped back, produced no utterance
    else:
        assert from_b  # without suppression it would have been translated back to A


async def test_barge_in_clears_the_playback_and_the_listener_is_heard(tmp_path: Path, speech) -> None:
    """A stage test (tests/harness.py, no server): the listener talks over a long translation."""
    samples, rate = speech
    long_speech = np.concatenate([audio.read_wav(asterisk(n))[0] for n in
                                  ("conf-getconfno", "agent-alreadyon", "conf-getconfno")])
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200)
    async with harness.Room(settings, double_engines(RecordedSynthesizer(long_speech, 8000))) as room:
        started = await room.say(0, samples, rate)
        ear = room.ears["leg-1"]
        async with asyncio.timeout(20):
            while not ear.after(started):
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the listener listens for a moment, then talks over the translation
        await room.say(1, samples, rate)
        first = (await room.wait_utterances(1))[0]  # over for its listener once cleared
        async with asyncio.timeout(10):  # the listener's own speech goes through (its translation plays)
            while not any(isinstance(e, Final) and e.leg == "leg-1" and e.translation for e in room.events):
                await asyncio.sleep(0.05)
    assert {"action": "clear"} in ear.commands  # Vonage is told to drop what it buffered
    assert len(ear.frames) * 0.02 < long_speech.size / 8000 - 2  # the rest of the translation was dropped
    assert any(isinstance(e, BargeIn) and e.leg == "leg-1" for e in room.events)
    assert first.leg == "leg-0" and first.failure is Failure.PLAYBACK_CLEARED and "cleared" in (first.error or "")


async def test_late_translations_are_dropped_with_a_notice_and_the_backlog_is_bounded(tmp_path: Path) -> None:
    """A stage test: five utterances in a burst, each translation longer than the gap between them."""
    clip, rate = audio.read_wav(asterisk("conf-getconfno"))
    gap = np.zeros(int(0.8 * rate), dtype=np.float32)
    burst = np.concatenate([clip, gap] * 5)  # five utterances, quickly one after another
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200,
                        turns=TurnSettings(stale_after_s=2.0, max_pending=2, barge_in=False))
    async with harness.Room(settings, double_engines(RecordedSynthesizer(clip, rate))) as room:
        await room.say(0, burst, rate)
        records = await room.wait_utterances(5, timeout=60)
    played = [r for r in records if r.error is None]
    assert played, "the first translation plays"
    assert any(r.failure is Failure.PLAYBACK_DROPPED for r in records), [r.error for r in records]
    # nothing waited beyond the bound: every translation that played started within stale_after_s
    assert all(r.latencies["first_frame"] <= 2.0 + 0.5 for r in played)
    assert room.ears["leg-1"].frames


async def test_overlapping_speech_gives_two_clean_translations(server, vonage, feed) -> None:
    url, engines = server
    samples, rate = audio.read_wav(asterisk("conf-getconfno"))  # one sentence, no pause inside
    a, b = await dial_pair(vonage, pace=PACE)
    assert await a.wait_heard(after=0, quiet_s=0.3, timeout=10)  # "someone has joined" plays out first
    joined = time.monotonic()
    turns = await asyncio.gather(a.say(samples, rate), b.say(samples, rate))  # both at once
    for listener, turn in ((b, turns[0]), (a, turns[1])):
        assert await listener.wait_heard(after=turn.started, quiet_s=1.0, timeout=20)
    records = await feed.wait_utterances(2)
    heard = {call.leg: [p.at for p in call.played if p.at > joined] for call in (a, b)}  # the translations
    assert {r["leg"] for r in records} == {a.leg, b.leg}
    assert all(r["error"] is None and r["translations"] for r in records)
    for starts in heard.values():
        # one utterance's audio, played back to back: no second stream interleaved into it
        gaps = np.diff(starts)
        assert len(starts) > 10 and np.all(gaps > 0) and np.sum(gaps > 0.5) == 0


def long_turn(gap_s: float = 0.3) -> tuple[np.ndarray, int]:
    """Three recorded prompts said as one turn, with a natural pause between them (about 9 s)."""
    parts = [audio.read_wav(asterisk(n), 8000)[0] for n in ("conf-getconfno", "agent-pass", "conf-muted")]
    gap = np.zeros(int(gap_s * 8000), dtype=np.float32)
    return np.concatenate([parts[0], gap, parts[1], gap, parts[2]]), 8000


@HEAVY
async def test_simultaneous_a_long_turn_is_heard_clause_by_clause_while_it_is_said_and_echo_is_not_back(
        tmp_path: Path) -> None:
    """Through the fake Vonage in real time: the listener (on a speakerphone) hears the first clause of a
    long turn before the speaker has finished, the clauses in the order they were said, and none of it
    comes back from the listener's line as speech of theirs."""
    samples, rate = long_turn()
    voice = RecordedSynthesizer(*audio.read_wav(asterisk("conf-muted")))  # 1.4 s of speech per clause
    # as in the test above, barge-in is off: the first moments of an echo, before the canceller has found
    # it, can still sound like the listener speaking (barge-in has a test of its own, below)
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200, turns=TurnSettings(barge_in=False),
                        interpretation=InterpretationSettings(mode="simultaneous"))
    feed, a, b, turn = await speakerphone_turn(settings, voice, samples, rate, after_joined=True)
    records = sorted((r for r in feed.utterances() if r["leg"] == a.leg), key=lambda r: r["started_at"])
    assert len(records) >= 3 and all(r["clause"] and r["error"] is None for r in records), [
        (r["clause"], r["error"], r["source_text"]) for r in records]
    first_heard = b.first_heard_after(turn.started)
    assert first_heard is not None and first_heard < turn.ended - 2.0  # well before the speaker finished
    heard_at = [r["ended_at"] + r["latencies"]["first_frame"] for r in records]
    assert heard_at == sorted(heard_at)  # in the order they were said
    assert not [r for r in feed.utterances() if r["leg"] == b.leg]  # the echo was not taken for b's speech


async def test_simultaneous_barge_in_stops_the_clauses_still_to_come(tmp_path: Path, speech) -> None:
    """A stage test: the listener talks over the translation of a long turn still being said; what they
    were hearing is cleared, and the clauses after it are not waited for."""
    samples, rate = speech
    turn, turn_rate = long_turn()
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200,
                        interpretation=InterpretationSettings(mode="simultaneous"))
    clip = audio.read_wav(asterisk("agent-alreadyon"))
    async with harness.Room(settings, double_engines(RecordedSynthesizer(*clip))) as room:
        speaking = asyncio.create_task(room.say(0, turn, turn_rate, pace=1.0))
        ear = room.ears["leg-1"]
        async with asyncio.timeout(20):
            while not ear.frames:
                await asyncio.sleep(0.05)
        assert not speaking.done()  # the first clause is heard while the speaker goes on
        await asyncio.sleep(0.5)
        await room.say(1, samples, rate)
        await speaking
    assert {"action": "clear"} in ear.commands
    assert any(isinstance(e, BargeIn) and e.leg == "leg-1" for e in room.events)
    assert any(r.failure is Failure.PLAYBACK_CLEARED for r in room.utterances() if r.leg == "leg-0")
