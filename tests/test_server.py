"""The real server (uvicorn, HTTP, websockets) driven through the fake Vonage, with test-double engines."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from babelfish.core import audio
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.telephony import wire

from .conftest import OPERATOR, dial_pair

PACE = 4.0  # stream four times faster than real time


async def rooms(url: str) -> dict:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{url}/rooms", headers=OPERATOR)).json()


async def test_two_callers_are_paired_and_hear_each_other_translated(server, vonage, feed, speech) -> None:
    url, _ = server
    samples, rate = speech
    german, english = await dial_pair(vonage)
    assert german.headers["lang"] == "de-DE" and english.headers["lang"] == "en-GB"
    assert german.headers["room"] == english.headers["room"]

    turn = await german.say(samples, rate)
    assert await english.wait_heard(after=turn.started, quiet_s=0.5, timeout=20)
    first = (await feed.wait_utterances(1))[0]
    assert first["leg"] == german.leg and first["language"] == "de-DE"
    assert first["source_text"].startswith("speech of")
    assert first["translations"] == {"en-GB": f"[en-GB] {first['source_text']}"}
    assert first["latencies"]["first_frame"] > 0
    # recognition started at the pause, before the end of turn was sure, and was kept
    assert first["speculated"] is True

    turn = await english.say(samples, rate)
    assert await german.wait_heard(after=turn.started, quiet_s=0.5, timeout=20)
    second = (await feed.wait_utterances(2))[1]
    assert second["leg"] == english.leg and second["translations"] == {
        "de-DE": f"[de-DE] {second['source_text']}"}

    for call in (german, english):
        assert call.bad_frames == 0 and call.received_frames > 0
        assert call.connected
        assert all(len(p.frame) == audio.frame_bytes(call.rate) for p in call.played)
    # nobody hears untranslated speech: each heard only synthesized tones, never the recording
    heard = english.heard()
    assert heard.size and np.max(np.abs(heard)) > 0.1


async def test_ncco_greets_in_the_callers_language_and_validates_with_the_vonage_sdk(server) -> None:
    from vonage_voice.models.connect_endpoints import WebsocketEndpoint
    from vonage_voice.models.ncco import Connect, Talk

    url, _ = server
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{url}/answer", params={"to": "447700900000", "from": "4915100000009",
                                                    "uuid": "aaaa-1", "conversation_uuid": "CON-1"})
        assert r.status_code == 200
        talk, conn = r.json()
        Talk.model_validate(talk)
        endpoint = dict(conn["endpoint"][0])
        endpoint["contentType"] = endpoint.pop("content-type")
        model = Connect.model_validate({**conn, "from_": conn.pop("from"), "endpoint": [endpoint]})
        assert isinstance(model.endpoint[0], WebsocketEndpoint)
        assert model.endpoint[0].contentType == "audio/l16;rate=16000"
        assert model.endpoint[0].uri.startswith("ws://") and "leg=aaaa-1" in model.endpoint[0].uri
        assert talk["language"] == "de-DE" and talk["text"].startswith("Bitte warten")
        assert conn["eventUrl"] == [f"{url}/event"]
        assert len(json.dumps(endpoint["headers"])) <= 512
        # POST with a JSON body, and the original's /ncco alias, give the same kind of answer
        r2 = await http.post(f"{url}/ncco", json={"to": "447700900000", "from": "447700900003",
                                                  "uuid": "aaaa-2", "conversation_uuid": "CON-2"})
        assert r2.status_code == 200 and r2.json()[0]["language"] == "en-GB"
        # Vonage retries the answer webhook: the same uuid gets the same leg, not a new caller (and a fresh
        # socket token)
        r3 = await http.get(f"{url}/answer", params={"to": "447700900000", "from": "4915100000009",
                                                     "uuid": "aaaa-1", "conversation_uuid": "CON-1"})
        again = r3.json()[1]["endpoint"][0]["uri"]
        assert again.split("&token=")[0] == conn["endpoint"][0]["uri"].split("&token=")[0]
        assert r3.json()[1]["endpoint"][0]["headers"] == endpoint["headers"]


async def test_a_third_caller_waits_for_a_new_partner(server, vonage) -> None:
    url, _ = server
    a = await vonage.dial("4915100000001")
    b = await vonage.dial("4915100000002")
    c = await vonage.dial("4915100000003")
    assert a.headers["room"] == b.headers["room"] != c.headers["room"]
    state = await rooms(url)
    sizes = sorted(len(r["legs"]) for r in state["rooms"])
    assert sizes == [1, 2]
    d = await vonage.dial("4915100000004")
    assert d.headers["room"] == c.headers["room"]


async def test_when_one_party_hangs_up_the_other_hears_a_notice_and_can_be_paired_again(server, vonage) -> None:
    url, _ = server
    a, b = await dial_pair(vonage)
    before = a.received_frames
    await b.hang_up()
    await asyncio.sleep(0.5)
    assert a.connected
    async with asyncio.timeout(10):
        while a.received_frames == before:  # the spoken "the other party has hung up" notice
            await asyncio.sleep(0.05)
    state = await rooms(url)
    assert [len(r["legs"]) for r in state["rooms"]] == [1]
    c = await vonage.dial("447700900003", pace=PACE)
    assert c.headers["room"] == a.headers["room"]
    assert c.headers["lang"] == "en-GB"


async def test_completed_event_cleans_up_the_leg(server, vonage) -> None:
    url, _ = server
    a = await vonage.dial("4915100000001")
    r = await a.event("completed", duration="3")
    assert r.status_code == 200
    state = await rooms(url)
    assert state["legs"] == 0


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/answer", {"params": {"to": "447700900000"}}, 400),
        ("GET", "/answer", {"params": {"to": "1", "from": "2", "uuid": "bad uuid!", "conversation_uuid": "c"}},
         400),
        ("POST", "/answer", {"content": b"{not json"}, 400),
        ("POST", "/answer", {"json": ["a", "list"]}, 400),
        ("POST", "/event", {"content": b"\xff\xfe"}, 400),
        ("POST", "/event", {"json": {"uuid": "x"}}, 400),
        ("POST", "/event", {"json": {"status": 5}}, 400),
        ("POST", "/event", {"json": {"status": "brand-new-status", "uuid": "x"}}, 200),
        ("POST", "/event", {"json": {"status": "human", "call_uuid": "x"}}, 200),
    ],
)
async def test_bad_webhooks_get_a_clear_error_and_the_server_stays_healthy(server, method, path, kwargs,
                                                                           status) -> None:
    url, _ = server
    async with httpx.AsyncClient() as http:
        r = await http.request(method, f"{url}{path}", **kwargs)
        assert r.status_code == status, r.text
        if status == 400:
            assert "error" in r.json() and r.json()["error"]
        assert (await http.get(f"{url}/health")).json()["status"] == "ok"


async def _close_of(ws) -> tuple[int | None, str]:
    with pytest.raises(ConnectionClosed):
        for _ in range(100):
            await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code, ws.close_reason


async def test_socket_without_connected_event_or_for_unknown_leg_is_refused(server, vonage) -> None:
    url, _ = server
    ws_url = url.replace("http://", "ws://")
    async with connect(f"{ws_url}/socket?leg=nobody") as ws:
        await ws.send(wire.connected_message("audio/l16;rate=16000", {}))
        code, reason = await _close_of(ws)
        assert code == wire.CLOSE_POLICY and "no socket token" in reason
    call = await vonage.dial("4915100000001", connect=False)
    uri = call._endpoint()["uri"]
    async with connect(uri) as ws:
        await ws.send(b"\x00" * 640)
        code, reason = await _close_of(ws)
        assert code == wire.CLOSE_POLICY and "websocket:connected" in reason
    async with connect(uri) as ws:
        await ws.send(json.dumps({"event": "websocket:dtmf", "digit": "1"}))
        code, reason = await _close_of(ws)
        assert code == wire.CLOSE_POLICY
    # the leg itself is unharmed and can still connect properly
    await call.connect()
    assert call.connected


async def test_oversized_message_closes_with_1009_and_the_other_leg_carries_on(server, vonage) -> None:
    url, _ = server
    a = await vonage.dial("4915100000001")
    b = await vonage.dial("4915100000002")
    for task in a._tasks:
        task.cancel()
    with pytest.raises(ConnectionClosed):
        await a.ws.send(b"\x00" * (64 * 1024 + 2))
        for _ in range(100):
            await asyncio.wait_for(a.ws.recv(), 5)
    assert a.ws.close_code == wire.CLOSE_TOO_BIG
    await asyncio.sleep(0.3)
    assert b.connected
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/health")).json()["status"] == "ok"


async def test_odd_sized_chunks_are_reframed_and_bad_text_is_ignored(server, vonage, feed, speech) -> None:
    url, engines = server
    samples, rate = speech
    a = await vonage.dial("4915100000001", connect=False)
    await vonage.dial("4915100000002", pace=PACE)  # the partner who hears a
    endpoint = a._endpoint()
    async with connect(endpoint["uri"]) as ws:
        await ws.send(wire.connected_message(endpoint["content-type"], endpoint["headers"]))
        await ws.send("this is not json")
        await ws.send(json.dumps({"no": "event"}))
        await ws.send(json.dumps({"event": "websocket:dtmf", "dtmf": {"digit": "7", "duration": 100}}))
        pcm = audio.float_to_pcm(audio.resample(samples, rate, 16000))
        pcm += b"\x00" * 32000 * 2  # two seconds of silence after the prompt
        for i in range(0, len(pcm), 333):  # odd sizes, even an odd number of bytes
            await ws.send(pcm[i : i + 333])
        records = await feed.wait_utterances(1, timeout=20)
        assert records and records[0]["leg"] == a.leg
        assert records[0]["translations"]["en-GB"].startswith("[en-GB] speech of 5.")
    assert not any(e.get("type") == "dtmf" or "digit" in e for e in feed.events)  # a key press may be a PIN


async def test_a_failing_engine_costs_one_utterance_not_the_call(server, vonage, feed, speech) -> None:
    url, engines = server
    samples, rate = speech
    a, b = await dial_pair(vonage)
    engines.recognizer.failing = True
    await a.say(samples, rate)
    records = await feed.wait_utterances(1, timeout=20)
    engines.recognizer.failing = False
    assert records[0]["error"] and "recognizer" in records[0]["error"]
    turn = await a.say(samples, rate)
    assert await b.wait_heard(after=turn.started, quiet_s=0.5, timeout=20)
    records = await feed.wait_utterances(2, timeout=20)
    assert records[1]["error"] is None and records[1]["translations"]
    assert a.connected and b.connected


async def test_fake_vonage_drops_the_socket_on_a_wrong_frame_size_and_honours_clear() -> None:
    """The fake behaves like Vonage towards a misbehaving server."""

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute

    from babelfish.server.serving import loopback_listener

    frame = audio.frame_bytes(16000)

    async def answer(request):
        host = request.headers["host"]
        return JSONResponse([{"action": "connect", "from": "447700900000", "endpoint": [
            {"type": "websocket", "uri": f"ws://{host}/socket", "content-type": "audio/l16;rate=16000",
             "headers": {"mode": request.query_params["from"]}}]}])

    async def event(request):
        return JSONResponse({})

    async def sock(ws):
        await ws.accept()
        hello = json.loads(await ws.receive_text())
        if hello["mode"] == "4915100000001":
            await ws.send_bytes(b"\x01\x00" * 100)  # 200 bytes: not a 20 ms frame at 16 kHz
        else:
            for _ in range(100):
                await ws.send_bytes(b"\x10\x00" * (frame // 2))  # two seconds of audio, sent at once
            await ws.send_text(wire.clear_command())
            assert json.loads(await ws.receive_text())["event"] == wire.CLEARED
        await asyncio.sleep(5)

    app = Starlette(routes=[Route("/answer", answer), Route("/event", event, methods=["POST"]),
                            WebSocketRoute("/socket", sock)])
    s = loopback_listener()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[s]))
    while not server.started:
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{s.getsockname()[1]}"
    try:
        async with FakeVonage(url) as vonage:
            bad = await vonage.dial("4915100000001")
            good = await vonage.dial("4915100000002")
            async with asyncio.timeout(5):
                while bad.closed is None or good.cleared == 0:
                    await asyncio.sleep(0.02)
            assert bad.bad_frames == 1 and bad.closed[0] == 1006
            assert good.received_frames == 100
            # most of the two seconds had not played yet when the clear came: it was dropped
            assert 0 < len(good.played) < 100
    finally:
        server.should_exit = True
        await task


async def test_partial_captions_while_speaking_then_the_final(tmp_path, speech) -> None:
    from babelfish.config.pipeline import SegmenterSettings
    from babelfish.config.settings import Settings
    from babelfish.server.serving import background

    from .conftest import double_engines

    samples, rate = speech
    settings = Settings(models_dir=tmp_path, segmenter=SegmenterSettings(partial_every_ms=500))
    async with background(settings, double_engines()) as url:
        feed = CaptionFeed(url)
        await feed.start()
        async with FakeVonage(url) as vonage:
            a = await vonage.dial("4915100000001", pace=1.0)
            await vonage.dial("447700900002", pace=1.0)
            await a.say(samples, rate)
            await feed.wait_utterances(1, timeout=20)
        await feed.stop()
    kinds = [e["type"] for e in feed.events if e.get("leg") == a.leg and e["type"] in ("speaking", "partial", "final")]
    assert kinds[0] == "speaking" and "partial" in kinds and kinds[-1] == "final"
    assert kinds.index("partial") < kinds.index("final")
    partial = next(e for e in feed.events if e["type"] == "partial")
    assert partial["text"].startswith("speech of")
