"""Credentials a stranger makes up: every place that takes a token (operator bearer and ?token=, console cookie
and login, join links, the browser leg's secret, the audio socket's token) given non-ASCII text, a lone
surrogate or a Latin-1 byte answers 4xx (or closes the socket with a reason), never 500 or a crashed handler;
a console logout ends the session on the server, not only in the browser."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from babelfish.config.settings import Settings
from babelfish.core import credentials
from babelfish.server.app import create_app
from babelfish.server.console import COOKIE

from .conftest import OPERATOR, OPERATOR_TOKEN, double_engines

# What a header can carry (Latin-1) and what a query or a JSON body can (any Unicode, a lone surrogate too).
# Shaped like the real ones too: "²" passes str.isdigit() but not int(); a non-ASCII MAC fails compare_digest.
HEADER_VALUES = ["\xb2", "é" * 30, "1.\xb2.ff", "\xb2.ab.ff", "9999999999.ab.\xe9", f"{OPERATOR_TOKEN}é"]
TEXT_VALUES = [*HEADER_VALUES, "²", "\ud800", "abc\ud800def", "1.\ud800.ff", "4711.fr-FR.².0123456789abcdef.x",
               "4711.fr-FR.9999999999.0123456789abcdef.\ud800", "9999999999.ab.\ud800"]


def q(value: str) -> str:
    """``value`` for a URL, byte for byte (a lone surrogate as the bytes a careless client would send)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def header(value: str) -> bytes:
    return value.encode("latin-1")


@pytest.fixture
def client(settings: Settings) -> TestClient:
    settings.transcripts.token = "t" * 30  # type: ignore[assignment]
    with TestClient(create_app(settings, double_engines())) as http:
        yield http


@pytest.mark.parametrize("value", HEADER_VALUES)
def test_made_up_bearers_and_cookies_are_refused_not_crashed(client: TestClient, value: str) -> None:
    for path in ("/rooms", "/metrics", "/calls", "/console/api/live", "/console/api/health", "/console"):
        bearer = client.get(path, headers={"Authorization": header(f"Bearer {value}")})
        assert bearer.status_code in (401, 403) or path == "/console", (path, bearer.status_code)
        assert bearer.status_code < 500, path
        cookie = client.get(path, headers={"Cookie": header(f"{COOKIE}={value}")})
        assert 400 <= cookie.status_code < 500 or (path == "/console" and cookie.status_code == 401), path


@pytest.mark.parametrize("value", TEXT_VALUES)
def test_made_up_tokens_in_queries_forms_and_bodies_are_refused_not_crashed(client: TestClient, value: str) -> None:
    for path in ("/rooms", "/metrics", "/calls", "/calls/some-call/transcript"):
        assert 400 <= client.get(f"{path}?token={q(value)}").status_code < 500, path
    login = client.post("/console/login", content=f"token={value}".encode("utf-8", "surrogatepass"),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert login.status_code == 401
    for body in ({"link": value}, {"link": value, "room": "4711", "language": "de-DE"}, {"language": value}):
        joined = client.post("/phone/join", content=json.dumps(body).encode(),  # "\ud800" escaped: a lone surrogate
                             headers={"Content-Type": "application/json"})
        assert 400 <= joined.status_code < 500, (body, joined.status_code)
    revoked = client.delete(f"/phone/links/{q(value)}", headers={"Authorization": "Bearer wrong"})
    assert 400 <= revoked.status_code < 500


@pytest.mark.parametrize("value", TEXT_VALUES)
def test_made_up_socket_credentials_close_the_socket_with_a_reason(client: TestClient, value: str) -> None:
    for url in (f"/phone/events?leg=some-leg&secret={q(value)}", f"/phone/events?leg={q(value)}&secret={q(value)}",
                f"/captions?token={q(value)}", f"/socket?token={q(value)}", f"/console/api/captions?token={q(value)}"):
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect(url, headers={"Cookie": header(f"{COOKIE}={value}")}
                                          if value.isascii() or "\ud800" not in value else {}) as ws:
                ws.receive_text()
        assert closed.value.code in (1008, 4401, 4403, 1003), (url, closed.value.code)


def test_a_console_logout_ends_the_session_on_the_server(client: TestClient) -> None:
    assert client.post("/console/login", data={"token": OPERATOR_TOKEN}, follow_redirects=False).status_code == 303
    session = client.cookies.get(COOKIE)
    assert session and client.get("/console/api/live").status_code == 200
    client.post("/console/logout", follow_redirects=False)
    client.cookies.set(COOKIE, session)  # the cookie kept, as a thief would keep it
    assert client.get("/console/api/live").status_code == 401


def test_credential_fields_are_printable_ascii_of_their_shape_and_comparisons_never_raise() -> None:
    assert credentials.fields("1.ab.ff", 3) == ["1", "ab", "ff"]
    for bad in ("1.ab", "1.a\xb2.ff", "1.\ud800.ff", "1.ab.ff\n", None, 7, "x" * 300):
        assert credentials.fields(bad, 3) is None, bad
    assert credentials.number("42") == 42 and credentials.number("²") is None and credentials.number("") is None
    assert credentials.same("abc", "abc") and not credentials.same("ab\ud800", "abc")
    assert not credentials.same("é", "abc") and not credentials.same("", "") and not credentials.same(None, "x")


def test_a_room_code_or_language_with_a_trailing_newline_is_not_one(client: TestClient) -> None:
    for body in ({"room": "4711\n", "language": "fr-FR"}, {"room": "4711", "language": "fr-FR\n"}):
        assert client.post("/phone/links", json=body, headers=OPERATOR).status_code == 400, body
    assert client.post("/phone/links", json={"room": "4711", "language": "fr-FR"}, headers=OPERATOR).status_code == 201


def test_guessing_the_token_on_any_route_is_slowed_to_a_try_every_few_seconds_and_logged(client: TestClient,
                                                                                         caplog) -> None:
    """Ten wrong tries pass as 401 (typos happen); then every route that takes the token answers 429 to that
    address, the right token included, whether the guesses came as a bearer, a ?token= or the login form."""
    import logging

    with caplog.at_level(logging.WARNING, logger="babelfish"):
        codes = [client.get("/rooms", headers={"Authorization": f"Bearer guess-{i}"}).status_code for i in range(6)]
        codes += [client.get("/calls", params={"token": f"guess-{i}"}).status_code for i in range(4)]
        assert codes == [401] * 10
        assert client.get("/metrics", params={"token": "guess-11"}).status_code == 429
        assert client.get("/rooms", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).status_code == 429
        assert client.post("/console/login", data={"token": OPERATOR_TOKEN}).status_code == 429
        refused = client.get("/calls", params={"token": "t" * 30})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "wrong token from testclient for /rooms" in caplog.text
