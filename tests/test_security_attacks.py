"""Attacks on the doors around a call (the operator endpoints, request sizes, forwarded addresses, metrics,
subscribers, audio speed, parsing, socket admission, signatures, sample rates), each performed as a stranger
would and its refusal asserted. The browser phone's are in test_phone_security.py, the call opening's in
test_reception_security.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
import uuid

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from babelfish.config.settings import LimitsSettings, NetworkSettings, SecuritySettings, Settings
from babelfish.core import audio
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.app import create_app
from babelfish.server.limits import AudioPace, TooFast
from babelfish.server.serving import background, background_server
from babelfish.telephony import wire

from .conftest import FAST_AUDIO, OPERATOR, OPERATOR_TOKEN, dial_pair, double_engines
from .test_security import SECRET, event_body, vonage_jwt

PACE = 4.0


def app_client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings, double_engines()))


def answer_params(n: int = 1, caller: str = "447700900123") -> dict[str, str]:
    return {"uuid": f"leg-{n}", "conversation_uuid": f"CON-{n}", "from": caller, "to": "447700900000"}


# -- 1. live calls are for the operator only --------------------------------------------------------------

def test_rooms_captions_and_metrics_need_the_operator_token(settings: Settings) -> None:
    with app_client(settings) as http:
        http.get("/answer", params=answer_params(1, "447700900123"))
        for path in ("/rooms", "/metrics"):
            assert http.get(path).status_code == 401, path
            assert http.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
            assert http.get(path, headers={"Authorization": f"Basic {OPERATOR_TOKEN}"}).status_code == 401, path
            assert http.get(path, headers={"Authorization": f"bEaReR {OPERATOR_TOKEN}"}).status_code == 200, path
            assert http.get(path, params={"token": OPERATOR_TOKEN}).status_code == 200, path
        # the operator sees the room, with the caller's number masked
        text = http.get("/rooms", headers=OPERATOR).text
        assert "447700900123" not in text and "44*******123" in text
        for query in ("", "?token=wrong"):
            with pytest.raises(WebSocketDisconnect) as refused, http.websocket_connect(f"/captions{query}") as ws:
                ws.receive_text()
            assert refused.value.code == wire.CLOSE_POLICY
        with http.websocket_connect("/captions", headers=OPERATOR):
            pass
        # a page elsewhere cannot ride on the operator's credential
        evil = {**OPERATOR, "Origin": "https://evil.example"}
        assert http.get("/rooms", headers=evil).status_code == 403
        with pytest.raises(WebSocketDisconnect), http.websocket_connect("/captions", headers=evil) as ws:
            ws.receive_text()


def test_with_no_operator_token_the_operator_endpoints_are_off(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BABELFISH_SECURITY__OPERATOR_TOKEN")
    settings = Settings(models_dir=tmp_path, menu={"languages": []})
    assert settings.security.operator_token is None
    with app_client(settings) as http:
        for path in ("/rooms", "/metrics"):
            r = http.get(path, headers=OPERATOR)
            assert r.status_code == 403 and "OPERATOR_TOKEN" in r.json()["error"], path
        with pytest.raises(WebSocketDisconnect), http.websocket_connect("/captions", headers=OPERATOR) as ws:
            ws.receive_text()
    open_metrics = Settings(models_dir=tmp_path, security=SecuritySettings(metrics_open=True))
    with app_client(open_metrics) as http:
        assert http.get("/metrics").status_code == 200  # a private scraper, by the operator's choice
        assert http.get("/rooms").status_code == 403


async def test_key_presses_are_neither_published_nor_logged(server, vonage, feed, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    url, _ = server
    a = await vonage.dial("4915100000001", pace=PACE)
    await vonage.dial("447700900002", pace=PACE)
    await a.ws.send(json.dumps({"event": wire.DTMF, "dtmf": {"digit": "7", "duration": 250}}))
    await a.ws.send(json.dumps({"event": wire.DTMF, "digit": "4"}))
    await asyncio.sleep(0.5)
    assert not [e for e in feed.events if e.get("type") == "dtmf" or "digit" in e]
    assert [r for r in caplog.records if "key was pressed" in r.getMessage()]
    server_lines = [r.getMessage() for r in caplog.records  # the server's, not the fake caller's own client
                    if r.name.startswith("babelfish") and not r.name.startswith("babelfish.devtools")]
    assert not [line for line in server_lines if "DTMF" in line or "digit" in line.lower()]


# -- 5. forwarded addresses ----------------------------------------------------------------------------------

async def test_a_forged_x_forwarded_for_neither_escapes_the_rate_limit_nor_drains_another_address(tmp_path) -> None:
    limits = LimitsSettings(**FAST_AUDIO, webhook_rate=0.5, webhook_burst=5)
    direct = Settings(models_dir=tmp_path, limits=limits, deployment=NetworkSettings(trusted_proxies=[]))
    async with background(direct, double_engines()) as url, httpx.AsyncClient() as http:
        codes = [(await http.post(f"{url}/event", content=event_body(),
                                  headers={"X-Forwarded-For": f"10.{i}.{i}.{i}"})).status_code for i in range(20)]
    assert codes.count(429) == 15  # a random header per request changed nothing: 5 got through, as for anyone

    proxied = Settings(models_dir=tmp_path, limits=limits)  # we are behind a proxy on 127.0.0.1 (the default)
    async with background(proxied, double_engines()) as url, httpx.AsyncClient() as http:
        vonage_ip, attacker = "216.147.0.10", "203.0.113.66"
        for _ in range(20):  # the attacker forges Vonage's address; the proxy appends the attacker's own
            await http.post(f"{url}/event", content=event_body(),
                            headers={"X-Forwarded-For": f"{vonage_ip}, {attacker}"})
        genuine = await http.post(f"{url}/event", content=event_body(), headers={"X-Forwarded-For": vonage_ip})
        assert genuine.status_code == 200
        attacked = await http.post(f"{url}/event", content=event_body(), headers={"X-Forwarded-For": attacker})
        assert attacked.status_code == 429


# -- 6. request bodies --------------------------------------------------------------------------------------

async def test_large_bodies_get_413_without_being_read(tmp_path) -> None:
    settings = Settings(models_dir=tmp_path, limits=LimitsSettings(**FAST_AUDIO, max_body_bytes=64 * 1024))
    sent = 0

    async def endless():
        nonlocal sent
        chunk = b"x" * 65536
        for _ in range(64 * 1024):  # 4 GB, if anyone read it all
            sent += len(chunk)
            yield chunk

    async with background(settings, double_engines()) as url, httpx.AsyncClient(timeout=10) as http:
        for path in ("/event", "/answer", "/input", "/phone/join", "/calls"):
            r = await http.post(f"{url}{path}", content=b"{" + b" " * 200_000 + b"}",
                                headers={"Content-Type": "application/json"})
            assert r.status_code in (413, 405), (path, r.status_code)
        r = await http.post(f"{url}/event", content=b" " * 1000, headers={"Content-Type": "application/json"})
        assert r.status_code == 400  # small bodies still reach the handler
        try:  # a body with no Content-Length (chunked): refused once it passes the cap
            r = await http.post(f"{url}/phone/join", content=endless(), headers={"Content-Type": "application/json"})
            assert r.status_code == 413
        except httpx.HTTPError:
            pass  # or the server answered 413 and closed while the client was still sending: refused either way
        assert sent < 64 * 1024 * 1024  # the server stopped reading long before the end
        assert (await http.get(f"{url}/health")).status_code == 200


# -- 7. metrics ---------------------------------------------------------------------------------------------

def test_metrics_have_one_series_per_route_and_render_off_the_event_loop(settings: Settings, caplog) -> None:
    caplog.set_level(logging.WARNING)
    app = create_app(settings.model_copy(update={
        "security": SecuritySettings(signature_secret=SECRET, operator_token=OPERATOR_TOKEN),
        "limits": LimitsSettings(**FAST_AUDIO, webhook_burst=10_000)}), double_engines())
    server = app.state.server
    threads: list[str] = []
    render = server.metrics.render
    server.metrics.render = lambda: (threads.append(threading.current_thread().name), render())[1]
    with TestClient(app) as http:
        loop_thread = http.portal.call(lambda: threading.current_thread().name)
        for _ in range(300):
            assert http.get(f"/answer/invitation/{uuid.uuid4().hex}", params=answer_params()).status_code == 401
        text = http.get("/metrics", headers=OPERATOR).text
    series = [line for line in text.splitlines() if line.startswith("babelfish_webhooks_total")]
    assert series == ['babelfish_webhooks_total{path="/answer/invitation/{token}",status="401"} 300.0']
    assert threads and loop_thread not in threads
    rejected = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejected) == 1  # the first of the flood; the rest are summed up in a line per 10 s
    server._rejections.every_s = 0
    server._rejections.warning("webhook %s rejected", "/answer")
    assert "and 299 more like it" in caplog.records[-1].getMessage()


# -- 8. subscribers --------------------------------------------------------------------------------------------

def test_caption_subscribers_are_capped_and_idle_ones_closed(tmp_path) -> None:
    settings = Settings(models_dir=tmp_path, limits=LimitsSettings(**FAST_AUDIO, max_subscribers=3,
                                                                   subscriber_idle_s=1.0))
    with app_client(settings) as http:
        with http.websocket_connect("/captions", headers=OPERATOR), \
                http.websocket_connect("/captions", headers=OPERATOR), \
                http.websocket_connect("/captions", headers=OPERATOR):
            with pytest.raises(WebSocketDisconnect) as full, \
                    http.websocket_connect("/captions", headers=OPERATOR) as fourth:
                fourth.receive_text()
            assert full.value.code == wire.CLOSE_TRY_AGAIN
            assert http.get("/answer", params=answer_params()).status_code == 200  # calls still get through
        t0 = time.monotonic()
        with http.websocket_connect("/captions", headers=OPERATOR) as idle:
            with pytest.raises(WebSocketDisconnect):
                idle.receive_text()
        assert time.monotonic() - t0 < 5
        assert app_server(http).hub.subscribers == 0


def app_server(http: TestClient):
    return http.app.state.server  # type: ignore[attr-defined]


# -- 9. audio faster than real time ------------------------------------------------------------------------------

def test_audio_pace_throttles_then_refuses() -> None:
    pace = AudioPace(speed=1.5, ahead_s=3.0, burst_s=1.0)
    assert pace.push(0.02, now=0.0) == 0.0
    assert pace.push(0.9, now=0.0) == 0.0  # within the burst
    assert pace.push(0.5, now=0.0) == pytest.approx(0.42 / 1.5)  # over it: wait
    real = AudioPace(speed=1.5, ahead_s=3.0)
    for i in range(3000):  # a minute at exactly real time, as Vonage sends, never waits
        assert real.push(0.02, now=i * 0.02) == 0.0
    with pytest.raises(TooFast):
        for i in range(1000):
            pace.push(0.02, now=1.0 + i * 0.001)  # 20x real time


async def test_a_leg_sending_far_above_real_time_is_closed_and_others_carry_on(tmp_path) -> None:
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200, menu={"languages": []},
                        limits=LimitsSettings(audio_speed=1.5, audio_ahead_s=2.0))
    async with background_server(settings, double_engines()) as (url, server), FakeVonage(url) as vonage:
        honest = await vonage.dial("4915100000001", pace=1.0)
        flood = await vonage.dial("447700900002", connect=False)
        ep = flood._endpoint()
        frame = b"\x00\x01" * (audio.frame_bytes(flood.rate) // 2)
        async with connect(ep["uri"]) as ws:
            await ws.send(wire.connected_message(ep["content-type"], ep["headers"]))
            t0 = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(100_000):  # as fast as the socket takes them
                    await ws.send(frame)
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == wire.CLOSE_POLICY
            assert time.monotonic() - t0 < 20
        assert honest.connected and honest.leg in server.switchboard.legs
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{url}/metrics", headers=OPERATOR)).text
        assert 'babelfish_errors_total{kind="audio_too_fast"} 1.0' in metrics
        assert 'babelfish_errors_total{kind="audio_throttled"} 1.0' in metrics
        assert "babelfish_queue_wait_seconds_count" in metrics


# -- 10. parsing ------------------------------------------------------------------------------------------------

def test_deeply_nested_json_and_huge_offsets_are_400(tmp_path) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    settings = Settings(models_dir=tmp_path, menu={"languages": []},
                        limits=LimitsSettings(**FAST_AUDIO, max_body_bytes=1024 * 1024),
                        transcripts={"token": "transcripts-token-24-chars"})
    with app_client(settings) as http:
        for path in ("/event", "/answer", "/input", "/phone/join"):
            r = http.post(path, content=nested, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (path, r.status_code, r.text[:200])
        calls = {"Authorization": "Bearer transcripts-token-24-chars"}
        assert http.get("/calls", params={"offset": str(10**30)}, headers=calls).status_code == 400
        assert http.get("/calls", params={"offset": "9" * 5000}, headers=calls).status_code == 400
        assert http.get("/calls", params={"offset": "5"}, headers=calls).status_code == 200
    signed = settings.model_copy(update={"security": SecuritySettings(signature_secret=SECRET)})
    with app_client(signed) as http:
        token = vonage_jwt(payload_hash=hashlib.sha256(nested).hexdigest())
        r = http.post("/event", content=nested, headers={"Content-Type": "application/json",
                                                         "Authorization": f"Bearer {token}"})
        assert r.status_code == 400
    with pytest.raises(wire.ProtocolError):
        wire.parse_event("[" * 100_000)


# -- 11. socket admission -----------------------------------------------------------------------------------------

async def test_a_webhook_jwt_does_not_open_another_legs_socket(tmp_path) -> None:
    settings = Settings(models_dir=tmp_path, security=SecuritySettings(signature_secret=SECRET))
    async with background(settings, double_engines()) as url, FakeVonage(url, signature_secret=SECRET) as vonage:
        victim = await vonage.dial("4915100000001", connect=False)
        ep = victim._endpoint()
        stolen = vonage.signed(body=b"{}")  # any JWT Vonage signed for some webhook
        bare = ep["uri"].split("?")[0] + f"?leg={victim.leg}"
        async with connect(bare, additional_headers=stolen) as ws:
            await ws.send(wire.connected_message(ep["content-type"], ep["headers"]))
            with pytest.raises(ConnectionClosed) as refused:
                await asyncio.wait_for(ws.recv(), 5)
        assert refused.value.rcvd.code == wire.CLOSE_POLICY and "token" in refused.value.rcvd.reason
        await victim.connect(pace=PACE)  # the genuine socket still gets in
        await asyncio.sleep(0.2)
        assert victim.connected


# -- 12. signed webhooks ---------------------------------------------------------------------------------------------

def test_a_signed_webhook_without_payload_hash_is_refused(tmp_path) -> None:
    settings = Settings(models_dir=tmp_path, security=SecuritySettings(signature_secret=SECRET))
    body = event_body()
    with app_client(settings) as http:
        r = http.post("/event", content=body, headers={"Content-Type": "application/json",
                                                       "Authorization": f"Bearer {vonage_jwt()}"})
        assert r.status_code == 401 and "payload_hash" in r.json()["error"]
        r = http.post("/event", content=body, headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {vonage_jwt(payload_hash=hashlib.sha256(body).hexdigest())}"})
        assert r.status_code == 200


# -- 15. 24 kHz sockets ------------------------------------------------------------------------------------------------

async def test_a_24_khz_call_is_segmented_recognized_and_played_back_at_24_khz(tmp_path, speech) -> None:
    samples, rate = speech
    engines = double_engines()
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200, sample_rate=24000, menu={"languages": []})
    async with background_server(settings, engines) as (url, server), FakeVonage(url) as vonage:
        a, b = await dial_pair(vonage)
        assert a.rate == b.rate == 24000
        turn = await a.say(samples[: rate * 2], rate)
        assert await b.wait_heard(after=turn.started, quiet_s=0.3, timeout=20)
        assert b.bad_frames == 0 and b.received_frames > 0  # every frame 960 bytes: 20 ms at 24 kHz
        assert engines.recognizer.calls >= 1
        session = server.switchboard.legs[a.leg].session
        assert session.rate == 24000 and session.listen_rate == 16000


async def test_a_leg_whose_session_fails_to_start_is_cleaned_up(server, vonage, monkeypatch) -> None:
    url, _ = server
    import babelfish.server.audio_socket as audio_socket

    def broken(*args, **kwargs):
        raise RuntimeError("session setup failed")

    monkeypatch.setattr(audio_socket, "LegSession", broken)
    a = await vonage.dial("4915100000001", pace=PACE)
    async with httpx.AsyncClient() as http:
        for _ in range(50):
            if (await http.get(f"{url}/rooms", headers=OPERATOR)).json()["legs"] == 0:
                break
            await asyncio.sleep(0.1)
        assert (await http.get(f"{url}/rooms", headers=OPERATOR)).json()["legs"] == 0
    assert not a.connected  # its socket was closed, not left hanging


def test_unsupported_rates_are_refused_in_one_place() -> None:
    assert audio.listen_rate(8000) == 8000 and audio.listen_rate(24000) == 16000
    with pytest.raises(ValueError):
        audio.listen_rate(44100)
    with pytest.raises(wire.ProtocolError):
        wire.content_rate("audio/l16;rate=44100", 16000)
    with pytest.raises(ValueError):
        Settings(sample_rate=44100)
    assert np.asarray(audio.SUPPORTED_RATES).tolist() == [8000, 16000, 24000]
