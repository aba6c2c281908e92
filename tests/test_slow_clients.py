"""Slow clients and huge headers against the bare server (no proxy in front): a slowloris flood, header lines
of any length, a request that never finishes. Each test tries it as a stranger would and checks that a
genuine caller still gets in (babelfish/server/connections.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from babelfish.config.settings import LimitsSettings, Settings
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.connections import waiting_cap
from babelfish.server.serving import background

from .conftest import double_engines

ROOT = Path(__file__).resolve().parent.parent
SECRET = "slow-client-test-signature-secret-of-some-length"
HALF_REQUEST = b"GET /answer?to=1&from=2 HTTP/1.1\r\nHost: babelfish\r\n"


async def half_open(url: str, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """``count`` connections that each send half a request (a slowloris opening)."""
    host, port = url.removeprefix("http://").split(":")
    connections = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(HALF_REQUEST)
        connections.append((reader, writer))
    return connections


async def is_closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed this connection (without a response)."""
    try:
        return await asyncio.wait_for(reader.read(1), 0.3) == b""
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def drip(connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]], every_s: float) -> None:
    """One more header line on each connection every ``every_s`` seconds, never the end of the request."""
    n = 0
    while True:
        await asyncio.sleep(every_s)
        n += 1
        for _reader, writer in connections:
            with contextlib.suppress(Exception):
                writer.write(f"X-Slow-{n}: a\r\n".encode())


async def genuine_answer(url: str, timeout: float = 2.0) -> tuple[int, float]:
    """A signed GET /answer as Vonage sends it: its status and how long it took."""
    vonage = FakeVonage(url, signature_secret=SECRET)
    query = {"to": "447700900000", "from": "4915100000001", "uuid": "genuine-1", "conversation_uuid": "CON-1"}
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.get(f"{url}/answer", params=query, headers=vonage.signed(query=query))
        return response.status_code, time.monotonic() - started
    finally:
        await vonage.close()


@contextlib.asynccontextmanager
async def server_process(tmp_path: Path, nofile: int = 1024) -> AsyncIterator[str]:
    """A real server process (test-double engines) whose open-file limit is ``nofile``, as on many hosts."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BABELFISH_MODELS_DIR": str(tmp_path),
           "BABELFISH_SECURITY__SIGNATURE_SECRET": SECRET}

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.serve_doubles", str(tmp_path / "drained"), cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=limit)
    try:
        assert proc.stdout is not None
        url = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))["url"]
        async with httpx.AsyncClient() as http, asyncio.timeout(60):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{url}/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield url
    finally:
        proc.kill()
        await proc.wait()


async def test_a_slowloris_flood_does_not_stop_a_genuine_call_at_nofile_1024(tmp_path: Path) -> None:
    async with server_process(tmp_path, nofile=1024) as url:
        flood = await half_open(url, 1100)
        dripping = asyncio.create_task(drip(flood, every_s=1.0))
        try:
            await asyncio.sleep(2.0)  # the flood holds on, one header line at a time
            status, took = await genuine_answer(url)
            assert status == 200 and took < 2.0
            async with httpx.AsyncClient(timeout=2.0) as http:
                assert (await http.get(f"{url}/health")).status_code == 200
        finally:
            dripping.cancel()
            for _reader, writer in flood:
                writer.close()


async def test_a_request_that_never_finishes_is_disconnected(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path, limits=LimitsSettings(request_timeout_s=1.0))
    async with background(settings, double_engines()) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(HALF_REQUEST)
        started = time.monotonic()
        async with asyncio.timeout(10):
            for n in range(20):  # a header line every 0.3 s: each one alone is in time
                await asyncio.sleep(0.3)
                writer.write(f"X-Slow-{n}: a\r\n".encode())
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                if reader.at_eof() or writer.is_closing():
                    break
            assert await reader.read() == b""  # closed without a response
        assert time.monotonic() - started < 2.5
        writer.close()


async def test_connections_waiting_for_a_request_are_capped_oldest_first(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path, limits=LimitsSettings(waiting_connections=5, request_timeout_s=60))
    async with background(settings, double_engines()) as url:
        flood = await half_open(url, 12)
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(timeout=2.0) as http:
            assert (await http.get(f"{url}/health")).status_code == 200  # a new client gets in at once
        closed = [await is_closed(reader) for reader, _writer in flood]
        # the oldest were closed to make room; the newest still wait (until their request deadline)
        assert closed == [True] * 8 + [False] * 4, closed
        for _reader, writer in flood:
            writer.close()


def resident_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def test_huge_header_lines_are_refused_without_buffering_them(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path)
    async with background(settings, double_engines()) as url:
        host, port = url.removeprefix("http://").split(":")
        before = resident_mb()
        for _ in range(4):  # four 100 MB header lines, as the attack sent
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /health HTTP/1.1\r\nHost: babelfish\r\nX-Huge: ")
            chunk = b"a" * 1024 * 1024
            with contextlib.suppress(ConnectionError):
                for _ in range(100):  # the server stops reading long before the end
                    writer.write(chunk)
                    await writer.drain()
            with contextlib.suppress(ConnectionError):
                head = await asyncio.wait_for(reader.read(100), 5)
                assert head == b"" or head.startswith(b"HTTP/1.1 400"), head
            writer.close()
        assert resident_mb() - before < 50
        async with httpx.AsyncClient(timeout=2.0) as http:
            assert (await http.get(f"{url}/health")).status_code == 200


@pytest.mark.parametrize(("soft", "configured", "cap"), [(1024, None, 256), (65536, None, 1024),
                                                          (100, None, 25), (1024, 50, 50)])
def test_the_waiting_cap_follows_the_open_file_limit(monkeypatch, soft: int, configured: int | None,
                                                     cap: int) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (soft, soft))
    assert waiting_cap(configured) == cap
