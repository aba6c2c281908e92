"""Serving on loopback (``server/serving.py``): what every in-process server, the demo and the benches
listen on."""

from __future__ import annotations

import asyncio
import socket

from babelfish.server.serving import loopback_listener


async def test_connections_to_a_loopback_listener_send_without_nagles_delay() -> None:
    """asyncio turns Nagle's algorithm off only on sockets whose protocol is TCP; on a socket made with
    ``socket.socket()`` (protocol 0) every kept-alive request waited 40 ms for a delayed ACK."""
    nodelay: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nodelay.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    sock = loopback_listener()
    server = await asyncio.start_server(accepted, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        assert await asyncio.wait_for(nodelay, 5) != 0
        writer.close()
