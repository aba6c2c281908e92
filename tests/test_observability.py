"""/metrics in Prometheus format and structured logs carrying leg and room ids."""

from __future__ import annotations

import io
import json
import logging

import httpx
from prometheus_client.parser import text_string_to_metric_families

from babelfish.config import logs
from babelfish.config.settings import Settings
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.metrics import Metrics, error_kind
from babelfish.server.serving import background

from .conftest import OPERATOR, double_engines

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
                a = await vonage.dial("4915100000001", pace=PACE)
                b = await vonage.dial("447700900002", pace=PACE)
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


def test_error_kinds() -> None:
    assert error_kind("recognizer: timed out after 5 s") == "recognize_timeout"
    assert error_kind("recognizer: RuntimeError: boom") == "recognize_error"
    assert error_kind("translator: timed out after 5 s") == "translate_timeout"
    assert error_kind("playback to x: EngineError: synthesizer timed out after 5 s") == "synthesize_timeout"
    assert error_kind("playback to x: RuntimeError: espeak died") == "synthesize_error"
    assert error_kind("playback to x: dropped: stale") == "playback_dropped"
    assert error_kind("playback to x: cleared") == "playback_cleared"


def test_barge_ins_are_counted_from_the_caption_events() -> None:
    metrics = Metrics(legs=lambda: 0, connected=lambda: 0, rooms=lambda: 0, dropped=dict)
    for event in ({"type": "barge-in", "leg": "a"}, {"type": "speaking", "leg": "a"}, {"type": "barge-in", "leg": "b"}):
        metrics.observe_event(event)
    metrics.snapshot()
    assert "babelfish_barge_ins_total 2.0" in metrics.render().decode()
