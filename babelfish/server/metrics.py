"""``/metrics`` in Prometheus' text format: how long each stage takes, what is live, what went wrong.

Stage latencies come from the utterance records (the same figures the transcript keeps): ``end_of_turn``,
``recognize``, ``translate``, ``synthesize`` and ``first_frame`` (end of speech to the first translated
frame). Errors are counted by kind: rejected webhooks, refused sockets, engine failures and timeouts by
stage, utterances and frames dropped because something fell behind. Each server has its own registry, so
several servers in one process (tests) do not mix their figures.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from babelfish.core.events import BargeIn, Event, Skipped, UtteranceDone
from babelfish.core.utterance import Failure

STAGES = ("end_of_turn", "recognize", "translate", "synthesize", "first_frame")
BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


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


class Recent:
    """The last hour of utterance records and errors, minute by minute, for the console's plots: the same
    records the histograms observe, kept in bounded deques (oldest first out)."""

    def __init__(self, window_s: float = 3600.0, max_records: int = 20_000) -> None:
        self.window_s = window_s
        self._utterances: deque[tuple[float, dict[str, float]]] = deque(maxlen=max_records)
        self._errors: deque[tuple[float, str]] = deque(maxlen=max_records)

    def utterance(self, latencies: dict[str, float], at: float | None = None) -> None:
        self._utterances.append((time.time() if at is None else at, latencies))

    def error(self, kind: str, at: float | None = None) -> None:
        self._errors.append((time.time() if at is None else at, kind))

    def summary(self, now: float | None = None) -> dict[str, Any]:
        """Per minute of the last hour (oldest first): utterances and each stage's p50/p90; errors by kind."""
        now = time.time() if now is None else now
        start = now - self.window_s
        count = max(1, int(self.window_s // 60))
        buckets: list[list[dict[str, float]]] = [[] for _ in range(count)]
        for at, latencies in self._utterances:
            if at > start:
                buckets[min(count - 1, int((at - start) // 60))].append(latencies)
        errors: dict[str, int] = {}
        for at, kind in self._errors:
            if at > start:
                errors[kind] = errors.get(kind, 0) + 1
        every = [latencies for bucket in buckets for latencies in bucket]
        return {
            "window_s": self.window_s, "now": now,
            "minutes": [{"t": start + 60 * i, "utterances": len(bucket), "stages": _percentiles(bucket)}
                        for i, bucket in enumerate(buckets)],
            "totals": {"utterances": len(every), "stages": _percentiles(every)},
            "errors": dict(sorted(errors.items())),
        }


def _percentiles(records: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        values = sorted(r[stage] for r in records if stage in r)
        if values:
            out[stage] = {"p50": round(_quantile(values, 0.5), 4), "p90": round(_quantile(values, 0.9), 4),
                          "n": len(values)}
    return out


def _quantile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default), on sorted ``values``."""
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


class Metrics:
    def __init__(self, *, legs: Callable[[], int], connected: Callable[[], int], rooms: Callable[[], int],
                 dropped: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.stage = Histogram("babelfish_stage_seconds", "latency of each stage of an utterance", ["stage"],
                               buckets=BUCKETS, registry=self.registry)
        self.utterances = Counter("babelfish_utterances", "finished utterances", ["outcome"],
                                  registry=self.registry)
        self.errors = Counter("babelfish_errors", "errors by kind", ["kind"], registry=self.registry)
        self.skipped = Counter("babelfish_translations_skipped", "translations a listener did not hear, by "
                               "reason: late (timed out, or stale when its turn came), backlog, failed", ["reason"],
                               registry=self.registry)
        self.barge_ins = Counter("babelfish_barge_ins", "times a listener spoke over their translation (its "
                                 "playback cleared)", registry=self.registry)
        self.glossary = Counter("babelfish_glossary_terms", "glossary renderings the translations had to contain: "
                                "found, or missed (docs/glossary.md)", ["result"], registry=self.registry)
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
        self.recent = Recent()
        for stage in STAGES:  # present from the start, so dashboards see zeros rather than nothing
            self.stage.labels(stage)
        for kind in ("webhook_rejected", "webhook_rate_limited", "socket_refused", *Failure):
            self.errors.labels(str(kind))
        for reason in ("late", "backlog", "failed"):
            self.skipped.labels(reason)
        for result in ("found", "missed"):
            self.glossary.labels(result)

    def snapshot(self) -> None:
        """Read the live figures (legs, rooms, work dropped) from the server's state. Called on the event
        loop, where that state lives, before :meth:`render` runs in a thread."""
        for gauge, read in self._live.items():
            gauge.set(read())
        self._dropped.totals = dict(self._dropped_totals())

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()
        self.recent.error(kind)

    def observe_event(self, event: Event) -> None:
        """A caption-feed event: barge-ins are counted, utterance records feed the histograms and errors."""
        if isinstance(event, BargeIn):
            self.barge_ins.inc()
        if isinstance(event, Skipped):  # one per listener who missed a translation (the record has one error)
            self.skipped.labels(event.reason).inc()
            self.recent.error(f"skipped_{event.reason}")
        if not isinstance(event, UtteranceDone):
            return
        record = event.record
        observed: dict[str, float] = {}
        for stage, seconds in record.latencies.items():
            if stage in STAGES and seconds >= 0:  # (end of turn < 0: audio sent faster than real time)
                self.stage.labels(stage).observe(seconds)
                observed[stage] = seconds
        self.recent.utterance(observed)
        if record.terms_checked:
            self.glossary.labels("found").inc(record.terms_checked - len(record.terms_missed))
            self.glossary.labels("missed").inc(len(record.terms_missed))
        self.utterances.labels("error" if record.error else "ok").inc()
        if record.error:
            self.error(str(record.failure or "other"))

    def render(self) -> bytes:
        """The text format (blocking: run it off the event loop, after :meth:`snapshot`)."""
        return generate_latest(self.registry)
