"""Structured logs: every line carries the leg and room it is about.

The ids live in context variables, set by the webhook and socket handlers; asyncio copies the context
into every task a handler starts, so the pipeline's own log lines (segmenter, recognizer, playback) carry
the ids of their leg without passing them around. ``log_format = "json"`` writes one JSON object per line
for a log collector; ``"text"`` is for people.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

LEG: contextvars.ContextVar[str | None] = contextvars.ContextVar("leg", default=None)
ROOM: contextvars.ContextVar[str | None] = contextvars.ContextVar("room", default=None)


def bind(*, leg: str | None = None, room: str | None = None) -> None:
    """Name the leg (Vonage call uuid) and room the current request or task is about."""
    if leg is not None:
        LEG.set(leg)
    if room is not None:
        ROOM.set(room)


class ContextFilter(logging.Filter):
    """Adds ``leg`` and ``room`` (or None) to every record passing the handler it is attached to."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "leg"):
            record.leg = LEG.get()
        if not hasattr(record, "room"):
            record.room = ROOM.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [f"{key}={value}" for key in ("room", "leg") if (value := getattr(record, key, None))]
        record.ids = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    converter = time.gmtime  # type: ignore[assignment]  # timestamps in UTC, as the trailing Z says (typeshed is narrower than the stdlib)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "leg": getattr(record, "leg", None),
            "room": getattr(record, "room", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def handler(log_format: str = "text", stream: Any = None) -> logging.Handler:
    out = logging.StreamHandler(stream or sys.stderr)
    out.addFilter(ContextFilter())
    out.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return out


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send all logging to stderr in ``log_format`` (replacing the root logger's handlers)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(log_format))
    root.setLevel(level)
    for noisy in ("httpx", "websockets", "uvicorn.error", "faster_whisper"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Summarized:
    """A warning that may come in floods (rejected webhooks): the first is logged, then at most one line per
    ``every_s`` saying how many more there were, so an attacker cannot fill the disk or drown other lines."""

    def __init__(self, logger: logging.Logger, every_s: float = 10.0) -> None:
        self.logger = logger
        self.every_s = every_s
        self._last = -float("inf")
        self._suppressed = 0

    def warning(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            self._suppressed += 1
            return
        more = ""
        if self._suppressed:
            more = f" (and {self._suppressed} more like it in the last {now - self._last:.0f} s)"
        self._last, self._suppressed = now, 0
        self.logger.warning(message + more, *args)
