"""The operator console: refused without the operator's credential, then live calls, stored calls and the
last hour's latency, through the API and in headless Chromium.

``BABELFISH_SCREENSHOTS=DIR`` keeps the three views' screenshots in DIR (the README's come from here).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from babelfish.config.settings import Settings
from babelfish.core import audio, languages
from babelfish.core.utterance import Utterance
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.pipeline.protocols import Engines
from babelfish.server.app import create_app
from babelfish.server.console import COOKIE, Sessions
from babelfish.server.metrics import Recent
from babelfish.server.serving import background_server
from babelfish.telephony import wire
from babelfish.transcripts.store import TranscriptStore

from .cdp import browsers
from .conftest import OPERATOR, OPERATOR_TOKEN, double_engines

PACE = 4.0
API = [("GET", "/console/api/live"), ("GET", "/console/api/calls"), ("GET", "/console/api/calls/some-call"),
       ("GET", "/console/api/calls/some-call?format=srt"), ("GET", "/console/api/health"),
       ("POST", "/console/api/legs/some-leg/end"), ("POST", "/console/api/rooms/some-room/end"),
       ("POST", "/console/api/links")]


def test_without_the_credential_every_console_route_and_its_json_is_refused(settings: Settings) -> None:
    for credentials in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": f"{COOKIE}=1.2.3"}):
        # a server each: wrong tokens from one address are slowed to 429 after ten (test_credentials.py)
        with TestClient(create_app(settings, double_engines())) as http:
            page = http.get("/console")
            assert page.status_code == 401 and 'name="token"' in page.text and "babelfish console" in page.text
            for method, path in API:
                r = http.request(method, path, headers=credentials)
                assert r.status_code == 401, (method, path, credentials, r.status_code)
                assert "error" in r.json()
            assert http.get("/console", headers=credentials).status_code == 401
            with pytest.raises(WebSocketDisconnect) as refused, \
                    http.websocket_connect("/console/api/captions", headers=credentials) as ws:
                ws.receive_text()
            assert refused.value.code == wire.CLOSE_POLICY
            # a page of another site cannot use the operator's session
            assert http.get("/console/api/live", headers={**OPERATOR, "Origin": "https://evil.example"}
                            ).status_code == 403


def test_with_no_operator_token_the_console_is_off(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BABELFISH_SECURITY__OPERATOR_TOKEN")
    with TestClient(create_app(Settings(models_dir=tmp_path), double_engines())) as http:
        assert http.get("/console").status_code == 403
        assert http.post("/console/login", data={"token": ""}).status_code == 403
        for method, path in API:
            assert http.request(method, path, headers=OPERATOR).status_code == 403, path


def test_login_keeps_the_token_out_of_urls_in_an_httponly_session_cookie(settings: Settings) -> None:
    with TestClient(create_app(settings, double_engines()), follow_redirects=False) as http:
        wrong = http.post("/console/login", data={"token": "guess"})
        assert wrong.status_code == 401 and "not the operator token" in wrong.text
        assert COOKIE not in wrong.cookies
        login = http.post("/console/login", data={"token": OPERATOR_TOKEN})
        assert login.status_code == 303 and login.headers["location"] == "/console"
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
        assert OPERATOR_TOKEN not in login.headers["set-cookie"]
        console = http.get("/console")
        assert console.status_code == 200 and 'src="/static/console.js"' in console.text
        live = http.get("/console/api/live").json()
        assert live == {"rooms": [], "legs": 0, "time": pytest.approx(time.time(), abs=5)}
        assert "path=/console" in http.post("/console/logout").headers["set-cookie"].lower()
    # a session is bound to the operator token: a new token ends it
    old = Sessions("old-token").issue()
    assert Sessions("old-token").valid(old) and not Sessions("new-token").valid(old)
    assert not Sessions("old-token").valid(Sessions("old-token", ttl_s=-1).issue())


async def test_live_rooms_actions_and_join_links_through_the_api(tmp_path, speech) -> None:
    samples, rate = speech
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200, menu={"languages": [], "room_codes": True},
                        transcripts={"token": "transcripts-token-24-chars"})
    async with background_server(settings, double_engines()) as (url, server), FakeVonage(url) as vonage, \
            httpx.AsyncClient(base_url=url, headers=OPERATOR) as http:
        a = await vonage.dial("447700900123", keys=["4711#"], pace=PACE)
        b = await vonage.dial("4915100000002", keys=["4711#"], pace=PACE)
        live = (await http.get("/console/api/live")).json()
        (room,) = live["rooms"]
        assert room["code"] == "4711" and [leg["caller"] for leg in room["legs"]] == ["44*******123", "49********002"]
        assert {leg["mode"] for leg in room["legs"]} == {"phone"} and all(leg["for_s"] >= 0 for leg in room["legs"])
        link = await http.post("/console/api/links", json={"room": "4711", "language": "fr-FR"})
        assert link.status_code == 201 and "/phone?link=" in link.json()["url"]
        token = link.json()["url"].split("link=")[1]
        joined = await httpx.AsyncClient().post(f"{url}/phone/join", json={"link": token})
        assert joined.status_code == 200 and joined.json()["room"] == "4711"
        turn = await a.say(samples[: rate * 2], rate)
        assert await b.wait_heard(after=turn.started, quiet_s=0.3, timeout=20)
        ended = await http.post(f"/console/api/legs/{joined.json()['uuid']}/end")
        assert ended.json() == {"ended": [joined.json()["uuid"]]}
        assert (await http.post("/console/api/legs/no-such-leg/end")).status_code == 404
        ended = await http.post(f"/console/api/rooms/{room['id']}/end")
        assert set(ended.json()["ended"]) == {a.leg, b.leg}
        for _ in range(50):
            if not server.switchboard.legs:
                break
            await asyncio.sleep(0.1)
        assert not server.switchboard.legs
        await server.store.flush()
        calls = (await http.get("/console/api/calls")).json()
        (stored,) = calls["calls"]
        assert calls["total"] == 1 and stored["id"] == room["id"] and stored["room"] == "4711"
        assert stored["utterances"] >= 1
        said = calls["calls"][0]["id"]
        assert (await http.get("/console/api/calls", params={"q": "SPEECH OF"})).json()["total"] == 1
        assert (await http.get("/console/api/calls", params={"q": "nobody said this"})).json()["total"] == 0
        srt = await http.get(f"/console/api/calls/{said}", params={"format": "srt"})
        assert srt.status_code == 200 and "-->" in srt.text and "attachment" in srt.headers["content-disposition"]
        health = (await http.get("/console/api/health")).json()
        assert health["totals"]["utterances"] >= 1 and health["ready"]["ready"] is True
        assert sum(m["utterances"] for m in health["minutes"]) == health["totals"]["utterances"]
        # the same language table the menu and the startup log read, with what this server's menu offers
        table = {row["language"]: row for row in health["languages"]}
        assert set(table) == set(languages.NAMES)
        assert {tag for tag, row in table.items() if row["in_menu"]} == {
            languages.primary(tag) for tag in server.settings.menu.options}
        assert all(row["reasons"] for row in table.values() if row["rating"] == "poor")


def test_calls_are_searched_in_what_was_said_and_paged(tmp_path) -> None:
    store = TranscriptStore(f"sqlite:///{tmp_path / 't.db'}")
    for i in range(5):
        store.call_started(f"call-{i}", "", 1000.0 + i)
        store.add_utterance(f"call-{i}", Utterance(
            id=f"u{i}", room=f"call-{i}", leg="leg", language="de-DE", started_at=1000.0 + i, ended_at=1001.0 + i,
            source_text="Guten Tag" if i % 2 else "Auf Wiederhören",
            translations={"en-GB": "Good day" if i % 2 else "Goodbye 100% _sure_"}), "447700900123")
    rows, total = store.search_calls("", 2, 0)
    assert total == 5 and [r["id"] for r in rows] == ["call-4", "call-3"]  # newest first, paged
    assert store.search_calls("good DAY", 10, 0)[1] == 2  # in a translation, any case
    assert store.search_calls("wiederhören", 10, 0)[1] == 3  # in the source text
    assert store.search_calls("100%", 10, 0)[1] == 3 and store.search_calls("0%_", 10, 0)[1] == 0  # no wildcards
    assert store.list_calls(10, 4)[0]["id"] == "call-0"


def test_recent_figures_are_per_minute_percentiles_of_the_records() -> None:
    recent = Recent()
    now = 10_000.0
    for i, seconds in enumerate((0.5, 0.7, 0.9, 1.1, 3.0)):
        recent.utterance({"first_frame": seconds, "recognize": 0.2}, at=now - 30 + i)
    recent.utterance({"first_frame": 9.0}, at=now - 4000)  # over an hour ago: not counted
    recent.error("translate_timeout", at=now - 10)
    summary = recent.summary(now=now)
    assert len(summary["minutes"]) == 60 and summary["minutes"][-1]["utterances"] == 5
    assert summary["totals"]["stages"]["first_frame"] == {"p50": 0.9, "p90": pytest.approx(2.24), "n": 5}
    assert summary["errors"] == {"translate_timeout": 1}


@pytest.mark.e2e
async def test_the_console_in_a_browser(tmp_path: Path, engines: Engines, models_dir: Path, speech) -> None:
    """Log in, see a live simulated call appear with its captions, end it, find it under Calls, download its
    SRT, and see its utterances counted in the latency plot. Real engines on a real recorded prompt ("That
    agent is already logged on...") from an English caller to a German one."""
    samples, rate = speech
    shots = Path(os.environ["BABELFISH_SCREENSHOTS"]) if os.environ.get("BABELFISH_SCREENSHOTS") else None
    settings = Settings(models_dir=models_dir, playback_lead_ms=200, menu={"languages": []},
                        numbers={"447700900123": "en-GB", "4915100000002": "de-DE"})
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    microphone = tmp_path / "silence.wav"
    audio.write_wav(microphone, np.zeros(8000, dtype=np.float32), 8000)
    async with background_server(settings, engines) as (url, server), \
            browsers(tmp_path, [microphone]) as (browser,), FakeVonage(url) as vonage:
        await browser.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        page = await browser.page(f"{url}/console", app=None, width=1100, height=900)
        assert await page.evaluate("!!document.querySelector('input[name=token]')")  # the login form, not the console
        await page.evaluate(f"document.querySelector('#token').value = {OPERATOR_TOKEN!r}")
        await page.evaluate("document.querySelector('#login').click()")
        await page.wait_for("window.babelfishConsole && window.babelfishConsole.ready", 20)
        assert "token" not in await page.evaluate("location.href")
        await page.wait_for("window.babelfishConsole.captionsOpen", 10)

        a = await vonage.dial("447700900123")
        b = await vonage.dial("4915100000002")
        await page.wait_for("document.querySelectorAll('[data-leg]').length === 2", 10)
        assert await page.evaluate("document.querySelector('#rooms').textContent.includes('44*******123')")
        assert await a.wait_heard(after=0, quiet_s=0.5, timeout=15)  # "someone has joined" plays out first
        turn = await a.say(samples, rate)
        assert await b.wait_heard(after=turn.started, quiet_s=0.5, timeout=40)
        await page.wait_for("document.querySelectorAll('.captions li.final .translation').length >= 1", 30)
        if shots:
            await page.screenshot(shots / "console-live.png")
        await page.evaluate("document.querySelector('.end-room').click()")
        await page.wait_for("!!document.querySelector('#no-rooms')", 15)
        assert not server.switchboard.legs
        # the utterance is kept once its playback is over (here: ended with the room): wait until it is stored
        said: list[str] = []
        for _ in range(100):
            await server.store.flush()
            calls = await server.store.run(server.store.store.list_calls, 10)
            stored = calls and await server.store.run(server.store.store.get_call, calls[0]["id"])
            said = [u["source_text"] or "" for u in (stored or {}).get("utterances", [])]
            if any("agent" in text.lower() for text in said):
                break
            await asyncio.sleep(0.1)
        assert any("agent" in text.lower() for text in said), said

        await page.evaluate("document.querySelector('[data-view=calls]').click()")
        await page.wait_for("document.querySelectorAll('[data-call]').length === 1", 10)
        await page.evaluate("document.querySelector('#q').value = 'agent'")
        await page.evaluate("document.querySelector('#search-button').click()")
        await page.wait_for("document.querySelector('#calls-count').textContent.includes('mention') && "
                            "document.querySelectorAll('[data-call]').length === 1", 10)  # the search's rows
        await page.evaluate("document.querySelector('[data-call]').click()")
        await page.wait_for("document.querySelectorAll('#transcript .turn').length >= 1", 10)
        if shots:
            await page.screenshot(shots / "console-calls.png")
        await page.evaluate("document.querySelector('.download[data-format=srt]').click()")
        await page.wait_for("window.babelfishConsole.downloaded === 1", 10)
        for _ in range(50):
            srt = [f for f in downloads.glob("*.srt")]
            if srt:
                break
            await asyncio.sleep(0.1)
        assert srt and "-->" in srt[0].read_text() and "agent" in srt[0].read_text().lower()

        await page.evaluate("document.querySelector('[data-view=health]').click()")
        await page.wait_for("window.babelfishConsole.health !== null", 10)
        counted = await page.evaluate("window.babelfishConsole.health.totals.utterances")
        assert counted >= 1 and counted == server.metrics.recent.summary()["totals"]["utterances"]
        plotted = await page.evaluate("Number(document.querySelector('svg[data-plot=utterances]')"
                                      ".getAttribute('data-points'))")
        assert plotted >= 1
        points = await page.evaluate("Number(document.querySelector('svg[data-plot=first_frame]')"
                                     ".getAttribute('data-points'))")
        assert points >= 2  # p50 and p90 of the minute with the call
        if shots:
            await page.screenshot(shots / "console-health.png")
        assert not [line for line in browser.console if "Error" in line], browser.console
