"""Faults: an engine that raises, hangs or is slow costs one utterance (the listener hears a short notice),
not the call; a dropped socket ends its leg cleanly; on shutdown the server drains."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np

from babelfish.config.settings import LimitsSettings, Settings
from babelfish.core import languages
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.serving import background, background_server
from babelfish.telephony import wire

from .conftest import (
    FAST_AUDIO,
    OPERATOR,
    EchoRecognizer,
    TagTranslator,
    ToneSynthesizer,
    dial_pair,
    double_engines,
)

PACE = 4.0
ROOT = Path(__file__).resolve().parent.parent


class HangingRecognizer(EchoRecognizer):
    """Hangs until released: every pass over the first utterance (a speculation on a pause inside it
    included, which the speaker's next word cancels) hangs, so that utterance is the one lost."""

    released = False

    async def transcribe(self, samples: np.ndarray, rate: int, language: str, prompt: str = "") -> str:
        if not self.released:
            await asyncio.sleep(3600)
        return await super().transcribe(samples, rate, language)


class FailingTranslator(TagTranslator):
    released = False

    async def translate(self, text: str, source: str, target: str, context: object = ()) -> str:
        if not self.released:
            raise ConnectionError("translation service unreachable")
        return await super().translate(text, source, target)


class HangingVoice(ToneSynthesizer):
    """Hangs on translations until released (notices are spoken normally)."""

    released = False

    async def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        if not self.released and text.startswith("["):
            await asyncio.sleep(3600)
        return await super().synthesize(text)


def fast_timeouts(tmp_path, **limits) -> Settings:
    return Settings(models_dir=tmp_path, playback_lead_ms=200,
                    limits=LimitsSettings(**FAST_AUDIO, recognize_timeout_s=0.5, translate_timeout_s=0.5,
                                          synthesize_timeout_s=0.5, **limits))


async def _one_bad_then_one_good(url: str, speech, error_part: str, faulty) -> str:
    samples, rate = speech
    samples = samples[: rate * 2]
    feed = CaptionFeed(url)
    await feed.start()
    async with FakeVonage(url) as vonage:
        a, b = await dial_pair(vonage)
        await asyncio.sleep(0.3)
        before = b.received_frames
        turn = await a.say(samples, rate)
        records = await feed.wait_utterances(1, timeout=20)
        assert records and records[0]["error"] and error_part in records[0]["error"], records
        faulty.released = True
        assert await b.wait_heard(after=turn.started, quiet_s=0.3, timeout=10)
        notice = b.received_frames - before
        assert notice > 5, "the listener heard nothing where the translation was lost"
        # the call goes on: the next utterance is translated and heard
        turn = await a.say(samples, rate)
        assert await b.wait_heard(after=turn.ended, quiet_s=0.3, timeout=20)
        records = await feed.wait_utterances(2, timeout=20)
        assert records[1]["error"] is None and records[1]["translations"]["en-GB"].startswith("[en-GB]")
        assert a.connected and b.connected
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{url}/metrics", headers=OPERATOR)).text
    await feed.stop()
    return metrics


async def test_a_hanging_recognizer_costs_one_utterance_and_the_listener_hears_a_notice(tmp_path, speech) -> None:
    engines = double_engines()
    engines.recognizer = recognizer = HangingRecognizer()
    async with background(fast_timeouts(tmp_path), engines) as url:
        metrics = await _one_bad_then_one_good(url, speech, "recognizer: timed out after 0.5 s", recognizer)
    assert 'babelfish_errors_total{kind="recognize_timeout"} 1.0' in metrics


async def test_a_raising_translator_costs_one_utterance(tmp_path, speech) -> None:
    translator = FailingTranslator()
    async with background(fast_timeouts(tmp_path), double_engines(translator=translator)) as url:
        metrics = await _one_bad_then_one_good(url, speech, "translator: ConnectionError", translator)
    assert 'babelfish_errors_total{kind="translate_error"} 1.0' in metrics


class HangingTranslator(TagTranslator):
    released = False

    async def translate(self, text: str, source: str, target: str, context: object = ()) -> str:
        if not self.released:
            await asyncio.sleep(3600)
        return await super().translate(text, source, target)


async def test_a_translation_that_times_out_is_shown_as_late_to_both_sides_and_counted(tmp_path, speech) -> None:
    """Not "nobody heard this": the listener and the speaker are told the translation came too late, the
    operator's metrics count it by reason, and the speaker's words are in the record."""
    translator = HangingTranslator()
    async with background(fast_timeouts(tmp_path), double_engines(translator=translator)) as url:
        feed = CaptionFeed(url)
        await feed.start()
        metrics = await _one_bad_then_one_good(url, speech, "translator: timed out after 0.5 s", translator)
        records = feed.utterances()
        await feed.stop()
    skipped = [e for e in feed.events if e["type"] == "skipped"]
    assert len(skipped) == 1 and skipped[0]["reason"] == "late", skipped
    assert skipped[0]["utterance"] == records[0]["id"] and skipped[0]["leg"] == records[0]["leg"]
    assert skipped[0]["listener"] != records[0]["leg"] and skipped[0]["text"] == records[0]["source_text"] != ""
    assert 'babelfish_translations_skipped_total{reason="late"} 1.0' in metrics
    assert 'babelfish_errors_total{kind="translate_timeout"} 1.0' in metrics


async def test_a_hanging_synthesizer_costs_one_utterance(tmp_path, speech) -> None:
    voice = HangingVoice()
    async with background(fast_timeouts(tmp_path), double_engines(voice=voice)) as url:
        metrics = await _one_bad_then_one_good(url, speech, "synthesizer timed out after 0.5 s", voice)
    assert 'babelfish_errors_total{kind="synthesize_timeout"} 1.0' in metrics


async def test_a_dropped_socket_ends_that_leg_cleanly(server, vonage) -> None:
    url, _ = server
    a = await vonage.dial("4915100000001", pace=PACE)
    b = await vonage.dial("4915100000002", pace=PACE)
    await asyncio.sleep(0.3)
    before = b.received_frames
    for task in a._tasks:
        task.cancel()
    a.ws.transport.abort()  # the network went away: no closing handshake, no event webhook
    async with httpx.AsyncClient() as http, asyncio.timeout(10):
        while (await http.get(f"{url}/health")).json()["legs"] != 1:
            await asyncio.sleep(0.05)
        while b.received_frames == before:  # "the other party has hung up"
            await asyncio.sleep(0.05)
        assert b.connected
        assert (await http.get(f"{url}/rooms", headers=OPERATOR)).json()["rooms"][0]["legs"][0]["id"] == b.leg


async def test_a_listener_whose_leg_ends_while_hearing_a_translation_leaves_it_in_the_transcript(
        tmp_path, speech) -> None:
    """The utterance is kept once its listeners are done with it. A listener whose leg the server ends while
    the translation plays (the operator ends the room, a time limit) is done with it too."""
    samples, rate = speech

    class LongTranslations(ToneSynthesizer):  # a 5.5 s translation: time to end the leg while it plays
        async def synthesize(self, text: str) -> tuple[np.ndarray, int]:
            return (samples, rate) if text.startswith("[") else await super().synthesize(text)

    voice = LongTranslations()
    async with background_server(fast_timeouts(tmp_path), double_engines(voice=voice)) as (url, server):
        feed = CaptionFeed(url)
        await feed.start()
        async with FakeVonage(url) as vonage:
            german, english = await dial_pair(vonage)
            assert await german.wait_heard(after=0, quiet_s=0.3, timeout=10)  # "someone has joined"
            turn = await english.say(samples[: rate * 2], rate)
            async with asyncio.timeout(20):
                while german.first_heard_after(turn.ended) is None:  # the translation has started playing
                    await asyncio.sleep(0.05)
            await server.end_leg(server.switchboard.legs[german.leg], reason="ended by the operator",
                                 hang_up=True)
            records = await feed.wait_utterances(1, timeout=10)
        await feed.stop()
    assert records and records[0]["source_text"].startswith("speech of 2."), records
    assert records[0]["translations"]["de-DE"].startswith("[de-DE]"), records
    assert records[0]["error"] and "playback" in records[0]["error"], records  # the listener did not hear it all


async def test_drain_stops_new_calls_tells_callers_finishes_utterances_then_runs_the_hooks(tmp_path, speech) -> None:
    samples, rate = speech
    flushed: list[int] = []
    async with background_server(fast_timeouts(tmp_path, drain_s=10), double_engines()) as (url, server):
        async def flush() -> None:  # where the transcript store is flushed
            flushed.append(len(server.switchboard.legs))

        server.on_drain.append(flush)
        feed = CaptionFeed(url)
        await feed.start()
        async with FakeVonage(url) as vonage:
            a, b = await dial_pair(vonage)
            await asyncio.sleep(0.3)
            speaking = asyncio.create_task(a.say(samples[: rate * 2], rate))
            await asyncio.sleep(0.3)  # a is mid-sentence when the server is told to stop
            heard = {c.leg: c.received_frames for c in (a, b)}
            drain = asyncio.create_task(server.drain())
            await asyncio.sleep(0.1)
            c = await vonage.dial("4915100000003", pace=PACE)
            assert c.ended and c.prompts[-1]["text"] == languages.PROMPTS["restarting"]["de"]
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{url}/health")).json()["status"] == "draining"
            await asyncio.wait_for(drain, 15)
            speaking.cancel()
            async with asyncio.timeout(5):
                while a.closed is None or b.closed is None:
                    await asyncio.sleep(0.05)
            for call in (a, b):
                assert call.closed == (wire.CLOSE_GOING_AWAY, "server restarting")
                assert call.received_frames > heard[call.leg] + 10  # heard the notice
            records = feed.utterances()
            assert records and records[0]["leg"] == a.leg  # the sentence in flight was finished
            assert flushed == [0]  # the hook ran once, after every leg had ended
        await feed.stop()


async def test_sigterm_drains_a_real_server_process(tmp_path) -> None:
    marker = tmp_path / "drained"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BABELFISH_LIMITS__DRAIN_S": "10",
           "BABELFISH_MODELS_DIR": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.serve_doubles", str(marker), cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        url = json.loads(line)["url"]
        async with httpx.AsyncClient() as http, asyncio.timeout(60):
            while True:
                try:
                    if (await http.get(f"{url}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        async with FakeVonage(url) as vonage:
            a, b = await dial_pair(vonage)
            await asyncio.sleep(0.5)
            heard = a.received_frames
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            c = await vonage.dial("4915100000003")
            assert c.ended and c.prompts[-1]["text"] == languages.PROMPTS["restarting"]["de"]
            async with asyncio.timeout(20):
                while a.closed is None or b.closed is None:
                    await asyncio.sleep(0.05)
            assert a.closed[0] == wire.CLOSE_GOING_AWAY and b.closed[0] == wire.CLOSE_GOING_AWAY
            assert a.received_frames > heard + 10
        # uvicorn re-raises the signal once shut down, so the exit status says "ended by SIGTERM"
        assert await asyncio.wait_for(proc.wait(), 30) in (0, -signal.SIGTERM)
        assert b"Traceback" not in await proc.stderr.read()
        assert json.loads(marker.read_text()) == {"legs_left": 0}
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_why_a_listener_missed_a_translation_in_their_words() -> None:
    from babelfish.core.utterance import Failure
    from babelfish.pipeline.fanout import skip_reason
    from babelfish.pipeline.playback import BACKLOG, STALE

    assert skip_reason(Failure.TRANSLATE_TIMEOUT) == "late"
    assert skip_reason(Failure.PLAYBACK_DROPPED, STALE) == "late"  # its turn to play came too late
    assert skip_reason(Failure.PLAYBACK_DROPPED, BACKLOG) == "backlog"
    assert skip_reason(Failure.TRANSLATE_ERROR) == "failed"
