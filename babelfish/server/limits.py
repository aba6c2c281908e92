"""Bounds on what one client may send: webhook rate per address, audio speed per leg, request body size.

Vonage sends a handful of webhooks per call from a few addresses; a flood from one address is someone
else. Buckets are kept for a bounded number of addresses (least recently seen forgotten first), so a
spread-out flood costs a fixed amount of memory.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RateLimiter:
    def __init__(self, rate: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last time)
        self.refused = 0

    def allow(self, key: str, now: float | None = None) -> bool:
        """Take one token from ``key``'s bucket; False when it is empty."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        else:
            self.refused += 1
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return allowed

    def left(self, key: str, now: float | None = None) -> float:
        """The tokens in ``key``'s bucket now, without taking one."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.rate)

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may send again."""
        tokens, _ = self._buckets.get(key, (float(self.burst), 0.0))
        return max(0.0, (1.0 - tokens) / self.rate)


class AudioPace:
    """How far a leg's audio runs ahead of the wall clock. Vonage sends exactly 50 frames a second (a late
    burst after a network stall only catches up); a client that sends faster takes CPU from every other
    call. Above ``speed`` times real time the socket's reader waits (the client is throttled); once the
    audio runs ``ahead_s`` ahead of real time the socket is closed."""

    def __init__(self, speed: float, ahead_s: float, burst_s: float = 1.0) -> None:
        self.speed = speed
        self.ahead_s = ahead_s
        self.burst_s = burst_s
        self._start: float | None = None
        self.audio_s = 0.0
        self.throttles = 0  # how many times the reader was told to wait

    def push(self, seconds: float, now: float | None = None) -> float:
        """Account ``seconds`` of audio received; returns how long to wait before reading more (0: none).
        Raises :class:`TooFast` once the audio is ``ahead_s`` ahead."""
        now = time.monotonic() if now is None else now
        if self._start is None:
            self._start = now
        self.audio_s += seconds
        elapsed = now - self._start
        if self.audio_s - elapsed > self.ahead_s:
            raise TooFast(f"audio {self.audio_s - elapsed:.1f} s ahead of real time")
        allowed = self.burst_s + self.speed * elapsed
        wait = max(0.0, (self.audio_s - allowed) / self.speed)
        self.throttles += wait > 0
        return wait


class TooFast(Exception):
    """A leg sends audio far faster than real time."""


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413, refused by its Content-Length before any
    of it is read, or as soon as a body sent without one grows past the cap (nothing more is buffered).
    Starlette reads bodies whole, so without this one large POST could take the server's memory. ``larger``:
    paths allowed a bigger body (the operator's glossary CSV), whose routes check the credential before they
    read any of it."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = max(self.max_bytes, self.larger.get(scope.get("path", ""), 0))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _error(send, 400, "Content-Length is not a number")
                return
            if int(declared) > limit:
                await _error(send, 413, f"request body over {limit} bytes")
                return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except _TooLarge:
            if not started:
                await _error(send, 413, f"request body over {limit} bytes")


async def _error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
