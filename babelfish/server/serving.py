"""Running the app under uvicorn: in the foreground (``babelfish serve``) or in the background of the
current event loop (``babelfish call`` without ``--server``, benchmarks and tests).

On SIGTERM (or ``should_exit``) uvicorn closes every open websocket with 1012 *before* it runs the app's
lifespan shutdown, which would cut callers off mid-sentence. :class:`DrainingServer` drains the babelfish
server first, while the sockets are still open; the lifespan shutdown then finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import AsyncIterator

import uvicorn

from babelfish.config.settings import Settings
from babelfish.pipeline.protocols import Engines
from babelfish.server.app import Server, create_app
from babelfish.server.connections import GuardedH11Protocol, Waiting, waiting_cap

log = logging.getLogger(__name__)


def uvicorn_config(settings: Settings, engines: Engines | None = None, *, port: int | None = None,
                   sock: socket.socket | None = None) -> uvicorn.Config:
    port = settings.port if port is None else port
    app = create_app(settings, engines, port=port)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        ws_max_size=settings.max_message_bytes,  # uvicorn closes oversized messages with 1009
        ws_ping_interval=None,  # Vonage does not answer pings reliably; a dead call ends by event webhook
        log_level="warning",
        lifespan="on",
        # X-Forwarded-For only from deployment.trusted_proxies; uvicorn takes the rightmost address not among
        # them as the client (the rate limit's key), so a forged header neither escapes nor drains a bucket
        proxy_headers=True,
        forwarded_allow_ips=list(settings.deployment.trusted_proxies),
        # h11 (not httptools) bounds a request's head; the guarded protocol ends slow clients (connections.py)
        http=GuardedH11Protocol,
        h11_max_incomplete_event_size=settings.limits.max_header_bytes,
    )
    limits = settings.limits
    config.babelfish_limits = (limits.request_timeout_s, Waiting(waiting_cap(limits.waiting_connections)))  # type: ignore[attr-defined]
    return config


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining the babelfish server before uvicorn closes the connections."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app_server = babelfish_server(self.config)
        if app_server is not None and self.started:
            try:
                await app_server.drain()
            except Exception:
                log.exception("drain failed")
        await super().shutdown(sockets)


def babelfish_server(config: uvicorn.Config) -> Server | None:
    state = getattr(config.app, "state", None)
    return getattr(state, "server", None)


def serve(settings: Settings, engines: Engines | None = None, sock: socket.socket | None = None) -> None:
    """Serve in the foreground until SIGTERM or Ctrl-C; ``sock``: the address already taken (:func:`listener`)."""
    log.info("babelfish listening on http://%s:%d", settings.host, settings.port)
    DrainingServer(uvicorn_config(settings, engines)).run(sockets=[sock] if sock is not None else None)


class AddressInUse(ValueError):
    """The host and port cannot be listened on (said in one line by the CLI)."""


def listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening: nothing queues before the server is ready),
    or :class:`AddressInUse` saying what to do."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                                  proto=socket.IPPROTO_TCP)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise AddressInUse(f"cannot listen on {host}:{port}: {exc}; check `host`") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = ("another program (another babelfish?) listens there: stop it or choose another --port"
                if exc.errno == errno.EADDRINUSE else "choose another --host or --port")
        raise AddressInUse(f"cannot listen on {host}:{port}: {exc.strerror}; {hint}") from None
    return sock


def loopback_listener(port: int = 0) -> socket.socket:
    """A TCP socket bound to ``127.0.0.1:port`` (0: a free port) for uvicorn's ``sockets=``.

    Its protocol is named (``IPPROTO_TCP``), not left at 0 as ``socket.socket()`` leaves it: asyncio sets
    TCP_NODELAY on an accepted connection only where the protocol says TCP. Without it Nagle's algorithm
    holds back every response's second write until the client's delayed ACK, 40 ms later, on each request of
    a kept-alive connection and between the frames of a websocket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextlib.asynccontextmanager
async def background(settings: Settings, engines: Engines | None = None) -> AsyncIterator[str]:
    """Serve on a free loopback port inside this event loop; yields the base URL."""
    async with background_server(settings, engines) as (url, _):
        yield url


@contextlib.asynccontextmanager
async def background_server(settings: Settings, engines: Engines | None = None, *,
                            port: int = 0) -> AsyncIterator[tuple[str, Server]]:
    """As :func:`background`, yielding the base URL and the babelfish :class:`Server` behind it. ``port``:
    a given port rather than a free one (a cluster server must know its public URL before it starts)."""
    sock = loopback_listener(port)
    port = sock.getsockname()[1]
    config = uvicorn_config(settings, engines, port=port)
    server = DrainingServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises the startup error
                raise RuntimeError("server stopped during startup")
            await asyncio.sleep(0.02)
        app_server = babelfish_server(config)
        assert app_server is not None
        yield f"http://127.0.0.1:{port}", app_server
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 60)
        sock.close()
