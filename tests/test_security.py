"""Signed webhooks and authenticated sockets: only Vonage, and only for legs this server answered, get in."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from babelfish.config.settings import SecuritySettings, Settings
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.serving import background, background_server
from babelfish.telephony import wire
from babelfish.telephony.signature import query_hashes
from babelfish.telephony.tokens import SocketTokens, TokenError

from .conftest import OPERATOR, OPERATOR_TOKEN, dial_pair, double_engines

SECRET = "the-vonage-signature-secret-of-this-account"
WRONG = "a-guess-at-the-secret-that-is-long-enough"
PACE = 4.0


def secured(**more) -> SecuritySettings:
    """Signed webhooks on, and the operator token the tests read /rooms and /metrics with."""
    return SecuritySettings(signature_secret=SECRET, operator_token=OPERATOR_TOKEN, **more)


@pytest.fixture
def signed_settings(tmp_path) -> Settings:
    return Settings(models_dir=tmp_path, playback_lead_ms=200,
                    security=secured())


def vonage_jwt(secret: str = SECRET, *, payload_hash: str | None = None, iat: float | None = None,
               iss: str = "Vonage", **extra) -> str:
    claims = {"iat": int(time.time() if iat is None else iat), "jti": str(uuid.uuid4()), "iss": iss,
              "api_key": "key", "application_id": "app", **extra}
    if payload_hash is not None:
        claims["payload_hash"] = payload_hash
    return jwt.encode(claims, secret, algorithm="HS256")


def event_body(uuid_: str = "leg-1", status: str = "ringing") -> bytes:
    return json.dumps({"uuid": uuid_, "conversation_uuid": "CON-1", "status": status, "from": "447700900001",
                       "to": "447700900000", "direction": "inbound"}).encode()


async def test_signed_calls_work_end_to_end(signed_settings, speech) -> None:
    """With a signature secret, the fake signs every webhook exactly as Vonage does and the whole call
    works: answer, events, socket, translation, hang-up."""
    samples, rate = speech
    async with background(signed_settings, double_engines()) as url:
        feed = CaptionFeed(url)
        await feed.start()
        async with FakeVonage(url, signature_secret=SECRET) as vonage:
            a, b = await dial_pair(vonage)
            turn = await a.say(samples[: rate * 2], rate)
            assert await b.wait_heard(after=turn.started, quiet_s=0.3, timeout=20)
            assert (await feed.wait_utterances(1))[0]["leg"] == a.leg
            r = await a.event("completed", duration="3")
            assert r.status_code == 200
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{url}/health")).json()["legs"] == 1  # a's signed "completed" counted
                metrics = (await http.get(f"{url}/metrics", headers=OPERATOR)).text
        await feed.stop()
        assert 'babelfish_errors_total{kind="webhook_rejected"} 0.0' in metrics


def _cases(url: str) -> list[tuple[str, dict]]:
    body = event_body()
    good_hash = hashlib.sha256(body).hexdigest()
    params = {"to": "447700900000", "from": "447700900001", "uuid": "leg-9", "conversation_uuid": "CON-9"}
    query_hash = next(iter(query_hashes(list(params.items()))))
    tampered = body.replace(b"ringing", b"completed")
    post = {"Content-Type": "application/json"}
    return [
        ("missing header", dict(method="POST", url=f"{url}/event", content=body, headers=post)),
        ("not a bearer token", dict(method="POST", url=f"{url}/event", content=body,
                                    headers={**post, "Authorization": f"Basic {vonage_jwt(payload_hash=good_hash)}"})),
        ("garbage token", dict(method="POST", url=f"{url}/event", content=body,
                               headers={**post, "Authorization": "Bearer not.a.jwt"})),
        ("wrong secret", dict(method="POST", url=f"{url}/event", content=body, headers={
            **post, "Authorization": f"Bearer {vonage_jwt(WRONG, payload_hash=good_hash)}"})),
        ("tampered body", dict(method="POST", url=f"{url}/event", content=tampered,
                               headers={**post, "Authorization": f"Bearer {vonage_jwt(payload_hash=good_hash)}"})),
        ("stale iat", dict(method="POST", url=f"{url}/event", content=body, headers={
            **post, "Authorization": f"Bearer {vonage_jwt(payload_hash=good_hash, iat=time.time() - 3600)}"})),
        ("iat in the future", dict(method="POST", url=f"{url}/event", content=body, headers={
            **post, "Authorization": f"Bearer {vonage_jwt(payload_hash=good_hash, iat=time.time() + 3600)}"})),
        ("not issued by Vonage", dict(method="POST", url=f"{url}/event", content=body, headers={
            **post, "Authorization": f"Bearer {vonage_jwt(payload_hash=good_hash, iss='someone')}"})),
        ("alg none", dict(method="POST", url=f"{url}/event", content=body, headers={
            **post, "Authorization": "Bearer " + jwt.encode({"iat": int(time.time()), "iss": "Vonage",
                                                             "payload_hash": good_hash}, None, algorithm="none")})),
        ("tampered query", dict(method="GET", url=f"{url}/answer", params={**params, "from": "447700900666"},
                                headers={"Authorization": f"Bearer {vonage_jwt(payload_hash=query_hash)}"})),
        ("wrong hash on the answer POST", dict(method="POST", url=f"{url}/answer", json=params, headers={
            "Authorization": f"Bearer {vonage_jwt(payload_hash='0' * 64)}"})),
    ]


async def test_unsigned_tampered_stale_or_foreign_webhooks_get_401_and_are_logged(signed_settings, caplog) -> None:
    caplog.set_level(logging.WARNING)
    async with background(signed_settings, double_engines()) as url, httpx.AsyncClient() as http:
        cases = _cases(url)
        for name, request in cases:
            r = await http.request(**request)
            assert r.status_code == 401, (name, r.status_code, r.text)
            assert r.json()["error"].startswith("unauthorized"), name
        rejected = [r for r in caplog.records if "rejected" in r.getMessage() and r.name.startswith("babelfish")]
        assert len(rejected) == 1  # the first; a flood is summed up in one line per 10 s (test_security_attacks)
        metrics = (await http.get(f"{url}/metrics", headers=OPERATOR)).text
        assert f'babelfish_errors_total{{kind="webhook_rejected"}} {float(len(cases))}' in metrics
        assert (await http.get(f"{url}/rooms", headers=OPERATOR)).json()["legs"] == 0  # nothing got through
        # and the genuine article is accepted: body, GET query (in the order sent); never without a hash
        body = event_body()
        ok = await http.post(f"{url}/event", content=body, headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {vonage_jwt(payload_hash=hashlib.sha256(body).hexdigest())}"})
        assert ok.status_code == 200, ok.text
        params = {"to": "447700900000", "from": "447700900001", "uuid": "leg-9", "conversation_uuid": "CON-9"}
        query_hash = hashlib.sha256(json.dumps(params, separators=(",", ":")).encode()).hexdigest()
        ok = await http.get(f"{url}/answer?{urlencode(params)}",
                            headers={"Authorization": f"Bearer {vonage_jwt(payload_hash=query_hash)}"})
        assert ok.status_code == 200 and ok.json()[-1]["action"] == "connect"
        unhashed = await http.post(f"{url}/event", content=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {vonage_jwt()}"})
        assert unhashed.status_code == 401


async def test_a_replayed_webhook_and_a_query_the_signature_does_not_cover_are_refused(signed_settings) -> None:
    """A captured request sent again verbatim, and a GET signed over the empty body but carrying a query of
    the attacker's choosing: both 401 (before, both were accepted)."""
    body = event_body()
    headers = {"Content-Type": "application/json",
               "Authorization": f"Bearer {vonage_jwt(payload_hash=hashlib.sha256(body).hexdigest())}"}
    params = {"to": "447700900000", "from": "447700900666", "uuid": "leg-7", "conversation_uuid": "CON-7"}
    async with background(signed_settings, double_engines()) as url, httpx.AsyncClient() as http:
        assert (await http.post(f"{url}/event", content=body, headers=headers)).status_code == 200
        again = await http.post(f"{url}/event", content=body, headers=headers)
        assert again.status_code == 401 and "used before" in again.json()["error"]
        empty = hashlib.sha256(b"").hexdigest()
        forged = await http.get(f"{url}/answer", params=params,
                                headers={"Authorization": f"Bearer {vonage_jwt(payload_hash=empty)}"})
        assert forged.status_code == 401, forged.text
        assert (await http.get(f"{url}/rooms", headers=OPERATOR)).json()["legs"] == 0


async def test_a_webhook_that_failed_on_our_side_may_be_retried_with_the_same_token() -> None:
    """Vonage retries an answer webhook that got a 5xx; the retry is not a replay."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from babelfish.telephony.signature import WebhookVerifier, signed

    verifier = WebhookVerifier(SECRET)
    statuses = iter([503, 200, 200])

    @signed(lambda: verifier)
    async def handler(request: Request) -> Response:
        return Response(status_code=next(statuses))

    app = Starlette(routes=[Route("/event", handler, methods=["POST"])])
    body = event_body()
    headers = {"Authorization": f"Bearer {vonage_jwt(payload_hash=hashlib.sha256(body).hexdigest())}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        codes = [(await http.post("/event", content=body, headers=headers)).status_code for _ in range(3)]
    assert codes == [503, 200, 401]  # failed, retried, then a replay of the accepted one


async def test_the_freshness_window_is_a_setting(tmp_path) -> None:
    settings = Settings(models_dir=tmp_path, security=secured(signature_max_age_s=10))
    body = event_body()
    digest = hashlib.sha256(body).hexdigest()
    async with background(settings, double_engines()) as url, httpx.AsyncClient() as http:
        for age, status in ((5, 200), (30, 401)):
            token = vonage_jwt(payload_hash=digest, iat=time.time() - age)
            r = await http.post(f"{url}/event", content=body, headers={"Authorization": f"Bearer {token}",
                                                                      "Content-Type": "application/json"})
            assert r.status_code == status, (age, r.text)


async def test_a_loud_warning_at_startup_when_webhooks_are_not_signed(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="babelfish")
    async with background(Settings(models_dir=tmp_path), double_engines()):
        pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("SIGNED WEBHOOKS ARE OFF" in m and "SIGNATURE_SECRET" in m for m in warnings)
    caplog.clear()
    async with background(Settings(models_dir=tmp_path, security=secured()),
                          double_engines()):
        pass
    assert not any("SIGNED WEBHOOKS ARE OFF" in r.getMessage() for r in caplog.records)


# -- sockets ------------------------------------------------------------------------------------------


async def _refusal(uri: str, headers: dict[str, str], hello: dict | None = None,
                   auth: dict[str, str] | None = None) -> tuple[int | None, str]:
    async with connect(uri, additional_headers=auth or {}) as ws:
        await ws.send(wire.connected_message("audio/l16;rate=16000", hello if hello is not None else headers))
        with pytest.raises(ConnectionClosed):
            for _ in range(200):
                await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code, ws.close_reason


def _without_token(uri: str) -> str:
    parts = urlsplit(uri)
    leg = parse_qs(parts.query)["leg"][0]
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode({'leg': leg})}"


def _token(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["token"][0]


async def test_socket_tokens_are_single_use_bound_to_their_leg_and_unforgeable(server, vonage) -> None:
    url, _ = server
    a = await vonage.dial("4915100000001", connect=False)
    b = await vonage.dial("4915100000002", connect=False)
    ep_a, ep_b = a._endpoint(), b._endpoint()
    assert "token=" in ep_a["uri"]
    # a's token used for b's leg; a forged one; none at all
    stolen = ep_b["uri"].replace(_token(ep_b["uri"]), _token(ep_a["uri"]))
    code, reason = await _refusal(stolen, ep_b["headers"])
    assert code == wire.CLOSE_POLICY and "not valid for this leg" in reason
    forged = ep_a["uri"].replace(_token(ep_a["uri"]), _token(ep_a["uri"])[:-4] + "AAAA")
    code, reason = await _refusal(forged, ep_a["headers"])
    assert code == wire.CLOSE_POLICY and "not valid" in reason
    code, reason = await _refusal(_without_token(ep_a["uri"]), ep_a["headers"])
    assert code == wire.CLOSE_POLICY and "no socket token" in reason
    # the refusals used nothing up: the real one connects
    await a.connect(pace=PACE)
    assert a.connected
    # the same URI again while the leg is connected, and after: a replay
    code, reason = await _refusal(ep_a["uri"], ep_a["headers"])
    assert code == wire.CLOSE_POLICY and "replay" in reason
    await a.hang_up()
    code, reason = await _refusal(ep_a["uri"], ep_a["headers"])
    assert code == wire.CLOSE_POLICY and "replay" in reason
    # a token in the endpoint headers (echoed in websocket:connected) is as good as one in the URI
    headers = {**ep_b["headers"], "token": _token(ep_b["uri"])}
    async with connect(_without_token(ep_b["uri"])) as ws:
        await ws.send(wire.connected_message(ep_b["content-type"], headers))
        await ws.send(b"\x00" * 640)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)  # admitted: no close comes
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{url}/metrics", headers=OPERATOR)).text
    assert 'babelfish_errors_total{kind="socket_refused"} 5.0' in metrics


async def test_a_token_for_a_leg_that_has_ended_is_refused(server, vonage) -> None:
    url, _ = server
    a = await vonage.dial("4915100000001", connect=False)
    await a.event("completed")
    code, reason = await _refusal(a._endpoint()["uri"], a._endpoint()["headers"])
    assert code == wire.CLOSE_POLICY and "unknown leg" in reason


def test_socket_tokens_expire() -> None:
    tokens = SocketTokens(b"k" * 32, ttl_s=60)
    token = tokens.issue("leg-1", now=1000.0)
    assert tokens.check(token, "leg-1", now=1059.0)
    with pytest.raises(TokenError, match="expired"):
        tokens.check(token, "leg-1", now=1061.0)
    with pytest.raises(TokenError, match="malformed"):
        tokens.check("garbage", "leg-1", now=1000.0)
    # a shared secret lets another server check the token; another secret does not
    assert SocketTokens(b"k" * 32).check(token, "leg-1", now=1001.0)
    with pytest.raises(TokenError):
        SocketTokens(b"x" * 32).check(token, "leg-1", now=1001.0)


async def test_vonage_signed_socket_upgrade(tmp_path) -> None:
    settings = Settings(models_dir=tmp_path, security=secured(vonage_socket_auth=True))
    async with background_server(settings, double_engines()) as (url, _server):
        async with FakeVonage(url, signature_secret=SECRET) as vonage:
            a = await vonage.dial("4915100000001", connect=False)
            b = await vonage.dial("4915100000002", connect=False)
            c = await vonage.dial("4915100000003", connect=False)
            ep = a._endpoint()
            assert ep["authorization"] == {"type": "vonage"}
            # Vonage's JWT alone does not admit the socket (it names no leg), nor the token alone when the
            # NCCO asked Vonage to sign the upgrade...
            signed = vonage.signed()
            code, reason = await _refusal(_without_token(ep["uri"]), ep["headers"], auth=signed)
            assert code == wire.CLOSE_POLICY and "no socket token" in reason
            code, reason = await _refusal(ep["uri"], ep["headers"])
            assert code == wire.CLOSE_POLICY and "no Vonage signature" in reason
            # ...both admit it, once: the same JWT again is a replay, and a JWT from a wrong secret is refused
            async with connect(ep["uri"], additional_headers=signed) as ws:
                await ws.send(wire.connected_message(ep["content-type"], ep["headers"]))
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.5)
            ep_b = b._endpoint()
            code, reason = await _refusal(ep_b["uri"], ep_b["headers"], auth=signed)
            assert code == wire.CLOSE_POLICY and "replay" in reason
            bad = {"Authorization": f"Bearer {vonage_jwt(WRONG)}"}
            code, reason = await _refusal(ep_b["uri"], ep_b["headers"], auth=bad)
            assert code == wire.CLOSE_POLICY and "Vonage signature refused" in reason
            stale = {"Authorization": f"Bearer {vonage_jwt(iat=time.time() - 3600)}"}
            code, reason = await _refusal(ep_b["uri"], ep_b["headers"], auth=stale)
            assert code == wire.CLOSE_POLICY and "stale" in reason
            # the fake follows the NCCO: it signs the upgrade, and the token is there too
            await b.connect(pace=PACE)
            await c.connect(pace=PACE)
            await asyncio.sleep(0.3)
            assert b.connected and c.connected
