"""Soak: 200 calls through the fake Vonage against one server (test-double engines): pairs talking at
once, callers hanging up or dropping the line mid-utterance, engines that raise or hang. At the end no leg,
socket, task or file descriptor is left over, memory has stopped growing, and every utterance that was
finished is in the transcript.

Run alone, printing its figures: ``pytest -s tests/test_soak.py``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections import Counter
from typing import Any

import httpx
import numpy as np
import pytest

from babelfish.config.settings import LimitsSettings, Settings
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_call import FakeCall
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.serving import background_server

from .conftest import FAST_AUDIO, HEAVY, OPERATOR, EchoRecognizer, TagTranslator, double_engines

pytestmark = HEAVY

CALLS = int(os.environ.get("BABELFISH_SOAK_CALLS", "200"))
PAIRS_AT_ONCE = 5  # ten calls at a time
PACE = 4.0
FAILING_RECOGNIZER = "fr-FR"  # callers from FRENCH speak into a recognizer that raises
HANGING_TRANSLATOR = "it-IT"  # translations into Italian hang until the stage timeout
FRENCH, ITALIAN = "33100000001", "39300000001"


class SoakRecognizer(EchoRecognizer):
    async def transcribe(self, samples: np.ndarray, rate: int, language: str, prompt: str = "") -> str:
        if language == FAILING_RECOGNIZER:
            raise RuntimeError("recognizer exploded")
        return await super().transcribe(samples, rate, language)


class SoakTranslator(TagTranslator):
    async def translate(self, text: str, source: str, target: str, context: object = ()) -> str:
        if target == HANGING_TRANSLATOR:
            await asyncio.sleep(3600)
        return await super().translate(text, source, target)


async def transcript_utterances(server: Any) -> list[dict[str, Any]]:
    """Every utterance the server stored in its transcript database (read after the store is flushed)."""
    store = server.store
    await store.flush()
    calls = await store.run(store.store.list_calls, 10_000)
    records = []
    for call in calls:
        full = await store.run(store.store.get_call, call["id"])
        records += [{"leg": u["leg_id"], "error": u["error"], "source_text": u["source_text"]}
                    for u in full["utterances"]]
    return records


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def kind_of(i: int) -> str:
    return ("hangs up mid-utterance" if i % 4 == 3 else "failing recognizer" if i % 5 == 4
            else "hanging translator" if i % 7 == 6 else "talk")


async def dial_pair(vonage: FakeVonage, i: int) -> tuple[FakeCall, FakeCall]:
    kind = kind_of(i)
    a = await vonage.dial(FRENCH if kind == "failing recognizer" else f"49151{i:08d}", pace=PACE)
    b = await vonage.dial(ITALIAN if kind == "hanging translator" else f"44770{i:08d}", pace=PACE)
    assert a.headers["room"] == b.headers["room"]
    return a, b


async def conversation(a: FakeCall, b: FakeCall, i: int, speech: np.ndarray, rate: int,
                       finished: Counter[str]) -> None:
    """One pair of calls; what happens depends on ``i``."""
    kind = kind_of(i)
    try:
        if kind == "hangs up mid-utterance":
            speaking = asyncio.create_task(a.say(speech, rate))
            await asyncio.sleep(0.1 + 0.05 * (i % 5))
            if i % 8 == 3:
                for task in a._tasks:
                    task.cancel()
                a.ws.transport.abort()  # the line drops: no close handshake; Vonage then reports completed
                await asyncio.sleep(0.05)
            await a.hang_up()
            speaking.cancel()
            await asyncio.gather(speaking, return_exceptions=True)
            await asyncio.sleep(0.2)
            return
        for speaker, listener in ((a, b), (b, a)):
            turn = await speaker.say(speech, rate)
            finished[speaker.leg] += 1
            # the listener hears the translation, or the short notice where it was lost
            assert await listener.wait_heard(after=turn.started, quiet_s=0.3, timeout=20), (
                kind, i, speaker.headers, listener.headers, listener.received_frames, listener.closed)
    finally:
        for call in (a, b):
            if not call.ended:
                await call.hang_up()


async def batch_of(vonage: FakeVonage, first: int, pairs: int, speech: np.ndarray, rate: int,
                   finished: Counter[str]) -> None:
    # dialled one pair after the other, so pairs are not crossed; then all talk at once
    calls = [await dial_pair(vonage, i) for i in range(first, first + pairs)]
    await asyncio.gather(*(conversation(a, b, i, speech, rate, finished)
                           for i, (a, b) in zip(range(first, first + pairs), calls, strict=True)))


@pytest.mark.e2e  # over a minute on two cores: make test runs it, -m "not e2e" skips it
async def test_soak_200_calls(tmp_path, speech, caplog) -> None:
    # pytest keeps every log record of a test in memory for its report: thousands of expected error lines
    # (failing engines on purpose) would be the test's own memory growth, not the server's
    caplog.set_level(logging.CRITICAL)
    samples, rate = speech
    utterance = samples[: int(rate * 1.5)]
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200,
                        numbers={FRENCH: FAILING_RECOGNIZER, ITALIAN: HANGING_TRANSLATOR},
                        limits=LimitsSettings(**FAST_AUDIO, translate_timeout_s=0.5, recognize_timeout_s=5.0))
    engines = double_engines(translator=SoakTranslator())
    engines.recognizer = SoakRecognizer()
    finished: Counter[str] = Counter()
    t0 = time.monotonic()
    async with background_server(settings, engines) as (url, server):
        feed = CaptionFeed(url)
        await feed.start()
        async with FakeVonage(url) as vonage, httpx.AsyncClient() as http:
            await batch_of(vonage, 0, 1, utterance, rate, finished)  # warm up (VAD session, imports)
            gc.collect()
            baseline = {"tasks": len(asyncio.all_tasks()), "fds": open_fds(), "rss": rss_mb()}
            rss: list[float] = []
            pair = 1
            calls = len(vonage.calls)
            vonage.calls.clear()
            while pair < CALLS // 2:
                count = min(PAIRS_AT_ONCE, CALLS // 2 - pair)
                await batch_of(vonage, pair, count, utterance, rate, finished)
                pair += count
                calls += len(vonage.calls)
                vonage.calls.clear()  # what the fake callers heard is the test's memory, not the server's
                feed.events.clear()  # so are the captions it read (the transcript is checked in the store)
                gc.collect()
                rss.append(rss_mb())
            async with asyncio.timeout(30):
                while server.switchboard.legs or server.sockets:
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # let the last sockets and tasks wind down
            gc.collect()
            end = {"tasks": len(asyncio.all_tasks()), "fds": open_fds(), "rss": rss_mb()}
            metrics = (await http.get(f"{url}/metrics", headers=OPERATOR)).text
            health = (await http.get(f"{url}/health")).json()
        await feed.stop()
        records = await transcript_utterances(server)
    elapsed = time.monotonic() - t0

    by_leg = Counter(r["leg"] for r in records)
    missing = {leg: n for leg, n in finished.items() if by_leg[leg] < n}
    errors = Counter((r["error"] or "").split(":")[0].split(" to ")[0] or "ok" for r in records)
    print(f"\nsoak: {calls} calls in {elapsed:.0f} s ({PAIRS_AT_ONCE * 2} at a time, pace {PACE}); "
          f"{sum(finished.values())} finished utterances, {len(records)} records in the transcript "
          f"({dict(errors)}); RSS {baseline['rss']:.0f} MB after warm-up, {rss[len(rss) // 2]:.0f} MB half-way, "
          f"{end['rss']:.0f} MB at the end; tasks {baseline['tasks']} -> {end['tasks']}; "
          f"fds {baseline['fds']} -> {end['fds']}; caption events dropped {server.hub.dropped}")
    assert calls >= CALLS
    assert health["legs"] == 0 and health["rooms"] == 0 and not server.sockets
    assert not missing, f"finished utterances missing from the transcript: {missing}"
    assert errors["recognizer"] >= CALLS // 20 and errors["translator"] >= CALLS // 40, errors
    assert end["tasks"] <= baseline["tasks"], (baseline, end, [t.get_name() for t in asyncio.all_tasks()])
    assert end["fds"] <= baseline["fds"] + 5, (baseline, end)
    # memory: whatever warm-up costs, the second half of the run must not keep growing
    assert end["rss"] - rss[len(rss) // 2] < 8, (baseline, rss, end)
    assert server.hub.dropped == 0
    assert 'babelfish_errors_total{kind="recognize_error"}' in metrics
