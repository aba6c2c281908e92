"""The caption feed: what happens in the calls, as typed events, to whoever follows it.

Each event is a dataclass (a caption while someone speaks, a final caption per listener, a finished
utterance's record, legs connecting and ending, barge-ins, language switches). In-process listeners
(metrics) get the objects; subscribers (``/captions``, the browser phone, the console) get their JSON,
``{"type": ..., "room": ..., "leg": ..., "time": ..., ...}``, each through a bounded queue: a slow reader
loses captions, never the server's memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from babelfish.core.utterance import Utterance

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Event:
    kind: ClassVar[str]  # the JSON "type"
    room: str
    leg: str
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, **asdict(self)}


@dataclass(kw_only=True)
class LegEvent(Event):
    """About a leg's speech, in the language it speaks."""

    language: str


@dataclass(kw_only=True)
class Speaking(LegEvent):
    kind = "speaking"
    text: str = ""


@dataclass(kw_only=True)
class BargeIn(LegEvent):
    """The leg spoke over what it was hearing: its playback was cleared."""

    kind = "barge-in"


@dataclass(kw_only=True)
class LanguageSwitched(LegEvent):
    kind = "language"
    previous: str
    confidence: float | None = None


@dataclass(kw_only=True)
class Partial(LegEvent):
    """What the speaker has said so far (and its translations, from a speech translator)."""

    kind = "partial"
    text: str
    translations: dict[str, str] = field(default_factory=dict)
    stable: str = ""  # simultaneous mode: the start of ``text`` that will not change (LocalAgreement)


@dataclass(kw_only=True)
class Final(LegEvent):
    """An utterance's text and, for one listener (``target``, ``listener``; none when nobody listens), its
    translation."""

    kind = "final"
    text: str
    translation: str | None
    utterance: str
    confidence: float | None = None
    target: str | None = None
    listener: str | None = None


@dataclass(kw_only=True)
class Skipped(LegEvent):
    """A listener did not hear an utterance's translation, and why: ``late`` (the translation or its
    playback came too late: timed out, or dropped as stale), ``backlog`` (too much was queued for them) or
    ``failed`` (an engine failed). The speaker's words are in the transcript all the same."""

    kind = "skipped"
    text: str
    utterance: str
    target: str
    listener: str
    reason: str


@dataclass(kw_only=True)
class EngineFailed(LegEvent):
    kind = "error"
    text: str


@dataclass(kw_only=True)
class UtteranceDone(Event):
    """An utterance is over for every listener: its record."""

    kind = "utterance"
    record: Utterance

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "room": self.room, "leg": self.leg, "time": self.time,
                "record": self.record.to_dict()}


@dataclass(kw_only=True)
class LegConnected(Event):
    kind = "leg"
    language: str

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "event": "connected"}


@dataclass(kw_only=True)
class LegEnded(Event):
    kind = "leg"
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "event": "ended"}


class CaptionHub:
    """Fan-out of caption events to subscribers, each with a bounded queue (a slow reader loses captions,
    never the server's memory)."""

    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: set[tuple[asyncio.Queue[dict[str, Any]], str | None]] = set()
        self.queue_size = queue_size
        self.dropped = 0
        self._listeners: list[Callable[[Event], None]] = []

    def listen(self, callback: Callable[[Event], None]) -> None:
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

    def publish(self, event: Event) -> None:
        for callback in self._listeners:
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a consumer's bug must not stop the captions
                log.exception("caption listener failed")
        message = event.to_json()  # subscribers send it on as JSON
        for queue, room in list(self._subscribers):
            if room is not None and event.room != room:
                continue
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                self.dropped += 1
