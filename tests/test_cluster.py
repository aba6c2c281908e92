"""Several servers behind one number: a real Redis (Debian's redis-server, started here on loopback), real
babelfish servers with test-double engines, calls through the fake Vonage sent to either server at random."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from babelfish.config.settings import Settings
from babelfish.core import languages
from babelfish.core.rooms import RoomFull
from babelfish.devtools.fake_call import FakeCall
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.directory.cluster import Cluster
from babelfish.directory.shared import SharedDirectory
from babelfish.server.serving import background_server

from .conftest import OPERATOR, double_engines
from .test_rest import APP_ID, keypair

ROOT = Path(__file__).resolve().parents[1]
PACE = 4.0
SECRET = "shared-socket-token-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A throw-away Redis on loopback (no persistence)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server missing: install the Debian package redis-server (make test does)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            proc.poll()
            assert proc.returncode is None, "redis-server did not start"
            import time

            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def cluster_settings(tmp_path: Path, redis_url: str, server_id: str, url: str = "http://127.0.0.1:1",
                     **cluster: object) -> Settings:
    return Settings(public_url=url, playback_lead_ms=200, data_dir=tmp_path / server_id, menu={"languages": []},
                    security={"socket_token_secret": SECRET},
                    cluster={"redis_url": redis_url, "server_id": server_id, "heartbeat_s": 0.3,
                             "server_ttl_s": 1.5, **cluster})


async def start_process(tmp_path: Path, redis_url: str, server_id: str, api: str, private_key: str
                        ) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BABELFISH_CLUSTER__REDIS_URL": redis_url,
           "BABELFISH_CLUSTER__SERVER_ID": server_id, "BABELFISH_CLUSTER__HEARTBEAT_S": "0.3",
           "BABELFISH_CLUSTER__SERVER_TTL_S": "1.5", "BABELFISH_SECURITY__SOCKET_TOKEN_SECRET": SECRET,
           "BABELFISH_VONAGE__APPLICATION_ID": APP_ID, "BABELFISH_VONAGE__PRIVATE_KEY": private_key,
           "BABELFISH_VONAGE__API_URL": api, "BABELFISH_DATA_DIR": str(tmp_path / server_id),
           "BABELFISH_MODELS_DIR": str(tmp_path / "models"), "BABELFISH_MENU__LANGUAGES": "[]"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.serve_cluster", cwd=ROOT, env=env,
                                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    url = json.loads(line)["url"]
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while True:
            try:
                if (await http.get(f"{url}/ready")).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def rooms_of(url: str) -> dict[str, set[str]]:
    async with httpx.AsyncClient() as http:
        snap = (await http.get(f"{url}/rooms", headers=OPERATOR)).json()
    return {room["id"]: {leg["id"] for leg in room["legs"]} for room in snap["rooms"]}


def socket_host(call: FakeCall) -> str:
    endpoint = next(e for a in call.ncco if a.get("action") == "connect" for e in a["endpoint"])
    return endpoint["uri"].split("/socket")[0].replace("ws://", "http://")


async def translated(speaker: FakeCall, listener: FakeCall, speech: tuple[np.ndarray, int]) -> bool:
    turn = await speaker.say(*speech)
    return await listener.wait_heard(turn.ended, quiet_s=0.8, timeout=20)


@pytest.fixture
async def vonage_api() -> AsyncIterator[tuple[FakeVonage, str, str]]:
    private, public = keypair()
    async with FakeVonage("http://127.0.0.1:1", application_id=APP_ID, public_key=public) as vonage:
        api = await vonage.start_api()
        yield vonage, api, private


async def test_calls_to_either_server_meet_on_one_and_a_lost_server_s_rooms_move_with_no_call_lost(
        tmp_path: Path, redis_url: str, vonage_api: tuple[FakeVonage, str, str],
        speech: tuple[np.ndarray, int]) -> None:
    vonage, api, private = vonage_api
    procs = {}
    try:
        for name in ("alpha", "beta"):
            procs[name] = await start_process(tmp_path, redis_url, name, api, private)
        urls = {name: url for name, (_, url) in procs.items()}
        picks = random.Random(10)
        calls = []
        for i in range(8):  # four conversations; each caller's webhooks go to a server picked at random
            server = picks.choice(list(urls.values()))
            calls.append(await vonage.dial(f"4477009000{i:02d}", server=server, pace=PACE))
        pairs = [(calls[i], calls[i + 1]) for i in range(0, 8, 2)]
        hold = languages.prompt("hold", calls[0].headers["lang"])[0]  # said after the socket, should it drop
        assert [p["text"] for p in calls[0].prompts][-1] == hold
        answered_by = {call.answer_url.split("/answer")[0] for call in calls}
        assert answered_by == set(urls.values()), "the random picks should use both servers"

        # every room's legs meet on one server, whichever server answered them
        hosted = {url: await rooms_of(url) for url in urls.values()}
        for a, b in pairs:
            assert socket_host(a) == socket_host(b)
            assert a.headers["room"] == b.headers["room"]
            assert hosted[socket_host(a)][a.headers["room"]] == {a.leg, b.leg}
        assert sum(len(r) for r in hosted.values()) == 4
        assert all(await asyncio.gather(*(translated(a, b, speech) for a, b in pairs)))

        # the server hosting the most rooms dies (SIGKILL: no drain, no goodbye)
        victim = max(urls, key=lambda name: len(hosted[urls[name]]))
        survivor = next(name for name in urls if name != victim)
        moved = [call for call in calls if socket_host(call) == urls[victim]]
        assert moved
        procs[victim][0].send_signal(signal.SIGKILL)
        await procs[victim][0].wait()
        for call in calls:  # the load balancer now sends every webhook to the survivor
            call.event_url = f"{urls[survivor]}/event"
        async with asyncio.timeout(20):
            while not all(call.transfers == 1 and call.connected for call in moved):
                await asyncio.sleep(0.05)
        for call in moved:
            assert call.prompts[-2]["text"] == languages.prompt("reconnected", call.headers["lang"])[0]
            assert socket_host(call) == urls[survivor]

        # no call lost: all four rooms whole on the survivor, and translations flowing again in each
        after = await rooms_of(urls[survivor])
        assert sorted(map(sorted, after.values())) == sorted(sorted((a.leg, b.leg)) for a, b in pairs)
        assert not any(call.ended for call in calls)
        assert all(await asyncio.gather(*(translated(b, a, speech) for a, b in pairs)))
        async with httpx.AsyncClient() as http:
            ready = (await http.get(f"{urls[survivor]}/ready")).json()
        assert ready["ready"] and ready["depends"]["redis"]["ok"] and ready["rooms"] == 4

        for call in calls:
            await call.hang_up()
        async with asyncio.timeout(10):
            while await rooms_of(urls[survivor]):
                await asyncio.sleep(0.05)
    finally:
        for proc, _ in procs.values():
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_servers_placing_callers_at_once_never_pair_a_waiting_room_twice(tmp_path: Path,
                                                                               redis_url: str) -> None:
    members = [Cluster(cluster_settings(tmp_path, redis_url, f"s{i}", f"http://127.0.0.1:{9000 + i}"))
               for i in range(3)]
    try:
        for member in members:
            await member.heartbeat()
        placements = await asyncio.gather(*(members[i % 3].place(f"leg-{i}", f"4477{i:06d}", language=None,
                                                                  code=None) for i in range(60)))
        rooms: dict[str, list[str]] = {}
        for placement in placements:
            rooms.setdefault(placement.room, []).append(placement.leg)
        assert sorted(len(legs) for legs in rooms.values()) == [2] * 30
        for legs in rooms.values():  # the second caller of a room gets the language not yet spoken there
            langs = {(await members[0].leg(leg)).language for leg in legs}  # type: ignore[union-attr]
            assert langs == {"de-DE", "en-GB"}
        # a leg switched to the language its caller speaks (languages.detect) is recorded so; unknown legs
        # are not created by it
        was = (await members[0].leg(placements[0].leg)).language  # type: ignore[union-attr]
        await members[2].set_language(placements[0].leg, "fr-FR")
        assert (await members[0].leg(placements[0].leg)).language == "fr-FR"  # type: ignore[union-attr]
        await members[2].set_language("no-such-leg", "fr-FR")
        assert await members[0].redis.exists("bf:leg:no-such-leg") == 0
        await members[2].set_language(placements[0].leg, was)
        # a server that no longer hosts a room (taken over while it was cut off) cannot remove its legs
        record = await members[0].leg(placements[1].leg)
        assert record is not None
        stranger = next(m for m in members if m.server_id != record.server)
        await stranger.leave(record.id, hosted_here=True)
        assert await members[0].leg(record.id) is not None
        # a coded room fills up to the conference size, then refuses; a draining server gets no new rooms
        for i in range(6):
            await members[1].place(f"conf-{i}", "1", language="en-GB", code="4711")
        with pytest.raises(RoomFull):
            await members[2].place("conf-6", "1", language="en-GB", code="4711")
        await members[0].set_draining()
        fresh = await members[0].place("late", "2", language="en-GB", code=None)
        assert fresh.server != "s0"
        # a partner leaves: the room waits for the next caller, wherever that caller calls
        left = placements[0]
        await members[0].leave(left.leg)
        again = await members[2].place("next", "3", language=None, code=None)
        assert again.room == left.room or again.room == fresh.room
    finally:
        for member in members:
            await member.stop()


async def test_a_draining_server_lets_its_conversations_finish_while_new_calls_go_elsewhere(
        tmp_path: Path, redis_url: str, speech: tuple[np.ndarray, int]) -> None:
    ports = [free_port(), free_port()]
    one = cluster_settings(tmp_path, redis_url, "one", f"http://127.0.0.1:{ports[0]}")
    two = cluster_settings(tmp_path, redis_url, "two", f"http://127.0.0.1:{ports[1]}")
    one.limits.drain_s = 30
    async with (background_server(one, double_engines(), port=ports[0]) as (url1, server1),
                background_server(two, double_engines(), port=ports[1]) as (url2, _),
                FakeVonage(url1) as vonage):
        a = await vonage.dial("4477009001", pace=PACE)
        b = await vonage.dial("4477009002", pace=PACE)
        assert socket_host(a) == socket_host(b) == url1
        drain = asyncio.create_task(server1.drain())
        async with httpx.AsyncClient() as http:
            async with asyncio.timeout(5):
                while (await http.get(f"{url1}/ready")).status_code != 503:
                    await asyncio.sleep(0.05)
            assert (await http.get(f"{url1}/ready")).json()["draining"] is True
        c = await vonage.dial("4477009003", pace=PACE)  # answered by the draining server, placed on the other
        d = await vonage.dial("4477009004", server=url2, pace=PACE)
        assert socket_host(c) == socket_host(d) == url2
        assert await translated(a, b, speech), "the draining server's conversation goes on"
        assert not drain.done() and a.connected and b.connected
        await a.hang_up()
        await b.hang_up()
        await asyncio.wait_for(drain, 10)
        assert await translated(c, d, speech)


async def test_one_server_is_ready_with_no_dependencies_and_health_names_no_cluster(
        server: tuple[str, object]) -> None:
    url, _ = server
    async with httpx.AsyncClient() as http:
        ready = await http.get(f"{url}/ready")
        health = (await http.get(f"{url}/health")).json()
    assert ready.status_code == 200 and ready.json()["depends"] == {} and ready.json()["ready"] is True
    assert health["status"] == "ok" and health["server_id"] is None


async def test_redis_out_of_reach_makes_a_cluster_server_not_ready(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    settings = cluster_settings(tmp_path, redis_url, "lonely", f"http://127.0.0.1:{port}")
    async with background_server(settings, double_engines(), port=port) as (url, server):
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{url}/ready")).json()["depends"]["redis"]["ok"] is True
            assert isinstance(server.directory, SharedDirectory)
            with contextlib.suppress(RedisConnectionError):  # the server goes away as it answers
                await server.directory.cluster.redis.execute_command("SHUTDOWN", "NOSAVE")
            ready = await http.get(f"{url}/ready")
        assert ready.status_code == 503 and ready.json()["depends"]["redis"]["ok"] is False


def test_a_cluster_ncco_sends_the_socket_to_the_room_s_server_events_to_the_balancer_and_holds_the_caller(
        tmp_path: Path) -> None:
    from babelfish.core.rooms import Leg, Room
    from babelfish.server.app import Server

    settings = cluster_settings(tmp_path, "redis://127.0.0.1:1/0", "me", "https://bf1.example.org",
                                shared_url="https://babelfish.example.org", hold_s=9)
    server = Server(settings, double_engines())
    leg = Leg(id="leg-1", caller="447700900001", language="de-DE", room=Room(id="room-1"))
    ncco = server.connect_ncco(leg, server.own_url, socket_base="https://bf2.example.org")
    connect = ncco[1]
    assert connect["endpoint"][0]["uri"].startswith("wss://bf2.example.org/socket?leg=leg-1&token=")
    assert connect["eventUrl"] == ["https://babelfish.example.org/event"]
    assert ncco[2] == {"action": "talk", "text": languages.prompt("hold", "de-DE")[0], "language": "de-DE",
                       "loop": 3}
    local = server.connect_ncco(leg, server.own_url)  # a room hosted here (or a browser phone's)
    assert local[1]["endpoint"][0]["uri"].startswith("wss://bf1.example.org/socket?")
