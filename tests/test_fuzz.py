"""Property-based fuzzing (hypothesis) of everything a stranger can send: the webhooks (methods, query
parameters, bodies, headers, signatures) and the audio socket (first messages, text, binary, sizes). A real
server with test-double engines must answer every one without a server error, log no unexpected exception,
and stay healthy with no legs left behind."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from babelfish.config.settings import LimitsSettings, SecuritySettings, Settings
from babelfish.server.serving import background_server

from .conftest import FAST_AUDIO, OPERATOR_TOKEN, double_engines

SECRET = "fuzzing-signature-secret-long-enough-for-hs256"
FIELDS = ["to", "from", "uuid", "conversation_uuid", "status", "call_uuid", "timestamp", "direction", "dtmf",
          "headers", "leg", "language", "room"]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck),
                derandomize=False, database=None)


class Errors(logging.Handler):
    """Collects error records with a traceback, and any 'Exception in ASGI application'."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real server on an event loop of its own thread, so hypothesis can drive it synchronously."""
    cfg = Settings(models_dir=tmp_path_factory.mktemp("models"), playback_lead_ms=200,
                   data_dir=tmp_path_factory.mktemp("data"), menu={"languages": []},
                   security=SecuritySettings(operator_token=OPERATOR_TOKEN, signature_secret=SECRET),
                   limits=LimitsSettings(**FAST_AUDIO, webhook_rate=10_000, webhook_burst=10_000, connect_within_s=1))
    errors = Errors()
    for name in ("babelfish", "uvicorn.error", "uvicorn.asgi"):
        logging.getLogger(name).addHandler(errors)
    state: dict[str, Any] = {"errors": errors}
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def main() -> None:
        state["stop"] = asyncio.Event()
        async with background_server(cfg, double_engines()) as (url, server):
            state.update(url=url, server=server)
            ready.set()
            await state["stop"].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(60), "server did not start"
    try:
        yield state
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(60)
        for name in ("babelfish", "uvicorn.error", "uvicorn.asgi"):
            logging.getLogger(name).removeHandler(errors)


def sign(payload: bytes | None = None, query: dict[str, str] | None = None) -> str:
    claims: dict[str, Any] = {"iat": int(time.time()), "jti": str(uuid.uuid4()), "iss": "Vonage",
                              "api_key": "k", "application_id": "a"}
    if payload is not None:
        claims["payload_hash"] = hashlib.sha256(payload).hexdigest()
    if query is not None:
        claims["payload_hash"] = hashlib.sha256(json.dumps(query, separators=(",", ":")).encode()).hexdigest()
    return "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")


def assert_healthy(live: dict[str, Any]) -> None:
    bad = [r for r in live["errors"].records if r.exc_info or "Exception in ASGI" in r.getMessage()]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad]
    with httpx.Client() as http:
        assert http.get(f"{live['url']}/health").json()["status"] == "ok"


def wait_no_legs(live: dict[str, Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client() as http:
        while http.get(f"{live['url']}/health").json()["legs"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert http.get(f"{live['url']}/health").json()["legs"] == 0, "legs leaked"


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                          max_leaves=12)
plausible = st.fixed_dictionaries({}, optional={
    "to": st.sampled_from(["447700900000", "+447700900000", "", "ws://x/socket"]) | text,
    "from": st.sampled_from(["4915100000001", "447700900002", "+1"]) | text,
    "uuid": st.uuids().map(str) | text,
    "conversation_uuid": st.just("CON-1") | text,
    "status": st.sampled_from(["started", "ringing", "answered", "completed", "human", "input"]) | text,
    "call_uuid": text,
    "dtmf": json_value,
    "headers": json_value,
})
query = plausible.map(lambda d: {k: v if isinstance(v, str) else json.dumps(v) for k, v in d.items()}) | \
    st.dictionaries(st.sampled_from(FIELDS) | text, text, max_size=6)
body = st.one_of(
    st.binary(max_size=300),
    json_value.map(lambda v: json.dumps(v).encode()),
    plausible.map(lambda d: json.dumps(d).encode()),
)
auth = st.sampled_from(["sign", "none", "garbage", "wrong-secret"])


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT"]), path=st.sampled_from(["/answer", "/ncco", "/event"]),
       params=query, content=body, how=auth,
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]))
def test_fuzz_webhooks(live, method, path, params, content, how, content_type) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if how == "sign":
        headers["Authorization"] = sign(query=params) if method == "GET" else sign(payload=content)
    elif how == "garbage":
        headers["Authorization"] = "Bearer x" + content[:40].hex()
    elif how == "wrong-secret":
        headers["Authorization"] = "Bearer " + jwt.encode({"iat": int(time.time()), "iss": "Vonage"},
                                                          "not-the-secret-but-long-enough-for-hs256",
                                                          algorithm="HS256")
    with httpx.Client(timeout=10) as http:
        r = http.request(method, f"{live['url']}{path}", params=params,
                         content=content if method != "GET" else None, headers=headers)
    assert r.status_code < 500, r.text
    if r.status_code in (400, 401, 405, 429):
        assert r.status_code == 405 or "error" in r.json()
    if how == "sign" and r.status_code != 405:
        assert r.status_code != 401, r.text  # properly signed requests reach the handler, whatever they carry
    elif how != "sign":
        assert r.status_code in (401, 405)


def test_fuzz_webhooks_left_the_server_healthy(live) -> None:
    assert_healthy(live)
    wait_no_legs(live)  # legs answered by the fuzzer never opened a socket: ended, none left


def new_leg(live: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    params = {"to": "447700900000", "from": "4915100000001", "uuid": str(uuid.uuid4()),
              "conversation_uuid": "CON-fuzz"}
    with httpx.Client() as http:
        ncco = http.get(f"{live['url']}/answer", params=params, headers={"Authorization": sign(query=params)})
    endpoint = ncco.json()[-1]["endpoint"][0]
    return params["uuid"], endpoint


frame = st.binary(min_size=640, max_size=640)
binary = st.one_of(frame, st.binary(max_size=2000), st.integers(60_000, 70_000).map(lambda n: b"\x01" * n))
event_names = st.sampled_from(["websocket:connected", "websocket:dtmf", "websocket:cleared", "websocket:notify",
                               "websocket:media", "", "x"])
text_message = st.one_of(
    text,
    st.builds(lambda name, extra: json.dumps({**extra, "event": name}), event_names,
              st.dictionaries(st.sampled_from(["digit", "dtmf", "duration", "payload", "content-type", "leg",
                                               "token"]) | text, json_value, max_size=4)),
    json_value.map(json.dumps),
)
first_message = st.one_of(
    st.just("connected"),
    st.builds(lambda ct, extra: ("connected-with", ct, extra),
              st.sampled_from(["audio/l16;rate=16000", "audio/l16;rate=8000", "audio/l16;rate=44100",
                               "audio/pcmu", ""]) | text,
              st.dictionaries(text, text, max_size=3)),
    text_message,
    binary,
)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(first=first_message, rest=st.lists(st.one_of(binary, text_message), max_size=12),
       token=st.sampled_from(["valid", "none", "tampered"]))
def test_fuzz_socket_messages(live, first, rest, token) -> None:
    leg, endpoint = new_leg(live)
    uri = endpoint["uri"]
    if token == "none":
        uri = uri.split("&token=")[0]
    elif token == "tampered":
        uri = uri[:-3] + "AAA"
    try:
        with connect(uri, max_size=2**20, open_timeout=10, close_timeout=5) as ws:
            if first == "connected":
                ws.send(json.dumps({**endpoint["headers"], "event": "websocket:connected",
                                    "content-type": endpoint["content-type"]}))
            elif isinstance(first, tuple):
                _, content_type, extra = first
                ws.send(json.dumps({**extra, **endpoint["headers"], "event": "websocket:connected",
                                    "content-type": content_type}))
            else:
                ws.send(first)
            for message in rest:
                ws.send(message)
            try:
                while True:
                    ws.recv(timeout=0.05)
            except TimeoutError:
                pass
    except ConnectionClosed as exc:
        assert exc.rcvd is None or exc.rcvd.code != 1011, exc  # never an internal error
    except InvalidHandshake as exc:
        pytest.fail(f"handshake failed: {exc}")
    with httpx.Client() as http:
        done = json.dumps({"uuid": leg, "status": "completed"}).encode()
        r = http.post(f"{live['url']}/event", content=done, headers={"Authorization": sign(payload=done)})
        assert r.status_code == 200


def test_fuzz_sockets_left_the_server_healthy(live) -> None:
    assert_healthy(live)
    wait_no_legs(live)
    server = live["server"]
    assert not server.sockets
