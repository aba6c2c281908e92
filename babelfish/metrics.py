"""``/metrics`` in Prometheus' text format: how long each stage takes, what is live, what went wrong.

Stage latencies come from the utterance records (the same figures the transcript keeps): ``end_of_turn``,
``recognize``, ``translate``, ``synthesize`` and ``first_frame`` (end of speech to the first translated
frame). Errors are counted by kind: rejected webhooks, refused sockets, engine failures and timeouts by
stage, utterances and frames dropped because something fell behind. Each server has its own registry, so
several servers in one process (tests) do not mix their figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

STAGES = ("end_of_turn", "recognize", "translate", "synthesize", "first_frame")
BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


def error_kind(error: str) -> str:
    """An utterance record's ``error`` -> a short kind for the error counter."""
    text = error.lower()
    timed_out = "timed out" in text or "timeout" in text
    for prefix, stage in (("recognizer", "recognize"), ("translator", "translate")):
        if text.startswith(prefix):
            return f"{stage}_{'timeout' if timed_out else 'error'}"
    if "socket closed" in text:
        return "playback_hung_up"
    if "cleared" in text:
        return "playback_cleared"
    if "dropped" in text:
        return "playback_dropped"
    if "synthes" in text or text.startswith("playback"):
        return f"synthesize_{'timeout' if timed_out else 'error'}"
    return "other"


class _Dropped(Collector):
    """Frames, utterances and playback items dropped since the start (live sessions and ended ones), as last
    read by :meth:`Metrics.snapshot`."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("babelfish_dropped", "work shed because a stage fell behind", labels=["what"])
        for what, count in sorted(self.totals.items()):
            family.add_metric([what], count)
        yield family


class Metrics:
    def __init__(self, *, legs: Callable[[], int], connected: Callable[[], int], rooms: Callable[[], int],
                 dropped: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.stage = Histogram("babelfish_stage_seconds", "latency of each stage of an utterance", ["stage"],
                               buckets=BUCKETS, registry=self.registry)
        self.utterances = Counter("babelfish_utterances", "finished utterances", ["outcome"],
                                  registry=self.registry)
        self.errors = Counter("babelfish_errors", "errors by kind", ["kind"], registry=self.registry)
        self.webhooks = Counter("babelfish_webhooks", "webhook requests by route and status", ["path", "status"],
                                registry=self.registry)
        self.queue_wait = Histogram("babelfish_queue_wait_seconds", "time a leg's audio waits before the segmenter "
                                    "takes it", buckets=(0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
                                    registry=self.registry)
        self._live = {
            Gauge("babelfish_legs", "legs answered and not ended", registry=self.registry): legs,
            Gauge("babelfish_legs_connected", "legs with an open audio socket", registry=self.registry): connected,
            Gauge("babelfish_rooms", "rooms with at least one leg", registry=self.registry): rooms,
        }
        self._dropped_totals = dropped
        self._dropped = _Dropped()
        self.registry.register(self._dropped)
        for stage in STAGES:  # present from the start, so dashboards see zeros rather than nothing
            self.stage.labels(stage)
        for kind in ("webhook_rejected", "webhook_rate_limited", "socket_refused", "recognize_error",
                     "recognize_timeout", "translate_error", "translate_timeout", "synthesize_error",
                     "synthesize_timeout"):
            self.errors.labels(kind)

    def snapshot(self) -> None:
        """Read the live figures (legs, rooms, work dropped) from the server's state. Called on the event
        loop, where that state lives, before :meth:`render` runs in a thread."""
        for gauge, read in self._live.items():
            gauge.set(read())
        self._dropped.totals = dict(self._dropped_totals())

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def observe_event(self, event: dict[str, Any]) -> None:
        """A caption-hub event; utterance records feed the histograms and error counts."""
        if event.get("type") != "utterance":
            return
        record = event.get("record") or {}
        for stage, seconds in (record.get("latencies") or {}).items():
            if stage in STAGES and isinstance(seconds, int | float) and seconds >= 0:
                self.stage.labels(stage).observe(seconds)
        error = record.get("error")
        self.utterances.labels("error" if error else "ok").inc()
        if error:
            self.error(error_kind(str(error)))

    def render(self) -> bytes:
        """The text format (blocking: run it off the event loop, after :meth:`snapshot`)."""
        return generate_latest(self.registry)
