"""Utterance records and the caption feed.

Every finished utterance becomes one :class:`Utterance` (leg, language, times, source text, translations,
stage latencies). Captions (partial while someone speaks, then final) and the records themselves are
published on a :class:`CaptionHub`; the web page, ``babelfish call`` and the transcript store subscribe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Utterance:
    id: str
    room: str
    leg: str
    language: str  # what it was recognized in: the leg's language, or the one identified (languages.detect)
    started_at: float  # wall clock (epoch seconds)
    ended_at: float
    source_text: str = ""
    translations: dict[str, str] = field(default_factory=dict)  # listener language -> text
    latencies: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    cut: bool = False
    speculated: bool = False  # recognition began at a pause, before the end of the turn was sure
    error: str | None = None
    language_confidence: float | None = None  # the identified language's share among the candidates

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latencies"] = {k: round(v, 4) for k, v in self.latencies.items()}
        return data


class CaptionHub:
    """Fan-out of caption events to subscribers, each with a bounded queue (a slow reader loses captions,
    never the server's memory)."""

    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: set[tuple[asyncio.Queue[dict[str, Any]], str | None]] = set()
        self.queue_size = queue_size
        self.dropped = 0
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    def listen(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback`` synchronously with every event (for in-process consumers that must see all of
        them, such as metrics; it must be quick and must not raise)."""
        self._listeners.append(callback)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, room: str | None = None) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.queue_size)
        self._subscribers.add((queue, room))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers = {(q, r) for q, r in self._subscribers if q is not queue}

    def publish(self, event: dict[str, Any]) -> None:
        event.setdefault("time", time.time())
        for callback in self._listeners:
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a consumer's bug must not stop the captions
                log.exception("caption listener failed")
        for queue, room in list(self._subscribers):
            if room is not None and event.get("room") != room:
                continue
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1
