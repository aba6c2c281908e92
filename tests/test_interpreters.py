"""A human interpreter in the room (docs/interpreters.md): the switchboard's bookkeeping and who hears whom,
then real leg sessions (tests/harness.py), then the server: the operator's routes, keypad codes and links,
each tried as a stranger too. The system test through the fake Vonage is tests/test_interpreters_call.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

from babelfish.config.settings import Settings
from babelfish.core import audio
from babelfish.core.events import Final
from babelfish.core.rooms import Leg, Observer, Room, Switchboard, hears_live
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server import interpreters
from babelfish.server.app import Server, create_app
from babelfish.server.console import COOKIE
from babelfish.server.serving import background_server
from babelfish.telephony.vonage import AnswerRequest, InputResult
from babelfish.transcripts.formats import render

from . import harness
from .conftest import OPERATOR, asterisk, double_engines

BASE = "https://babelfish.example"
PAIR = ("en-GB", "de-DE")


class Told(Observer):
    def __init__(self) -> None:
        self.said: list[tuple[str, ...]] = []

    def leg_joined(self, leg: Leg, room: Room) -> None:
        self.said.append(("joined", leg.role))

    def leg_left(self, leg: Leg, room: Room) -> None:
        self.said.append(("left", leg.role))

    def handed_over(self, leg: Leg, room: Room, active: bool, by: str) -> None:
        self.said.append(("handed over" if active else "taken back", by))


# -- the switchboard ---------------------------------------------------------------------------------------


def test_an_interpreter_is_never_paired_takes_no_callers_place_and_hears_only_their_languages() -> None:
    told = Told()
    board = Switchboard({}, ["de-DE", "en-GB"], observer=told)
    de, en = board.answer("a", "491"), board.answer("b", "442")
    room = de.room
    assert room is not None and room.full and en.room is room
    interpreter = board.add_interpreter("i", "443", room.id, PAIR, language="en-GB")
    assert interpreter.room is room and room.callers == [de, en] and room.languages() == ["de-DE", "en-GB"]
    third = board.answer("c", "444")  # the next caller is paired elsewhere: the interpreter took no place
    assert third.room is not room and board.waiting_room() is third.room
    with pytest.raises(KeyError):
        board.add_interpreter("j", "445", "no-such-room", PAIR, language="en-GB")

    # who hears whom live, and who is spoken a translation
    fr = Leg(id="f", caller="33", language="fr-FR", room=room)
    assert hears_live(interpreter, de) and hears_live(interpreter, en) and not hears_live(interpreter, fr)
    assert not hears_live(de, interpreter) and not hears_live(en, interpreter)  # standby: listens, unheard
    assert en.listeners() == [de] and interpreter.listeners() == []
    assert interpreter.interprets_between("de-AT", "en-US") and not interpreter.interprets_between("en-GB", "en-US")

    assert board.hand_over(interpreter, True, "by the operator") and not board.hand_over(interpreter, True, "again")
    assert hears_live(de, interpreter) and hears_live(en, interpreter) and not hears_live(fr, interpreter)
    assert room.interpreter("en-GB", "de-DE") is None  # handed over, but not connected: the machine speaks
    interpreter.session = object()  # type: ignore[assignment]
    assert room.interpreter("en-GB", "de-DE") is interpreter and room.interpreter("de-DE", "en-US") is interpreter
    assert room.interpreter("en-GB", "fr-FR") is None and room.interpreter("en-GB", "en-US") is None
    assert not board.hand_over(de, True, "a caller is no interpreter")

    board.hang_up("i")  # dropped while handed the call: taken back, told before the leg leaves
    assert room.interpreter("en-GB", "de-DE") is None and not interpreter.handed_over
    assert told.said[-3:] == [("handed over", "by the operator"), ("taken back", "as the interpreter left"),
                              ("left", "interpreter")]


# -- leg sessions: what each leg hears -----------------------------------------------------------------------


def loud(frames: list[bytes]) -> list[bytes]:
    return [f for f in frames if np.abs(np.frombuffer(f, dtype="<i2")).max(initial=0) >= 2000]


def sent_frames(samples: np.ndarray, rate: int, to: int) -> set[bytes]:
    return set(loud(audio.frames(audio.float_to_pcm(audio.resample(samples, rate, to)), to)))


async def test_the_listener_hears_the_interpreter_not_the_machine_and_the_machine_again_when_they_drop(
        settings: Settings, speech) -> None:
    samples, rate = speech
    samples = samples[: int(rate * 2.0)]
    other, other_rate = audio.read_wav(asterisk("conf-getconfno"))
    room = harness.Room(settings, double_engines(), languages=("en-GB", "de-DE", "en-GB"))
    room.legs[2].interprets = PAIR
    en, de, interpreter = room.legs
    ears = room.ears
    from_en, from_interpreter = sent_frames(samples, rate, room.rate), sent_frames(other, other_rate, room.rate)

    async def turn(i: int, said: np.ndarray, said_rate: int) -> tuple[int, int, int]:
        """Leg ``i`` speaks; how many frames each leg heard meanwhile (and until its translation played)."""
        before = {leg.id: len(ears[leg.id].audio) for leg in room.legs}
        done = len(room.utterances())
        await room.say(i, said, said_rate, pace=1.0)
        await room.wait_utterances(done + 1)
        await asyncio.sleep(1.0)
        return tuple(len(ears[leg.id].audio) - before[leg.id] for leg in room.legs)  # type: ignore[return-value]

    def heard(leg: Leg, since: int) -> list[bytes]:
        return ears[leg.id].audio[since:]

    async with room:
        # standby: the interpreter hears the caller live and no translation; the listener the machine
        mark = {leg.id: len(ears[leg.id].audio) for leg in room.legs}
        await turn(0, samples, rate)
        assert sum(f in from_en for f in heard(interpreter, mark[interpreter.id])) > 0.8 * len(from_en)
        assert all(f in from_en for f in loud(heard(interpreter, mark[interpreter.id])))
        machine = [f for f in loud(heard(de, mark[de.id])) if f not in from_en]
        assert machine, "the German listener heard the machine's translation"

        # handed over: the caption is still written, but the listener hears only the interpreter
        room.room.legs[2].handed_over = True
        mark = {leg.id: len(ears[leg.id].audio) for leg in room.legs}
        await turn(0, samples, rate)
        assert not heard(de, mark[de.id]), "no machine speech while the interpreter has the call"
        final = [e for e in room.events if isinstance(e, Final) and e.listener == de.id][-1]
        assert final.translation and final.translation.startswith("[de-DE] ")
        await turn(2, other, other_rate)  # the interpreter speaks: both callers hear the voice itself
        for listener in (en, de):
            got = heard(listener, mark[listener.id])
            assert got and all(f in from_interpreter for f in loud(got)), listener.id
        interpreted = room.utterances()[-1]
        assert interpreted.leg == interpreter.id and interpreted.translations == {} and interpreted.source_text

        # the interpreter drops: the very next utterance is the machine's again
        interpreter.session, dropped = None, interpreter.session
        mark = {leg.id: len(ears[leg.id].audio) for leg in room.legs}
        await turn(0, samples, rate)
        assert [f for f in loud(heard(de, mark[de.id])) if f not in from_en]
        assert not heard(interpreter, mark[interpreter.id])
        assert dropped is not None
        await dropped.close(drain_s=1)


# -- the server: invitations, the operator's routes, strangers -------------------------------------------------


@pytest.fixture
def code_settings(settings: Settings) -> Settings:
    settings.menu.room_codes = True
    return settings


async def typed(server: Server, number: str, digits: str, uuid: str) -> list[dict[str, Any]]:
    """A call from ``number`` that types ``digits`` at the room menu; the NCCO that follows."""
    call = AnswerRequest.model_validate({"from": number, "to": "447700900000", "uuid": uuid,
                                         "conversation_uuid": f"CON-{uuid}"})
    ncco = await server.reception.answer(call, BASE)
    assert ncco[-1]["action"] == "input"
    reply = await server.reception.input(InputResult(uuid=uuid, dtmf={"digits": digits}), BASE)
    assert reply is not None
    return reply


def connected(ncco: list[dict[str, Any]]) -> bool:
    return ncco[-1]["action"] == "connect"


async def test_keypad_codes_work_once_for_their_room_only_and_room_codes_never_make_an_interpreter(
        code_settings: Settings) -> None:
    server = Server(code_settings)
    try:
        assert connected(await typed(server, "441", "4711", "c1"))
        assert connected(await typed(server, "491", "4711", "c2"))
        room = server.switchboard.legs["c1"].room
        assert room is not None
        other = server.switchboard.answer("x1", "331", code="999")
        invitation = server.interpreters.invitations.create(room.id, PAIR, 600)
        assert invitation is not None and len(invitation.code) == interpreters.CODE_DIGITS
        # a stranger with the room code is a caller, never an interpreter; an unknown "**" code is refused
        assert connected(await typed(server, "442", "4711", "s1"))
        assert server.switchboard.legs["s1"].interprets is None
        refused = await typed(server, "443", "**" + "0" * interpreters.CODE_DIGITS, "s2")
        assert refused[-1]["action"] == "talk" and "s2" not in server.switchboard.legs
        assert "s2" not in server.reception.callers

        ncco = await typed(server, "444", f"**{invitation.code}", "i1")
        leg = server.switchboard.legs["i1"]
        assert connected(ncco) and leg.interprets == PAIR and leg.room is room and other.room is not room
        # used: the same code admits nobody else
        assert not connected(await typed(server, "445", f"**{invitation.code}", "i2"))
        assert "i2" not in server.switchboard.legs

        # the invitation of a room that ended admits nobody; one that expired neither
        gone = server.interpreters.invitations.create(other.room.id, PAIR, 600)  # type: ignore[union-attr]
        server.switchboard.hang_up("x1")
        assert gone is not None and not connected(await typed(server, "446", f"**{gone.code}", "i3"))
        late = server.interpreters.invitations.create(room.id, PAIR, 600)
        assert late is not None
        late.expires = time.time() - 1
        assert not connected(await typed(server, "447", f"**{late.code}", "i4"))

        # guessing is rationed: a few tries per number, then even the right code is refused for the hour
        right = server.interpreters.invitations.create(room.id, PAIR, 600)
        assert right is not None
        for n in range(interpreters.TRIES_PER_HOUR):
            await typed(server, "448", "**1234", f"g{n}")
        assert not connected(await typed(server, "448", f"**{right.code}", "g-right"))
        assert connected(await typed(server, "449", f"**{right.code}", "i5"))  # from another number it works
    finally:
        await server.reception.close()
        await server.store.close()


def test_every_interpreter_route_is_the_operators_only(settings: Settings) -> None:
    routes = [("POST", "/console/api/rooms/some-room/interpreters"), ("DELETE", "/console/api/interpreters/abc"),
              ("POST", "/console/api/legs/some-leg/hand-over"), ("POST", "/console/api/legs/some-leg/take-back")]
    for credentials in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": f"{COOKIE}=1.2.3"}):
        with TestClient(create_app(settings, double_engines())) as http:
            for method, path in routes:
                r = http.request(method, path, headers=credentials, json={"languages": list(PAIR)})
                assert r.status_code == 401 and "error" in r.json(), (method, path, credentials)
            for method, path in routes:  # the operator's token from another site's page
                r = http.request(method, path, headers={**OPERATOR, "Origin": "https://evil.example"})
                assert r.status_code == 403, (method, path)


async def test_the_operator_invites_hands_over_and_takes_back_and_the_transcript_says_so(
        code_settings: Settings, speech) -> None:
    samples, rate = speech
    code_settings.numbers = {"447700900001": "en-GB", "4915100000002": "de-DE", "33600000003": "fr-FR"}
    async with background_server(code_settings, double_engines()) as (url, server), FakeVonage(url) as vonage, \
            httpx.AsyncClient(base_url=url, headers=OPERATOR) as http, httpx.AsyncClient(base_url=url) as stranger:
        en = await vonage.dial("447700900001", keys=["4711#"], pace=4.0)
        de = await vonage.dial("4915100000002", keys=["4711#"], pace=4.0)
        elsewhere = await vonage.dial("33600000003", keys=["12#"], pace=4.0)
        (room,) = [r for r in (await http.get("/console/api/live")).json()["rooms"] if r["code"] == "4711"]
        asked = await http.post(f"/console/api/rooms/{room['id']}/interpreters", json={})
        assert asked.status_code == 201, asked.text
        invitation = asked.json()
        assert invitation["languages"] == ["en-GB", "de-DE"] and invitation["keys"] == f"**{invitation['code']}#"
        assert "/phone?interpreter=" in invitation["url"]
        bad = [await http.post(f"/console/api/rooms/{room['id']}/interpreters", json={"languages": body})
               for body in (["en-GB"], ["en-GB", "en-US"], ["en-GB", "xx-YY"], "en")]
        assert {r.status_code for r in bad} == {400}
        assert (await http.post("/console/api/rooms/nope/interpreters", json={})).status_code == 404
        live = (await http.get("/console/api/live")).json()
        (pending,) = next(r for r in live["rooms"] if r["id"] == room["id"])["interpreter_invitations"]
        assert pending["id"] == invitation["id"] and "code" not in pending

        # the browser link is the interpreter's, once; a stranger's link or a used one is refused
        token = invitation["url"].split("interpreter=")[1]
        forged = await stranger.post("/phone/join", json={"interpreter": token[:-2] + "xx", "language": "de"})
        assert forged.status_code == 403
        joined = await stranger.post("/phone/join", json={"interpreter": token, "language": "de"})
        assert joined.status_code == 200, joined.text
        again = await stranger.post("/phone/join", json={"interpreter": token, "language": "de"})
        assert again.status_code == 403
        browser = server.switchboard.legs[joined.json()["uuid"]]
        assert browser.interprets == ("en-GB", "de-DE") and browser.language == "de-DE" and browser.room
        assert browser.room.id == room["id"]
        # not connected: nothing to hand over; a caller's leg is no interpreter
        assert (await http.post(f"/console/api/legs/{browser.id}/hand-over")).status_code == 409
        assert (await http.post(f"/console/api/legs/{en.leg}/hand-over")).status_code == 404
        assert (await http.post(f"/console/api/legs/{browser.id}/end")).status_code == 200

        # by phone: the keypad code at the room menu
        invitation = (await http.post(f"/console/api/rooms/{room['id']}/interpreters",
                                      json={"languages": ["de-DE", "en-US"]})).json()
        interpreter = await vonage.dial("447700900009", keys=[invitation["keys"]], pace=4.0)
        leg_id = interpreter.leg
        assert (await http.post(f"/console/api/legs/{leg_id}/hand-over")).json() == {
            "leg": leg_id, "handed_over": True}
        live = (await http.get("/console/api/live")).json()
        shown = next(leg for r in live["rooms"] for leg in r["legs"] if leg["id"] == leg_id)
        assert shown["role"] == "interpreter" and shown["handed_over"] and shown["interprets"] == ["de-DE", "en-US"]
        # the interpreter hears only their own room: a caller elsewhere reaches none of its listeners
        speaker = server.switchboard.legs[elsewhere.leg]
        assert speaker.session is not None and speaker.session.fanout.live_listeners() == []
        assert (await http.post(f"/console/api/legs/{leg_id}/take-back")).json()["handed_over"] is False
        turn = await en.say(samples[: rate * 2], rate)
        assert await de.wait_heard(after=turn.started, quiet_s=0.3, timeout=20)
        await http.post(f"/console/api/rooms/{room['id']}/end")
        for _ in range(50):
            if leg_id not in server.switchboard.legs:
                break
            await asyncio.sleep(0.1)
        assert leg_id not in server.switchboard.legs  # ended with its room's callers
        await server.store.flush()
        call = (await http.get(f"/console/api/calls/{room['id']}")).json()
        assert [(e["kind"], e["detail"]) for e in call["events"]] == [
            ("interpreter_joined", "en-GB<->de-DE"), ("interpreter_left", "en-GB<->de-DE"),
            ("interpreter_joined", "de-DE<->en-US"), ("handed_over", "de-DE<->en-US, by the operator"),
            ("taken_back", "de-DE<->en-US, by the operator"), ("interpreter_left", "de-DE<->en-US")]
        txt = render(call, "txt")
        assert "-- handed over to the interpreter (de-DE<->en-US, by the operator)" in txt
        assert txt.index("-- an interpreter joined") < txt.index("-- taken back from the interpreter")
