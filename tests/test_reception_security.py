"""Attacks on the call opening, each refused: toll fraud through keypad invitations (a stranger, a number
outside the allowed prefixes, one invitation too many), "all lines busy" in the wrong language, caller
numbers and typed digits in the logs, and "#" alone as a room code everyone shares."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from babelfish.config.settings import LimitsSettings, Settings
from babelfish.core import languages
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.app import Server
from babelfish.server.invitations import InviteQuota
from babelfish.server.serving import background
from babelfish.telephony.rest import VonageApiError
from babelfish.telephony.vonage import AnswerRequest, InputResult
from babelfish.transcripts.store import TranscriptStore

from .conftest import FAST_AUDIO, OPERATOR, double_engines
from .test_rest import APP_ID, keypair

PACE = 4.0
BASE = "https://babelfish.example"
OURS = "447700900000"
HOST = "447700900001"
STRANGER = "447700900066"
REFUSED = {tag: languages.prompt("invite_refused", tag)[0] for tag in ("en-GB", "de-DE")}


class RecordingRest:
    """Stands in for the Vonage REST client: records every number the server rings (``fail``: those that
    Vonage refuses, with an error that echoes the number, as Vonage's do)."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.rung: list[str] = []
        self.fail = fail or set()

    async def create_call(self, to: str, from_: str, answer_url: str, event_url: str) -> Any:
        self.rung.append(to)
        if to in self.fail:
            raise VonageApiError(f"POST /v1/calls: HTTP 400: invalid number {to}", 400)
        return SimpleNamespace(uuid=f"out-{len(self.rung)}")


@pytest.fixture
def room_settings(settings: Settings) -> Settings:
    settings.menu.room_codes = True
    settings.access.allowed = [HOST]
    return settings


@pytest.fixture
async def unit(room_settings: Settings) -> AsyncIterator[tuple[Server, RecordingRest]]:
    """A server that is not serving: its reception is driven directly, its REST client records."""
    server = Server(room_settings)
    rest = RecordingRest(fail={"4915100000003"})
    server.rest = rest  # type: ignore[assignment]
    try:
        yield server, rest
    finally:
        await server.reception.close()
        await server.store.close()


async def keypad(server: Server, number: str, digits: str, uuid: str) -> list[dict[str, Any]]:
    """A call from ``number`` answered, ``digits`` typed at the room menu (as Vonage posts them: without the
    "#" that submitted them); returns the NCCO that follows (and lets any outbound call be placed)."""
    reception = server.reception
    call = AnswerRequest.model_validate({"from": number, "to": OURS, "uuid": uuid, "conversation_uuid": f"CON-{uuid}"})
    ncco: list[dict[str, Any]] | None = await reception.answer(call, BASE)
    if ncco is not None and ncco[-1]["action"] == "input":
        ncco = await reception.input(InputResult(uuid=uuid, dtmf={"digits": digits}), BASE)
    assert ncco is not None
    await asyncio.gather(*reception._tasks)
    return ncco


def spoken(ncco: list[dict[str, Any]]) -> list[str]:
    return [a["text"] for a in ncco if a["action"] == "talk"]


def errors(server: Server, kind: str) -> float:
    for line in server.metrics.render().decode().splitlines():
        if line.startswith(f'babelfish_errors_total{{kind="{kind}"}}'):
            return float(line.split()[-1])
    return 0.0


# -- toll fraud: keypad invitations --------------------------------------------------------------------------


async def test_a_stranger_typing_an_invitation_rings_no_one_hears_it_refused_and_it_is_counted(
        settings: Settings) -> None:
    """The default set-up (room codes on, no allow-list): anyone may call, no one may ring out."""
    private, public = keypair()
    settings.menu.room_codes = True
    settings.numbers = {STRANGER: "en-GB"}
    async with FakeVonage("http://127.0.0.1:1", application_id=APP_ID, public_key=public) as vonage:
        api = await vonage.start_api()
        settings.vonage = settings.vonage.model_copy(update={
            "application_id": APP_ID, "private_key": private, "api_url": api, "number": OURS})
        async with background(settings, double_engines()) as url:
            vonage.server = url
            caller = await vonage.dial(STRANGER, keys=["*4915100000002#"], pace=PACE)
            await asyncio.sleep(0.5)  # an invitation would be placed by now
            assert [r.path for r in vonage.api_requests if r.path == "/v1/calls"] == []
            texts = [p["text"] for p in caller.prompts]
            assert REFUSED["en-GB"] in texts and caller.connected  # told, then the call goes on
            assert texts[-1] == languages.prompt("wait", "en-GB")[0]
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(f"{url}/metrics", headers=OPERATOR)).text
            assert 'babelfish_errors_total{kind="invite_refused_not_allowed"} 1.0' in metrics


async def test_an_allowed_caller_cannot_ring_outside_the_allowed_prefixes(
        unit: tuple[Server, RecordingRest]) -> None:
    server, rest = unit
    server.settings.access.invite_prefixes = ["+44"]
    abroad = await keypad(server, HOST, "*4915100000002", "0001-call")
    assert rest.rung == [] and spoken(abroad)[0] == REFUSED["de-DE"]
    assert abroad[-1]["action"] == "connect"
    home = await keypad(server, "+" + HOST, "*447700900123", "0002-call")
    assert rest.rung == ["447700900123"] and REFUSED["de-DE"] not in spoken(home)
    assert errors(server, "invite_refused_prefix") == 1


async def test_the_fourth_invitation_in_an_hour_is_refused(unit: tuple[Server, RecordingRest]) -> None:
    server, rest = unit
    assert server.settings.access.invites_per_hour == 3
    for n in range(1, 5):
        ncco = await keypad(server, HOST, f"*44770090020{n}", f"{n:04d}-call")
    assert rest.rung == ["447700900201", "447700900202", "447700900203"]
    assert spoken(ncco)[0] == REFUSED["de-DE"] and errors(server, "invite_refused_rate") == 1


async def test_invitations_the_operator_configured_are_not_keypad_invitations(
        unit: tuple[Server, RecordingRest]) -> None:
    """``access.invites`` rings at once, whatever the keypad rules: no prefix, quota or refusal applies."""
    server, rest = unit
    server.settings.access.invites = {HOST: "4915100000300"}
    server.settings.access.invite_prefixes = ["33"]
    server.reception.quota.per_hour = 0
    ncco = await keypad(server, HOST, "", "0001-call")  # no room menu: straight to the room, ringing
    assert rest.rung == ["4915100000300"] and spoken(ncco) == [languages.prompt("inviting", "de-DE")[0]]
    assert errors(server, "invite_refused_prefix") == errors(server, "invite_refused_rate") == 0


def test_the_quota_slides_over_the_hour_and_its_memory_is_bounded() -> None:
    quota = InviteQuota(per_hour=3, callers=2)
    assert [quota.take("+44770", now=t) for t in (0, 10, 20, 30)] == [True, True, True, False]
    assert quota.take("44770", now=3600) is True  # the first one has left the hour
    assert quota.take("44770", now=3601) is False
    assert quota.take("49151", now=3601) is True
    assert quota.take("33600", now=3602) is False  # the table is full of callers still counting: fail closed
    assert quota.take("33600", now=3630 + 3600) is True and len(quota._placed) <= 2
    assert InviteQuota(per_hour=0).take("44770", now=0) is False


# -- "all lines are busy" in the caller's language ------------------------------------------------------------


async def test_a_caller_who_chose_german_before_hears_all_lines_busy_in_german(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path, data_dir=tmp_path / "data", playback_lead_ms=200,
                        default_languages=["en-GB", "de-DE"], limits=LimitsSettings(**FAST_AUDIO, max_legs=1),
                        menu={"languages": ["en-GB", "de-DE"], "timeout_s": 1})
    (tmp_path / "data").mkdir()
    store = TranscriptStore(settings.database_url)
    store.remember_language("4915100000077", "de-DE")  # the choice of an earlier call
    store.close()
    async with background(settings, double_engines()) as url, FakeVonage(url) as vonage:
        first = await vonage.dial("447700900078", keys=["1"], pace=PACE)
        assert first.connected  # the only line
        again = await vonage.dial("4915100000077")
        assert again.ended and again.prompts == [{"text": languages.prompt("busy", "de-DE")[0],
                                                  "language": "de-DE"}]
        stranger = await vonage.dial("447700900079")
        assert stranger.prompts == [{"text": languages.prompt("busy", "en-GB")[0], "language": "en-GB"}]


# -- privacy: numbers masked, typed digits never logged --------------------------------------------------------


async def test_logs_mask_numbers_and_never_show_typed_digits(unit: tuple[Server, RecordingRest],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    server, rest = unit
    caplog.set_level(logging.INFO)
    await keypad(server, STRANGER, "", "0001-call")  # not on the allow-list
    await keypad(server, HOST, "4711986#", "0002-call")  # a room code (a PIN, for all we know)
    await keypad(server, HOST, "*4915100000002", "0003-call")  # an invitation
    await keypad(server, HOST, "*4915100000003", "0004-call")  # one that Vonage refuses
    server.settings.access.invite_prefixes = ["33"]
    await keypad(server, HOST, "*4915100000004", "0005-call")  # one that we refuse
    text = "\n".join(r.getMessage() for r in caplog.records)
    for number in (STRANGER, "4915100000002", "4915100000003", "4915100000004"):
        assert number not in text
    for masked in ("44*******066", "49********002", "49********003", "49********004"):
        assert masked in text
    ours = [r.getMessage() for r in caplog.records
            if r.name in ("babelfish.server.reception", "babelfish.server.invitations")]
    assert not any("4711986" in line for line in ours) and any("a room code was entered" in line for line in ours)
    assert rest.rung == ["4915100000002", "4915100000003"]


# -- "#" alone: the next caller, never a room called "#" ---------------------------------------------------------


async def test_hash_alone_pairs_with_the_next_caller_and_opens_no_shared_room(settings: Settings) -> None:
    settings.menu.room_codes = True
    async with background(settings, double_engines()) as url, httpx.AsyncClient(base_url=url) as http:
        for n, digits in enumerate(["#", "#", "#", "*#", "4711#"], 1):  # as Vonage may post them: "#" included
            uuid = f"hash-{n}"
            menu = (await http.get("/answer", params={"from": f"44770090040{n}", "to": OURS, "uuid": uuid,
                                                      "conversation_uuid": f"CON-{uuid}"})).json()
            assert menu[-1]["action"] == "input"
            reply = (await http.post("/input", json={"uuid": uuid, "dtmf": {"digits": digits}})).json()
            assert reply[-1]["action"] == "connect"
        rooms = (await http.get("/rooms", headers=OPERATOR)).json()["rooms"]
    assert sorted((r["code"] or "", len(r["legs"])) for r in rooms) == [("", 2), ("", 2), ("4711", 1)]
