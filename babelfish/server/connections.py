"""HTTP connections that cannot hold the server hostage: slow clients (slowloris) and huge headers.

uvicorn times out an idle kept-alive connection, but not one that sends half a request and then a header line
every few seconds: a thousand of those use up the process's file descriptors (``nofile`` is often 1024) and
no call can come in. Its default parser (httptools) also accepts header lines of any length, buffering each
in memory. So the server speaks HTTP/1.1 through h11 (uvicorn's other parser, with a bound on an incomplete
request head) and through :class:`GuardedH11Protocol`, which adds two rules to uvicorn's own protocol:

- a request must arrive whole (headers and body) within ``limits.request_timeout_s`` of its first byte
  being awaited; a client that is slower is disconnected;
- at most ``limits.waiting_connections`` connections may wait for a request at once; a new one closes the
  oldest waiting one. A genuine client (Vonage, a browser) sends its request at once after connecting, so
  the oldest waiting connections are the slow ones, and a flood of them can never use up the descriptors.

Written as a subclass because uvicorn has neither setting, and swapping the ASGI server (hypercorn has a
header timeout but no waiting cap) would cost the websocket handling the rest of the server is tuned on.
Behind nginx (deploy/nginx) the proxy applies the same rules first; these hold when nobody put one in front.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

# their_state values once a request has arrived whole (or the connection is no longer HTTP)
_ARRIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.MIGHT_SWITCH_PROTOCOL, h11.SWITCHED_PROTOCOL, h11.ERROR)


def waiting_cap(configured: int | None) -> int:
    """The configured cap, or a quarter of this process's descriptor limit (at most 1024): room is left for
    calls' websockets, model files and the database."""
    if configured is not None:
        return configured
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(16, min(1024, soft // 4))


class Waiting:
    """The connections of one server that wait for a request, oldest first, and how many were dropped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._order: dict[GuardedH11Protocol, None] = {}  # insertion-ordered set
        self.timed_out = 0
        self.evicted = 0

    def add(self, protocol: GuardedH11Protocol) -> None:
        self._order.pop(protocol, None)
        self._order[protocol] = None
        while len(self._order) > self.cap:
            oldest = next(iter(self._order))
            self.discard(oldest)
            self.evicted += 1
            if self.evicted == 1 or self.evicted % 1000 == 0:
                log.warning("more than %d connections wait for a request: closing the oldest (%d so far); "
                            "a slow-client flood?", self.cap, self.evicted)
            oldest.drop()

    def discard(self, protocol: GuardedH11Protocol) -> None:
        self._order.pop(protocol, None)

    def __len__(self) -> int:
        return len(self._order)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a whole-request deadline and a cap on connections waiting for one.

    Configured through the uvicorn config's ``babelfish_limits`` attribute (see serving.uvicorn_config):
    ``(request_timeout_s, waiting)``; a config without it behaves as plain uvicorn."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits: tuple[float | None, Waiting | None] = getattr(config, "babelfish_limits", (None, None))
        self._request_timeout_s, self._waiting = limits
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_request()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._deadline is not None and (self.conn.their_state in _ARRIVED or self.transport.get_protocol()
                                           is not self or self.transport.is_closing()):
            self._request_arrived()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._await_request()  # kept alive: the next request has the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._request_arrived()
        super().connection_lost(exc)

    def _await_request(self) -> None:
        if self._request_timeout_s is None or self._waiting is None:
            return
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self._request_timeout_s, self._too_slow)
        self._waiting.add(self)

    def _request_arrived(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._waiting is not None:
            self._waiting.discard(self)

    def _too_slow(self) -> None:
        self._deadline = None
        if self._waiting is not None:
            self._waiting.discard(self)
            self._waiting.timed_out += 1
        self.drop()

    def drop(self) -> None:
        """Disconnect without a response: a slow or surplus client gets nothing to wait on."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if not self.transport.is_closing():
            self.transport.abort()
