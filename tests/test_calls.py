"""Call features through the fake Vonage (and its fake REST API): the language menu and remembered choice,
room codes, the allow-list, invitations, conferences and transcripts (test-double engines)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from babelfish.cli import main as cli
from babelfish.config.settings import Settings
from babelfish.core import audio
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_call import FakeCall
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.serving import background
from babelfish.transcripts.store import TranscriptStore

from .conftest import OPERATOR, dial_pair, double_engines
from .test_rest import APP_ID, keypair

PACE = 4.0
TOKEN = "s3cret-transcripts-24-chars"


@pytest.fixture
def menu_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"menu": settings.menu.model_copy(update={
        "languages": ["en-GB", "de-DE", "fr-FR"], "timeout_s": 1})})


@pytest.fixture
async def served(menu_settings: Settings) -> AsyncIterator[str]:
    async with background(menu_settings, double_engines()) as url:
        yield url


async def snapshot(url: str) -> dict:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{url}/rooms", headers=OPERATOR)).json()


def leg_of(snap: dict, leg_id: str) -> dict:
    return next(leg for room in snap["rooms"] for leg in room["legs"] if leg["id"] == leg_id)


async def test_language_menu_each_option_in_its_own_language_and_the_choice_is_remembered(served: str) -> None:
    async with FakeVonage(served) as vonage:
        call = await vonage.dial("447700900001", keys=["2"], pace=PACE)
        assert call.prompts[:3] == [
            {"text": "For English, press 1.", "language": "en-GB"},
            {"text": "Für Deutsch drücken Sie die 2.", "language": "de-DE"},
            {"text": "Pour le français, appuyez sur 3.", "language": "fr-FR"},
        ]
        assert call.headers["lang"] == "de-DE" and call.prompts[-1]["language"] == "de-DE"
        assert leg_of(await snapshot(served), call.leg)["language"] == "de-DE"
        await call.hang_up()

        again = await vonage.dial("447700900001", pace=PACE)  # no keys: the menu must not be asked
        assert [p["text"] for p in again.prompts] == ["Bitte warten Sie, während wir Sie verbinden."]
        assert again.headers["lang"] == "de-DE"


async def test_menu_input_is_a_real_ncco_input_action(menu_settings: Settings) -> None:
    async with background(menu_settings, double_engines()) as url, httpx.AsyncClient(base_url=url) as http:
        ncco = (await http.get("/answer", params={"from": "447700900001", "to": "447700900000", "uuid": "m-1",
                                                  "conversation_uuid": "CON-m1"})).json()
        assert [a["action"] for a in ncco] == ["talk", "talk", "talk", "input"]
        assert all(a["bargeIn"] is True for a in ncco[:3])
        assert ncco[3]["type"] == ["dtmf"] and ncco[3]["dtmf"] == {"maxDigits": 1, "timeOut": 1, "submitOnHash": False}
        assert ncco[3]["eventUrl"] == [f"{url}/input"]
        # the old result shape ("dtmf": "3") is accepted too; a call not in a menu is a clear 404
        reply = (await http.post("/input", json={"uuid": "m-1", "dtmf": "3", "timed_out": False})).json()
        assert reply[-1]["action"] == "connect" and reply[0]["language"] == "fr-FR"
        missing = await http.post("/input", json={"uuid": "nobody", "dtmf": {"digits": "1"}})
        assert missing.status_code == 404 and "no menu" in missing.json()["error"]
        assert (await http.post("/input", json={"dtmf": "1"})).status_code == 400


async def test_a_caller_who_listens_to_the_menu_picks_their_language(served: str) -> None:
    async with FakeVonage(served) as vonage:
        call = await vonage.dial("33600000001", language="fr-FR", pace=PACE)
        assert call.headers["lang"] == "fr-FR"


async def test_no_key_or_a_wrong_key_repeats_the_menu_then_takes_the_first_option(served: str) -> None:
    async with FakeVonage(served) as vonage:
        call = await vonage.dial("447700900002", keys=[None, "9"], pace=PACE)
        assert sum(p["text"] == "For English, press 1." for p in call.prompts) == 2
        assert call.headers["lang"] == "en-GB"


async def test_a_mapped_number_skips_the_menu(menu_settings: Settings) -> None:
    menu_settings.numbers = {"4915100000001": "de-DE"}
    async with background(menu_settings, double_engines()) as url, FakeVonage(url) as vonage:
        call = await vonage.dial("4915100000001", pace=PACE)
        assert len(call.prompts) == 1 and call.headers["lang"] == "de-DE"


async def test_room_codes_put_callers_together_and_hash_alone_pairs_with_the_next_caller(settings: Settings) -> None:
    settings.menu.languages = []
    settings.menu.room_codes = True
    async with background(settings, double_engines()) as url, FakeVonage(url) as vonage:
        first = await vonage.dial("447700900011", keys=["4711#"], pace=PACE)
        stranger = await vonage.dial("447700900012", keys=["#"], pace=PACE)
        second = await vonage.dial("447700900013", keys=["4711#"], pace=PACE)
        other = await vonage.dial("447700900014", keys=["#"], pace=PACE)
        assert "Raum" in first.prompts[0]["text"] and first.prompts[0]["language"] == "de-DE"
        assert first.headers["room"] == second.headers["room"] != stranger.headers["room"]
        assert stranger.headers["room"] == other.headers["room"]
        snap = await snapshot(url)
        assert {r["code"]: len(r["legs"]) for r in snap["rooms"]} == {"4711": 2, None: 2}


async def test_a_number_not_on_the_allow_list_is_refused_politely_in_its_language(menu_settings: Settings) -> None:
    menu_settings.access.allowed = ["447700900001"]
    menu_settings.numbers = {"4915100000099": "de-DE"}
    async with background(menu_settings, double_engines()) as url, FakeVonage(url) as vonage:
        stranger = await vonage.dial("4915100000099")
        assert stranger.ended and [a["action"] for a in stranger.ncco] == ["talk"]
        assert stranger.prompts == [{"text": "Entschuldigung, dieser Dienst ist nur auf Einladung nutzbar. "
                                             "Auf Wiederhören.", "language": "de-DE"}]
        allowed = await vonage.dial("+447700900001", keys=["1"], pace=PACE)
        assert allowed.connected and allowed.headers["lang"] == "en-GB"
        assert [leg["id"] for room in (await snapshot(url))["rooms"] for leg in room["legs"]] == [allowed.leg]


@pytest.fixture
def vonage_keys() -> tuple[str, str]:
    return keypair()


async def test_an_allowed_caller_invites_someone_who_joins_their_room_but_cannot_call_alone(
        menu_settings: Settings, vonage_keys: tuple[str, str], speech) -> None:
    private, public = vonage_keys
    samples, rate = speech
    async with FakeVonage("http://127.0.0.1:1", application_id=APP_ID, public_key=public) as vonage:
        api = await vonage.start_api()
        menu_settings.access.allowed = ["447700900001"]
        menu_settings.menu.room_codes = True
        menu_settings.vonage = menu_settings.vonage.model_copy(update={
            "application_id": APP_ID, "private_key": private, "api_url": api, "number": "447700900000"})
        async with background(menu_settings, double_engines()) as url:
            vonage.server = url
            vonage.outbound_keys["4915100000002"] = ["2"]  # the invitee picks Deutsch
            host = await vonage.dial("447700900001", keys=["1", "*4915100000002#"], pace=PACE)
            guest = await vonage.next_outbound()
            assert host.prompts[-1]["text"].startswith("We are calling the other person")

            order = next(r for r in vonage.api_requests if r.path == "/v1/calls")
            assert order.method == "POST" and order.status == 200 and order.claims["application_id"] == APP_ID
            assert order.body["to"] == [{"type": "phone", "number": "4915100000002"}]
            assert order.body["from"] == {"type": "phone", "number": "447700900000"}
            assert order.body["answer_url"][0].startswith(f"{url}/answer/invitation/")
            assert order.body["event_url"] == [f"{url}/event"]

            assert guest.direction == "outbound" and guest.number == "4915100000002"
            assert guest.headers["lang"] == "de-DE" and guest.headers["room"] == host.headers["room"]
            turn = await host.say(samples, rate)
            assert await guest.wait_heard(after=turn.started, quiet_s=0.5, timeout=20)

            # the invitation is single-use, and the invitee is not allowed to call in on their own
            async with httpx.AsyncClient() as http:
                again = (await http.get(order.body["answer_url"][0], params={
                    "to": "4915100000002", "from": "447700900000", "uuid": "replay-1",
                    "conversation_uuid": "CON-r"})).json()
            assert [a["action"] for a in again] == ["talk"] and "invitation only" in again[0]["text"]
            alone = await vonage.dial("4915100000002")
            assert alone.ended and alone.prompts[0]["text"].startswith("Sorry, this service is by invitation")


async def test_an_unanswered_invitation_is_told_to_the_host(menu_settings: Settings,
                                                           vonage_keys: tuple[str, str]) -> None:
    private, public = vonage_keys
    async with FakeVonage("http://127.0.0.1:1", application_id=APP_ID, public_key=public) as vonage:
        api = await vonage.start_api()
        menu_settings.menu.languages = []
        menu_settings.access.invites = {"447700900001": "4915100000003"}  # configured: rung at once
        menu_settings.vonage = menu_settings.vonage.model_copy(update={
            "application_id": APP_ID, "private_key": private, "api_url": api})
        async with background(menu_settings, double_engines()) as url:
            vonage.server = url
            vonage.unreachable.add("4915100000003")
            host = await vonage.dial("447700900001", pace=PACE)
            for _ in range(100):
                if host.received_frames:
                    break
                await asyncio.sleep(0.05)
            assert host.received_frames > 0  # the notice; nothing else plays to a caller alone
            assert [r.path for r in vonage.api_requests] == ["/v1/calls"]


async def test_configured_invites_without_a_vonage_application_fail_at_startup(settings: Settings) -> None:
    settings.access.invites = {"447700900001": "4915100000003"}
    with pytest.raises(Exception, match="BABELFISH_VONAGE__APPLICATION_ID"):
        async with background(settings, double_engines()):
            pass


async def test_a_three_language_conference_and_a_same_language_listener_hearing_the_voice_itself(
        settings: Settings, speech) -> None:
    samples, rate = speech
    samples = samples[: int(rate * 2.5)]
    settings.menu.room_codes = True
    settings.menu.languages = []
    settings.numbers = {"447700900001": "en-GB", "4915100000002": "de-DE", "33600000003": "fr-FR",
                        "12025550104": "en-US"}
    async with background(settings, double_engines()) as url, FakeVonage(url) as vonage:
        feed = CaptionFeed(url)
        await feed.start()
        # real time: a live voice cannot reach a listener faster than it can be played
        calls = {number: await vonage.dial(number, keys=["99#"]) for number in settings.numbers}
        en, de, fr, us = calls.values()
        assert len({call.headers["room"] for call in calls.values()}) == 1

        for speaker in (en, de, fr):
            turn = await speaker.say(samples, rate)
            listeners = [c for c in (en, de, fr) if c is not speaker]
            for listener in listeners:
                heard = await listener.wait_heard(after=turn.started, quiet_s=0.5, timeout=20)
                assert heard, (speaker.caller, listener.caller, listener.received_frames)
        records = await feed.wait_utterances(3)
        by_leg = {r["leg"]: r for r in records}
        assert set(by_leg[en.leg]["translations"]) == {"de-DE", "fr-FR", "en-US"}
        assert by_leg[en.leg]["translations"]["fr-FR"].startswith("[fr-FR] ")
        assert by_leg[de.leg]["translations"]["en-GB"].startswith("[en-GB] ")
        assert by_leg[de.leg]["translations"]["en-US"].startswith("[en-US] ")
        assert by_leg[fr.leg]["translations"]["de-DE"].startswith("[de-DE] ")

        # the en-US leg heard the en-GB speaker's own voice, frame for frame (not a synthesized translation):
        # every loud frame the speaker sent reached it unchanged
        sent = audio.frames(audio.float_to_pcm(audio.resample(samples, rate, en.rate)), en.rate)
        loud = [f for f in sent if np.abs(np.frombuffer(f, dtype="<i2")).max() >= 2000]
        received = {p.frame for p in us.played}
        assert loud and sum(f in received for f in loud) / len(loud) > 0.95
        # and listeners of another language never hear the voice itself
        assert not any(f in {p.frame for p in de.played} for f in loud)
        await feed.stop()


# -- transcripts -------------------------------------------------------------------------------------------


async def _one_call(url: str, speech) -> tuple[FakeCall, FakeCall]:
    samples, rate = speech
    feed = CaptionFeed(url)
    await feed.start()
    async with FakeVonage(url) as vonage:
        de, en = await dial_pair(vonage)
        turn = await de.say(samples, rate)
        assert await en.wait_heard(after=turn.started, quiet_s=0.5, timeout=20)
        turn = await en.say(samples[: rate * 2], rate)
        assert await de.wait_heard(after=turn.started, quiet_s=0.5, timeout=20)
        await feed.wait_utterances(2)
        await de.hang_up()
        await en.hang_up()
    await feed.stop()
    return de, en


async def test_transcripts_survive_a_restart_and_export_in_every_format(settings: Settings, speech, capsys,
                                                                       tmp_path: Path, monkeypatch) -> None:
    settings.transcripts.token = TOKEN
    settings.numbers = {"4915100000001": "de-DE", "447700900002": "en-GB"}
    async with background(settings, double_engines()) as url:
        de, en = await _one_call(url, speech)

    async with background(settings, double_engines()) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/calls")).status_code == 401
        assert (await http.get("/calls", headers={"Authorization": "Bearer wrong"})).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        calls = (await http.get("/calls", headers=auth)).json()["calls"]
        assert len(calls) == 1 and calls[0]["utterances"] == 2 and calls[0]["ended_at"] >= calls[0]["started_at"]
        assert [(leg["number"], leg["language"]) for leg in calls[0]["legs"]] == [
            ("49********001", "de-DE"), ("44*******002", "en-GB")]
        call_id = calls[0]["id"]

        data = (await http.get(f"/calls/{call_id}/transcript", headers=auth)).json()
        first, second = data["utterances"]
        assert first["leg_id"] == de.leg and first["language"] == "de-DE" and first["number"] == "49********001"
        assert first["source_text"].startswith("speech of") and first["ended_at"] > first["started_at"]
        assert first["translations"] == {"en-GB": f"[en-GB] {first['source_text']}"}
        assert second["leg_id"] == en.leg and second["translations"]["de-DE"].startswith("[de-DE] speech of 2")

        txt = (await http.get(f"/calls/{call_id}/transcript", params={"format": "txt", "token": TOKEN})).text
        assert f"49********001 (de-DE): {first['source_text']}" in txt and "-> en-GB: [en-GB]" in txt
        srt = await http.get(f"/calls/{call_id}/transcript", params={"format": "srt"}, headers=auth)
        assert srt.headers["content-type"].startswith("application/x-subrip")
        cues = srt.text.strip().split("\n\n")
        assert len(cues) == 2 and cues[0].split("\n")[0] == "1" and " --> " in cues[0] and "," in cues[0].split("\n")[1]
        vtt = (await http.get(f"/calls/{call_id}/transcript", params={"format": "vtt"}, headers=auth)).text
        assert vtt.startswith("WEBVTT\n\n1\n00:00:") and "<v 44*******002>" in vtt
        bad = await http.get(f"/calls/{call_id}/transcript", params={"format": "doc"}, headers=auth)
        assert bad.status_code == 400
        assert (await http.get("/calls/nope/transcript", headers=auth)).status_code == 404

    # the CLI reads the same database
    monkeypatch.setenv("BABELFISH_DATA_DIR", str(settings.data_dir))
    assert cli(["transcripts", "list"]) == 0
    assert call_id in capsys.readouterr().out
    assert cli(["transcripts", "show", call_id]) == 0
    assert first["source_text"] in capsys.readouterr().out
    out = tmp_path / "call.vtt"
    assert cli(["transcripts", "export", call_id, "--format", "vtt", "--out", str(out)]) == 0
    assert out.read_text() == vtt
    assert cli(["transcripts", "show", "nope"]) == 2


async def test_the_transcript_api_is_off_without_a_token(server) -> None:
    url, _ = server
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{url}/calls")
    assert reply.status_code == 403 and "BABELFISH_TRANSCRIPTS__TOKEN" in reply.json()["error"]


def test_retention_deletes_old_calls_only_and_numbers_can_be_kept_whole(tmp_path: Path) -> None:
    from babelfish.core.utterance import Utterance

    store = TranscriptStore(f"sqlite:///{tmp_path / 't.db'}", mask_numbers=False)
    day = 86400.0
    for call_id, at in (("old", 1000.0), ("new", 1000.0 + 40 * day)):
        store.call_started(call_id, "", at)
        store.leg_joined(call_id, f"{call_id}-leg", "447700900001", "en-GB", "inbound", at)
        store.add_utterance(call_id, Utterance(id=f"{call_id}-u", room=call_id, leg=f"{call_id}-leg",
                                               language="en-GB", started_at=at, ended_at=at + 1,
                                               source_text="hello"), "447700900001")
        store.call_ended(call_id, at + 60)
    assert store.purge(30, now=1000.0 + 41 * day) == 1
    assert [c["id"] for c in store.list_calls()] == ["new"]
    assert store.get_call("old") is None
    assert store.get_call("new")["utterances"][0]["number"] == "447700900001"
    store.remember_language("+447700900001", "fr-FR")
    assert store.remembered_language("447700900001") == "fr-FR"
    assert json.dumps(store.list_calls())  # rows are plain JSON
    store.close()
