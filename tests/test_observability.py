"""/metrics in Prometheus format and structured logs carrying leg and room ids."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from babelfish.config import logs
from babelfish.config.settings import Settings
from babelfish.core.events import BargeIn, Speaking, UtteranceDone
from babelfish.core.utterance import Failure, Fault, Utterance
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.pipeline.playback import Item, Playback
from babelfish.pipeline.synthesize import SynthesisTimeout
from babelfish.server.metrics import Metrics
from babelfish.server.serving import background

from .conftest import OPERATOR, dial_pair, double_engines

PACE = 4.0


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_stage_latencies_live_legs_and_errors(tmp_path, speech) -> None:
    samples, rate = speech
    engines = double_engines()
    stream = io.StringIO()
    handler = logs.handler("json", stream)
    root = logging.getLogger("babelfish")
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        async with background(Settings(models_dir=tmp_path, playback_lead_ms=200), engines) as url:
            feed = CaptionFeed(url)
            await feed.start()
            async with FakeVonage(url) as vonage, httpx.AsyncClient() as http:
                a, b = await dial_pair(vonage)
                engines.recognizer.fail_next = True
                await a.say(samples[: rate * 2], rate)
                await feed.wait_utterances(1, timeout=20)
                turn = await a.say(samples[: rate * 2], rate)
                assert await b.wait_heard(after=turn.ended, quiet_s=0.3, timeout=20)
                await feed.wait_utterances(2, timeout=20)
                r = await http.get(f"{url}/metrics", headers=OPERATOR)
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
                m = samples_of(r.text)
            await feed.stop()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert m[("babelfish_legs", ())] == 2 and m[("babelfish_legs_connected", ())] == 2
    assert m[("babelfish_rooms", ())] == 1
    for stage in ("end_of_turn", "recognize", "translate", "synthesize", "first_frame"):
        assert m[("babelfish_stage_seconds_count", (("stage", stage),))] >= 1, stage
    assert m[("babelfish_errors_total", (("kind", "recognize_error"),))] == 1
    assert m[("babelfish_utterances_total", (("outcome", "ok"),))] == 1
    assert m[("babelfish_utterances_total", (("outcome", "error"),))] == 1
    assert m[("babelfish_webhooks_total", (("path", "/answer"), ("status", "200")))] == 2
    assert ("babelfish_dropped_total", (("what", "frames"),)) in m

    # the logs: JSON lines, and the pipeline's own lines (in tasks the socket handler started) name the leg
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert all({"time", "level", "logger", "message", "leg", "room"} <= set(line) for line in lines)
    failed = [line for line in lines if "recognition failed" in line["message"]]
    assert failed and failed[0]["leg"] == a.leg and failed[0]["room"] and "exception" in failed[0]
    assert failed[0]["logger"] == "babelfish.pipeline.understand"  # where the recognizer is called
    answered = [line for line in lines if line["message"].startswith(f"leg {b.leg} (")]
    assert answered and answered[0]["leg"] == b.leg  # the answer webhook's own lines


def test_text_log_lines_carry_the_ids() -> None:
    stream = io.StringIO()
    handler = logs.handler("text", stream)
    log = logging.getLogger("babelfish.test-ids")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        import contextvars

        def in_call() -> None:
            logs.bind(leg="leg-1", room="room-1")
            log.info("hello")

        contextvars.copy_context().run(in_call)
        log.info("outside")
    finally:
        log.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert "[room=room-1 leg=leg-1]: hello" in first
    assert "outside" in second and "leg=" not in second  # the ids stay in their context


async def test_playback_says_what_went_wrong_with_an_item_by_kind() -> None:
    """The error counter's kind comes from where the failure happened (typed), never from its wording."""
    sent: list[bytes] = []

    async def send_audio(frame: bytes) -> None:
        sent.append(frame)

    async def send_clear() -> None:
        pass

    async def fails(exc: Exception) -> AsyncIterator[bytes]:
        raise exc
        yield b""

    async def speaks() -> AsyncIterator[bytes]:
        yield b"\x00\x00" * 320

    playback = Playback(send_audio, send_clear, 16000, lead_s=0.05)
    done: dict[str, Fault | None] = {}

    def item(label: str, source: AsyncIterator[bytes], **kw: Any) -> Item:
        return Item(source=source, label=label, on_done=lambda _, fault: done.__setitem__(label, fault), **kw)

    playback.enqueue(item("slow voice", fails(SynthesisTimeout("synthesizer timed out after 5 s"))))
    playback.enqueue(item("broken voice", fails(RuntimeError("espeak died"))))
    playback.enqueue(item("late", speaks(), deadline=time.monotonic() - 1))
    playback.enqueue(item("fine", speaks()))
    playback.start()
    try:
        async with asyncio.timeout(5):
            while len(done) < 4:
                await asyncio.sleep(0.01)
        playback.enqueue(item("talked over", speaks()))
        await playback.clear()
    finally:
        await playback.stop()
    kinds = {label: fault.kind if fault else None for label, fault in done.items()}
    assert kinds == {"slow voice": Failure.SYNTHESIZE_TIMEOUT, "broken voice": Failure.SYNTHESIZE_ERROR,
                     "late": Failure.PLAYBACK_DROPPED, "fine": None, "talked over": Failure.PLAYBACK_CLEARED}
    assert done["broken voice"] is not None and "espeak died" in done["broken voice"].text


async def test_a_leg_that_ends_mid_playback_still_finishes_what_it_was_hearing_and_what_waited() -> None:
    """The speaker's utterance is kept once every listener is done with it: a listener who hangs up while it
    plays (or while it waits in the queue) is done with it too, in both outputs."""
    from babelfish.telephony.talk import TalkPlayback

    async def send_audio(frame: bytes) -> None:
        pass

    async def send_clear() -> None:
        pass

    async def long_voice() -> AsyncIterator[bytes]:
        for _ in range(200):  # 4 s of audio, sent in real time
            yield b"\x00\x00" * 320

    class SlowTalk:  # Vonage talk whose request takes its time
        rest = SimpleNamespace(talk=lambda *a, **k: asyncio.sleep(5))

        def voice(self, language: str) -> tuple[str, int, bool]:
            return language, 0, False

    for output in (Playback(send_audio, send_clear, 16000, lead_s=0.05),
                   TalkPlayback(SlowTalk(), "call-1", "de-DE")):  # type: ignore[arg-type]
        done: dict[str, Fault | None] = {}
        for label in ("playing", "queued"):
            output.enqueue(Item(source=long_voice(), label=label, text="Hallo", language="de-DE",
                                on_done=lambda _, fault, label=label, done=done: done.__setitem__(label, fault)))
        output.start()
        await asyncio.sleep(0.2)
        assert not done
        await output.stop()
        assert {label: fault.kind if fault else None for label, fault in done.items()} == {
            "playing": Failure.PLAYBACK_HUNG_UP, "queued": Failure.PLAYBACK_HUNG_UP}, type(output)


def test_an_utterance_keeps_its_first_failure_and_metrics_count_it_by_kind() -> None:
    record = Utterance(id="u", room="r", leg="a", language="de", started_at=0.0, ended_at=1.0)
    record.fail(Fault(Failure.TRANSLATE_TIMEOUT, "translator: timed out after 5 s"))
    record.fail(Fault(Failure.PLAYBACK_CLEARED, "cleared"), where="playback to b: ")
    assert (record.failure, record.error) == (Failure.TRANSLATE_TIMEOUT, "translator: timed out after 5 s")
    event = UtteranceDone(room="r", leg="a", record=record).to_json()
    assert event["record"]["failure"] == "translate_timeout" and json.loads(json.dumps(event)) == event
    metrics = Metrics(legs=lambda: 0, connected=lambda: 0, rooms=lambda: 0, dropped=dict)
    metrics.observe_event(UtteranceDone(room="r", leg="a", record=record))
    metrics.snapshot()
    assert 'babelfish_errors_total{kind="translate_timeout"} 1.0' in metrics.render().decode()


def test_barge_ins_are_counted_from_the_caption_events() -> None:
    metrics = Metrics(legs=lambda: 0, connected=lambda: 0, rooms=lambda: 0, dropped=dict)
    for event in (BargeIn(room="r", leg="a", language="de"), Speaking(room="r", leg="a", language="de"),
                  BargeIn(room="r", leg="b", language="en")):
        metrics.observe_event(event)
    metrics.snapshot()
    assert "babelfish_barge_ins_total 2.0" in metrics.render().decode()
