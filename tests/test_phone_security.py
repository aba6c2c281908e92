"""The browser phone's defences, each attack performed and its refusal asserted: a leg's events only for its
own page, joining only as ``phone.access`` allows (signed, expiring, revocable join links from the operator),
joins only as JSON from the server's own page, a cap on browser legs, idle browser legs ended; and the spoken
notices everyone in a room hears when someone joins or leaves it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from babelfish import cli
from babelfish.config.settings import PhoneSettings, SecuritySettings, Settings
from babelfish.devtools.fake_call import FakeCall
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.pipeline.stream import LegSession
from babelfish.server import watchdog
from babelfish.server.app import create_app
from babelfish.server.phone import BROWSER_CALLER, STATIC
from babelfish.server.phonelinks import PhoneLinks, link_key
from babelfish.server.serving import background, background_server
from babelfish.telephony import wire

from .conftest import OPERATOR, OPERATOR_TOKEN, double_engines

SIGNATURE_SECRET = "the-vonage-signature-secret-of-this-account"
PACE = 4.0
OWN = {"Origin": "http://testserver"}  # the TestClient's own origin
EVIL = {"Origin": "https://evil.example"}


def make_settings(tmp_path: Path, *, signed: bool = False, **overrides: Any) -> Settings:
    """Settings "the careful way" when ``signed`` (signature secret and operator token: access defaults to
    'link'), else open; callers type a room code at the room menu."""
    security = SecuritySettings(signature_secret=SIGNATURE_SECRET if signed else None,
                                operator_token=OPERATOR_TOKEN)
    return Settings(models_dir=tmp_path / "models", data_dir=tmp_path / "data", playback_lead_ms=200,
                    security=security, menu={"languages": [], "room_codes": True}, **overrides)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The app in-process (open access: no signature secret)."""
    with TestClient(create_app(make_settings(tmp_path), double_engines())) as http:
        yield http


def closed_with(http: TestClient, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """Open ``url`` as a websocket and read until the server closes it: (code, reason)."""
    with http.websocket_connect(url, headers=dict(headers or {})) as ws, pytest.raises(WebSocketDisconnect) as closed:
        for _ in range(100):
            ws.receive_json()
    return closed.value.code, closed.value.reason


def join_link(response: httpx.Response) -> str:
    """The token of the join link an operator got from ``POST /phone/links``."""
    assert response.status_code == 201, response.text
    return parse_qs(urlsplit(response.json()["url"]).query)["link"][0]


# -- /phone/events ------------------------------------------------------------------------------------


def test_a_legs_events_need_its_own_secret_from_its_own_origin(client: TestClient) -> None:
    mine = client.post("/phone/join", json={"language": "de", "room": "tea"}).json()
    other = client.post("/phone/join", json={"language": "en", "room": "tea"}).json()
    assert mine["secret"] and mine["secret"] != other["secret"]
    events = f"/phone/events?leg={mine['uuid']}"
    # someone who learnt the leg id (a room listing, a log, the websocket headers) but not its secret
    assert closed_with(client, events) == (wire.CLOSE_POLICY, "missing or wrong leg secret")
    assert closed_with(client, events + "&secret=guess") == (wire.CLOSE_POLICY, "missing or wrong leg secret")
    # the other leg of the same room offers its own secret for this leg
    assert closed_with(client, events + f"&secret={other['secret']}") == (wire.CLOSE_POLICY,
                                                                           "missing or wrong leg secret")
    # the right secret from another site's page (a visitor's browser riding on a leaked link)
    assert closed_with(client, events + f"&secret={mine['secret']}", EVIL) == (wire.CLOSE_POLICY,
                                                                                "cross-origin websocket refused")
    # the leg's own page: its state first, then the feed; it ends once the leg is gone
    with client.websocket_connect(events + f"&secret={mine['secret']}", headers=OWN) as ws:
        state = ws.receive_json()
        assert state["type"] == "state" and state["leg"] == mine["uuid"] and state["active"]
        assert [p["leg"] for p in state["partners"]] == [other["uuid"]]
        assert client.post("/event", json={"uuid": other["uuid"], "status": "completed"}).status_code == 200
        while (message := ws.receive_json())["type"] != "state":
            assert message.get("room") == state["room"] or message.get("leg") == mine["uuid"]
        assert message["partners"] == []  # the state again, as it changed
        assert client.post("/event", json={"uuid": mine["uuid"], "status": "completed"}).status_code == 200
        with pytest.raises(WebSocketDisconnect):
            while True:
                message = ws.receive_json()
                if message["type"] == "state":
                    assert not message["active"]
    metrics = client.get("/metrics", headers=OPERATOR).text
    assert 'babelfish_errors_total{kind="phone_events_refused"} 4.0' in metrics


def test_one_guest_cannot_fill_the_feeds_of_the_operator_or_of_other_guests(tmp_path: Path) -> None:
    """A guest with one join opens feed after feed for their own leg: past ``feeds_per_leg`` they are refused
    (1013), while another guest's feed and the operator's /captions still open."""
    from babelfish.config.settings import LimitsSettings

    settings = make_settings(tmp_path, limits=LimitsSettings(max_subscribers=4, feeds_per_leg=2,
                                                             audio_speed=1000.0, audio_ahead_s=1e6))
    with TestClient(create_app(settings, double_engines())) as client:
        mine = client.post("/phone/join", json={"language": "de", "room": "tea"}).json()
        other = client.post("/phone/join", json={"language": "en", "room": "tea"}).json()
        feed = f"/phone/events?leg={mine['uuid']}&secret={mine['secret']}"
        with client.websocket_connect(feed, headers=OWN) as a, client.websocket_connect(feed, headers=OWN) as b:
            assert a.receive_json()["type"] == b.receive_json()["type"] == "state"
            assert closed_with(client, feed, OWN) == (wire.CLOSE_TRY_AGAIN, "too many feeds for this leg")
            theirs = f"/phone/events?leg={other['uuid']}&secret={other['secret']}"
            with client.websocket_connect(theirs, headers=OWN) as c:
                assert c.receive_json()["leg"] == other["uuid"]
                with client.websocket_connect("/captions", headers=OPERATOR) as captions:
                    client.post("/event", json={"uuid": other["uuid"], "status": "completed"})
                    assert captions.receive_json()["type"]  # the operator's feed is open and carries events


def test_a_secret_for_a_leg_that_has_ended_opens_nothing(client: TestClient) -> None:
    gone = client.post("/phone/join", json={"language": "de"}).json()
    client.post("/event", json={"uuid": gone["uuid"], "status": "completed"})
    assert closed_with(client, f"/phone/events?leg={gone['uuid']}&secret={gone['secret']}") == (
        wire.CLOSE_POLICY, "unknown leg")


# -- who may join -------------------------------------------------------------------------------------


def test_a_join_is_json_from_the_servers_own_page(client: TestClient) -> None:
    body = '{"language": "de"}'
    # a cross-site <form> (urlencoded, multipart) or text/plain fetch needs no CORS preflight: refused unread
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        r = client.post("/phone/join", content=body, headers={"Content-Type": content_type})
        assert r.status_code == 415 and "application/json" in r.json()["error"], content_type
    assert client.post("/phone/join", content=body).status_code == 415  # no type at all
    r = client.post("/phone/join", json={"language": "de"}, headers=EVIL)
    assert r.status_code == 403 and r.json()["error"] == "cross-origin request refused"
    assert client.get("/rooms", headers=OPERATOR).json()["legs"] == 0  # nothing got through
    assert client.post("/phone/join", json={"language": "de"}, headers=OWN).status_code == 200
    assert client.post("/phone/join", json={"language": "de"},
                       headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 200


def test_with_a_public_url_only_its_origin_may_join(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, public_url="https://phone.example.org")
    with TestClient(create_app(settings, double_engines())) as http:
        assert http.post("/phone/join", json={"language": "de"}, headers=OWN).status_code == 403
        ok = http.post("/phone/join", json={"language": "de"}, headers={"Origin": "https://phone.example.org"})
        assert ok.status_code == 200


def test_phone_access_off_refuses_every_join(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, phone=PhoneSettings(access="off"))
    with TestClient(create_app(settings, double_engines())) as http:
        assert http.get("/phone/languages").json()["access"] == "off"
        link = join_link(http.post("/phone/links", json={"room": "4711", "language": "fr-FR"}, headers=OPERATOR))
        for body in ({"language": "de"}, {"language": "de", "room": "4711"}, {"link": link}):
            r = http.post("/phone/join", json=body)
            assert r.status_code == 403 and "off" in r.json()["error"], body
        assert http.get("/rooms", headers=OPERATOR).json()["legs"] == 0


async def test_a_stranger_cannot_join_a_private_room_between_two_signed_phone_callers(tmp_path: Path) -> None:
    """Signed webhooks: access defaults to 'link'. Two phone callers meet in room 4711; a stranger tries the
    browser phone without a link, with forged, tampered, expired and revoked links, and with a link for
    another room; the operator's link for 4711 joins 4711 in the link's language."""
    settings = make_settings(tmp_path, signed=True)
    assert settings.phone_access == "link"
    async with background_server(settings, double_engines()) as (url, server), \
            FakeVonage(url, signature_secret=SIGNATURE_SECRET) as vonage, httpx.AsyncClient(base_url=url) as http:
        a = await vonage.dial("447700900011", keys=["4711#"], pace=PACE)
        b = await vonage.dial("447700900012", keys=["4711#"], pace=PACE)
        room = a.headers["room"]
        assert b.headers["room"] == room and room.startswith("code-4711")
        assert (await http.get("/phone/languages")).json()["access"] == "link"

        async def refused(body: dict[str, Any]) -> str:
            r = await http.post("/phone/join", json={"language": "en-GB", "room": "4711", **body})
            assert r.status_code == 403, (body, r.status_code, r.text)
            return r.json()["error"]

        assert "join link" in await refused({})  # the room code alone (overheard, guessed) is not enough
        forged, _ = PhoneLinks(b"a-guess-at-the-key").issue("4711", "en-GB", 3600)
        assert "invalid join link" in await refused({"link": forged})
        own = PhoneLinks(link_key(settings))  # the server's own key: what only the operator can sign with
        other_room, _ = own.issue("9999", "en-GB", 3600)
        tampered = other_room.replace("9999.", "4711.", 1)
        assert "invalid join link" in await refused({"link": tampered})
        longer = other_room.split(".")
        longer[2] = str(int(longer[2]) + 86400)
        assert "invalid join link" in await refused({"link": ".".join(longer)})
        expired, _ = own.issue("4711", "en-GB", 3600, now=time.time() - 3601)
        assert "expired" in await refused({"link": expired})
        assert "malformed" in await refused({"link": "4711.en-GB"})
        issued = await http.post("/phone/links", json={"room": "4711", "language": "en-GB", "ttl_s": 3600},
                                 headers=OPERATOR)
        revoked_id = issued.json()["id"]
        revoked = join_link(issued)
        r = await http.delete(f"/phone/links/{revoked_id}", headers=OPERATOR)
        assert r.status_code == 200 and r.json()["revoked"] == revoked_id
        assert "revoked" in await refused({"link": revoked})
        # a genuine link for another room joins that room, whatever the body asks for
        r = await http.post("/phone/join", json={"language": "en-GB", "room": "4711", "link": other_room})
        assert r.status_code == 200 and r.json()["ncco"][1]["endpoint"][0]["headers"]["room"] != room
        assert r.json()["room"] == "9999"
        assert [leg.id for leg in server.switchboard.rooms[room].legs] == [a.leg, b.leg]

        # the operator's link for 4711 in French: the body's language and room are not the link's
        token = join_link(await http.post("/phone/links", json={"room": "4711", "language": "fr-FR"},
                                          headers=OPERATOR))
        r = await http.post("/phone/join", json={"language": "de-DE", "room": "other", "link": token})
        assert r.status_code == 200, r.text
        joined = r.json()
        assert joined["language"] == "fr-FR" and joined["room"] == "4711"
        assert joined["ncco"][1]["endpoint"][0]["headers"] == {"leg": joined["uuid"], "lang": "fr-FR", "room": room}
        # one link serves every join of its room until it expires
        again = await http.post("/phone/join", json={"link": token})
        assert again.status_code == 200 and again.json()["ncco"][1]["endpoint"][0]["headers"]["room"] == room
        assert len(server.switchboard.rooms[room].legs) == 4
        metrics = (await http.get("/metrics", headers=OPERATOR)).text
        assert 'babelfish_errors_total{kind="phone_join_refused"} 7.0' in metrics


# -- join links ---------------------------------------------------------------------------------------


def test_only_the_operator_issues_and_revokes_links(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, signed=True, public_url="https://phone.example.org")
    public = {"Origin": "https://phone.example.org"}
    body = {"room": "4711", "language": "fr-FR", "ttl_s": 600}
    with TestClient(create_app(settings, double_engines())) as http:
        r = http.post("/phone/links", json=body)
        assert r.status_code == 401 and r.json()["error"] == "missing or wrong token"
        r = http.post("/phone/links", json=body, headers={"Authorization": "Bearer not-the-token"})
        assert r.status_code == 401
        r = http.post("/phone/links", json=body, headers={**OPERATOR, **EVIL})
        assert r.status_code == 403  # the operator's browser, on another site's page
        r = http.post("/phone/links", json=body, headers=OPERATOR)
        assert r.status_code == 201
        link = r.json()
        assert link["url"].startswith("https://phone.example.org/phone?link=")
        assert link["room"] == "4711" and link["language"] == "fr-FR"
        assert abs(link["expires"] - (time.time() + 600)) < 5
        for bad in ({"room": "no spaces", "language": "fr"}, {"room": "4711", "language": "xx"},
                    {"room": "4711", "language": "fr", "ttl_s": 1}, {"room": "4711", "language": "fr", "ttl_s": "1h"}):
            assert http.post("/phone/links", json=bad, headers=OPERATOR).status_code == 400, bad
        # the URL works
        joined = http.post("/phone/join", json={"link": join_link(r)}, headers=public)
        assert joined.status_code == 200 and joined.json()["language"] == "fr-FR"
        # revoking needs the token too
        assert http.delete(f"/phone/links/{link['id']}").status_code == 401
        assert http.delete("/phone/links/not-an-id", headers=OPERATOR).status_code == 400
        assert http.delete(f"/phone/links/{link['id']}", headers=OPERATOR).status_code == 200
        r = http.post("/phone/join", json={"link": join_link(r)}, headers=public)
        assert r.status_code == 403 and r.json()["error"] == "this join link has been revoked"
    # the revocation outlives a restart of the server (kept in data_dir until the link would have expired)
    with TestClient(create_app(settings, double_engines())) as http:
        token = parse_qs(urlsplit(link["url"]).query)["link"][0]
        r = http.post("/phone/join", json={"link": token}, headers=public)
        assert r.status_code == 403 and "revoked" in r.json()["error"]


def test_a_new_link_key_revokes_every_link(tmp_path: Path) -> None:
    first = make_settings(tmp_path, signed=True, phone=PhoneSettings(link_secret="the-first-link-secret"))
    with TestClient(create_app(first, double_engines())) as http:
        token = join_link(http.post("/phone/links", json={"room": "4711", "language": "de"}, headers=OPERATOR))
        assert http.post("/phone/join", json={"link": token}).status_code == 200
    rotated = make_settings(tmp_path, signed=True, phone=PhoneSettings(link_secret="the-second-link-secret"))
    with TestClient(create_app(rotated, double_engines())) as http:
        r = http.post("/phone/join", json={"link": token})
        assert r.status_code == 403 and "invalid join link" in r.json()["error"]
    # without a link secret the key derives from the operator token: a new operator token revokes them too
    derived = make_settings(tmp_path, signed=True)
    with TestClient(create_app(derived, double_engines())) as http:
        token = join_link(http.post("/phone/links", json={"room": "4711", "language": "de"}, headers=OPERATOR))
    new_token = derived.model_copy(update={"security": SecuritySettings(signature_secret=SIGNATURE_SECRET,
                                                                        operator_token="a-new-operator-token-24-chars")})
    with TestClient(create_app(new_token, double_engines())) as http:
        assert http.post("/phone/join", json={"link": token}).status_code == 403


def test_no_key_no_links(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, signed=True)
    settings = settings.model_copy(update={"security": SecuritySettings(signature_secret=SIGNATURE_SECRET)})
    with TestClient(create_app(settings, double_engines())) as http:
        assert http.post("/phone/links", json={"room": "4711", "language": "de"}).status_code == 403  # no operator
        r = http.post("/phone/join", json={"link": "4711.de-DE.9999999999.0123456789abcdef.AAAA"})
        assert r.status_code == 403 and "off" in r.json()["error"]
    with pytest.raises(ValueError, match="LINK_SECRET"):
        PhoneLinks(None).issue("4711", "de-DE", 3600)


def phone_cli(*argv: str) -> int:
    """``babelfish phone ...`` (the command's function: main() would reconfigure the test's logging)."""
    args = cli.build_parser().parse_args(["phone", *argv])
    return int(args.func(args))


def test_the_cli_prints_a_link_that_joins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BABELFISH_SECURITY__SIGNATURE_SECRET", SIGNATURE_SECRET)
    monkeypatch.setenv("BABELFISH_PUBLIC_URL", "https://phone.example.org")
    assert phone_cli("link", "--room", "4711", "--language", "fr-FR", "--ttl", "3600") == 0
    out, err = capsys.readouterr()
    url = out.strip()
    assert url.startswith("https://phone.example.org/phone?link=4711.fr-FR.")
    link_id = url.split(".")[-2]
    assert f"babelfish phone revoke {link_id}" in err
    settings = Settings(models_dir=tmp_path / "models")  # the server reads the same settings
    assert settings.phone_access == "link"
    public = {"Origin": "https://phone.example.org"}
    with TestClient(create_app(settings, double_engines())) as http:
        token = parse_qs(urlsplit(url).query)["link"][0]
        r = http.post("/phone/join", json={"link": token, "language": "de"}, headers=public)
        assert r.status_code == 200 and r.json()["language"] == "fr-FR" and r.json()["room"] == "4711"
        assert phone_cli("revoke", link_id) == 0  # revoked from the command line, the server running
        r = http.post("/phone/join", json={"link": token}, headers=public)
        assert r.status_code == 403 and "revoked" in r.json()["error"]
    # without public_url: a relative link and a warning; without any key: a clear error
    monkeypatch.delenv("BABELFISH_PUBLIC_URL")
    capsys.readouterr()
    assert phone_cli("link", "--room", "4711", "--language", "de") == 0
    out, err = capsys.readouterr()
    assert out.startswith("/phone?link=4711.de-DE.") and "public_url is not set" in err
    monkeypatch.delenv("BABELFISH_SECURITY__OPERATOR_TOKEN")
    with pytest.raises(ValueError, match="BABELFISH_PHONE__LINK_SECRET"):  # `babelfish` prints it, exit 2
        phone_cli("link", "--room", "4711", "--language", "de")


# -- capacity and idle legs ---------------------------------------------------------------------------


def test_browser_legs_have_their_own_cap_and_phone_calls_still_get_through(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.menu.room_codes = False
    with TestClient(create_app(settings, double_engines())) as http:
        browsers = [http.post("/phone/join", json={"language": "de", "room": f"r{i}"}) for i in range(20)]
        assert [r.status_code for r in browsers] == [200] * 20
        r = http.post("/phone/join", json={"language": "de"})
        assert r.status_code == 503 and r.json()["error"] == "all lines are busy: try again later"
        ncco = http.get("/answer", params={"from": "447700900001", "to": "447700900000", "uuid": "phone-1",
                                           "conversation_uuid": "CON-1"}).json()
        assert ncco[-1]["action"] == "connect"  # a phone call is not counted against the browser phone
        rooms = http.get("/rooms", headers=OPERATOR).json()
        assert rooms["legs"] == 21
        assert sum(leg["caller"] == BROWSER_CALLER for room in rooms["rooms"] for leg in room["legs"]) == 20
        http.post("/event", json={"uuid": browsers[0].json()["uuid"], "status": "completed"})
        assert http.post("/phone/join", json={"language": "de"}).status_code == 200  # a line came free


async def browser_leg(vonage: FakeVonage, http: httpx.AsyncClient, body: dict[str, Any], pace: float = PACE,
                      ) -> FakeCall:
    """A browser leg through /phone/join, its socket opened as the page opens it (the fake follows the NCCO)."""
    r = await http.post("/phone/join", json=body)
    assert r.status_code == 200, r.text
    joined = r.json()
    call = FakeCall(vonage, BROWSER_CALLER, "phone")
    call.uuid, call.conversation_uuid, call.ncco = joined["uuid"], joined["conversation_uuid"], joined["ncco"]
    vonage.calls.append(call)
    await call.connect(pace=pace)
    return call


async def test_a_browser_leg_that_sends_no_voice_is_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          speech: tuple[np.ndarray, int]) -> None:
    monkeypatch.setattr(watchdog, "WATCH_EVERY_S", 0.2)
    samples, rate = speech
    settings = make_settings(tmp_path, phone=PhoneSettings(idle_s=5))
    async with background(settings, double_engines()) as url, FakeVonage(url) as vonage, \
            httpx.AsyncClient(base_url=url) as http:
        phone = await vonage.dial("447700900001", keys=["#"], pace=1)  # silent too, but a phone call
        quiet = await browser_leg(vonage, http, {"language": "de", "room": "quiet"}, pace=1)
        talker = await browser_leg(vonage, http, {"language": "en", "room": "talk"}, pace=2)
        started = time.monotonic()

        turn = np.concatenate([samples, np.zeros(int(1.5 * rate), dtype=samples.dtype)])  # a pause: a new turn

        async def keep_talking() -> None:
            while time.monotonic() - started < 9:
                await talker.say(turn, rate)

        talking = asyncio.create_task(keep_talking())
        async with asyncio.timeout(15):
            while quiet.closed is None:
                await asyncio.sleep(0.1)
        assert quiet.closed == (wire.CLOSE_NORMAL, "browser leg idle")
        assert time.monotonic() - started > 4.5  # not before phone.idle_s
        await asyncio.sleep(max(0.0, 7 - (time.monotonic() - started)))
        await talking
        legs = {leg["id"] for room in (await http.get("/rooms", headers=OPERATOR)).json()["rooms"]
                for leg in room["legs"]}
        assert quiet.leg not in legs
        assert talker.leg in legs and talker.connected  # it spoke: its voice keeps it on
        assert phone.leg in legs and phone.connected  # phone calls are not the browser phone's


# -- joined / left notices ----------------------------------------------------------------------------


async def test_everyone_in_a_room_hears_who_joins_and_leaves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             ) -> None:
    said: list[tuple[str, str, str]] = []  # (listener leg, label, text)
    original = LegSession.say

    def say(self: LegSession, text: str, language: str, label: str = "notice") -> None:
        said.append((self.leg.id, label, text))
        original(self, text, language, label)

    monkeypatch.setattr(LegSession, "say", say)

    def heard(leg: str) -> list[tuple[str, str]]:
        return [(label, text) for listener, label, text in said if listener == leg]

    async def until(condition: Any, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)

    settings = make_settings(tmp_path)
    async with background(settings, double_engines()) as url, FakeVonage(url) as vonage, \
            httpx.AsyncClient(base_url=url) as http:
        phone = await vonage.dial("447700900001", keys=["4711#"], pace=PACE)  # German (the first default)
        await asyncio.sleep(0.3)
        assert heard(phone.leg) == []  # alone: nobody to tell, nothing said
        before = phone.received_frames
        english = await browser_leg(vonage, http, {"language": "en-GB", "room": "4711"})
        await until(lambda: heard(phone.leg))
        assert heard(phone.leg) == [("joined", "Jemand ist dem Gespräch beigetreten.")]
        await until(lambda: phone.received_frames > before)  # the notice is spoken into the call
        assert heard(english.leg) == []  # the one who joined is not told of themselves
        french = await browser_leg(vonage, http, {"language": "fr-FR", "room": "4711"})
        await until(lambda: len(heard(english.leg)) == 1)
        assert heard(english.leg) == [("joined", "Someone has joined the call.")]
        assert heard(phone.leg)[-1][0] == "joined" and len(heard(phone.leg)) == 2 and heard(french.leg) == []

        await french.hang_up()  # two remain: each hears that someone left, not "your partner hung up"
        await until(lambda: len(heard(english.leg)) == 2)
        assert heard(english.leg)[-1] == ("left", "Someone has left the call.")
        await until(lambda: len(heard(phone.leg)) == 3)
        assert heard(phone.leg)[-1] == ("left", "Jemand hat das Gespräch verlassen.")
        await english.hang_up()  # one remains: they are told they may wait for a new partner, as before
        await until(lambda: len(heard(phone.leg)) == 4)
        assert heard(phone.leg)[-1][0] == "partner left"
        assert all(label != "joined" for label, _ in heard(french.leg) + heard(english.leg)[1:])


async def test_a_browser_page_of_another_site_cannot_open_the_audio_socket(server, vonage) -> None:
    url, _ = server
    call = await vonage.dial("447700900001", connect=False)
    uri = call._endpoint()["uri"]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(uri, additional_headers=EVIL):
            pass
    assert refused.value.response.status_code == 403
    # the server's own page (the browser phone) and Vonage (no Origin) get in
    async with connect(uri, additional_headers={"Origin": url}) as ws:
        await ws.send(wire.connected_message("audio/l16;rate=16000", call._endpoint()["headers"]))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(decode=False), 0.5)


# -- the page -----------------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_the_page_joins_with_its_link_opens_its_events_and_says_why_it_was_refused(tmp_path: Path) -> None:
    """Headless Chromium (see tests/test_phone.py): by invitation only, the page without a link is told so;
    with the operator's link it joins the link's room in the link's language and reads its own events."""
    from babelfish.core import audio

    from .cdp import browsers

    microphone = tmp_path / "silence.wav"
    audio.write_wav(microphone, np.zeros(48000 * 2, dtype=np.float32), 48000)
    settings = make_settings(tmp_path, signed=True)
    async with background(settings, double_engines()) as url, browsers(tmp_path, [microphone]) as (browser,), \
            httpx.AsyncClient(base_url=url) as http:
        page = await browser.page(f"{url}/phone?lang=de-DE&room=4711")
        labels = json.loads((STATIC / "phone-labels.json").read_text(encoding="utf-8"))["de"]  # the page's language
        assert labels["by_invitation"] in await page.evaluate("document.getElementById('status').textContent")
        await page.evaluate("document.getElementById('call').click()")
        await page.wait_for("window.babelfish.state === 'refused'", 20)
        assert await page.evaluate("window.babelfish.refused.status") == 403
        assert labels["link_refused"].split("{error}. ")[1] in await page.evaluate(
            "document.getElementById('status').textContent")
        assert (await http.get("/rooms", headers=OPERATOR)).json()["legs"] == 0

        r = await http.post("/phone/links", json={"room": "4711", "language": "fr-FR"}, headers=OPERATOR)
        page = await browser.page(join_link_url(url, r))
        assert await page.evaluate("document.getElementById('language').disabled")
        await page.evaluate("document.getElementById('call').click()")
        await page.wait_for("window.babelfish.state === 'waiting'", 20)
        assert await page.evaluate("window.babelfish.language") == "fr-FR"
        assert await page.evaluate("document.getElementById('language').value") == "fr-FR"
        # the events socket opened with the leg's secret: the leg's state came
        state = await page.wait_for("window.babelfish.events.find(e => e.type === 'state')", 10)
        assert state["active"] and state["language"] == "fr-FR" and state["room"].startswith("code-4711")
        await page.evaluate("document.getElementById('hangup').click()")


def join_link_url(base: str, response: httpx.Response) -> str:
    """The operator's join link, on the server under test (its public_url is unset here)."""
    return f"{base}/phone?link={join_link(response)}"
