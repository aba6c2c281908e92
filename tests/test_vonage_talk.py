"""Vonage talk as the output: translations spoken into the listener's call through the fake Voice REST API,
which checks each request's path, JWT signature and body; barge-in stops the talk; a refused talk costs one
utterance, not the call."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from babelfish.config.settings import Settings
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_call import FakeCall
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.serving import background
from babelfish.telephony.rest import VonageRest
from babelfish.telephony.talk import VonageTalk, estimated_duration
from tests.conftest import double_engines
from tests.test_rest import APP_ID, keypair

from .conftest import dial_pair

PACE = 4.0



class LongTranslator:
    """Test double: a translation long enough (about 14 s as spoken) that the listener can barge in on it."""

    name = "test-long-translator"

    async def translate(self, text: str, source: str, target: str, context: object = ()) -> str:
        return f"[{target}] {text}. " + "This is what was said, at length. " * 6


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return keypair()


async def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def joined_notice_spoken(waiting, vonage: FakeVonage) -> None:
    """The caller who waited is told, by Vonage's talk, that someone joined: let it finish, then forget it."""
    await wait_for(lambda: waiting.talks)
    await asyncio.sleep(estimated_duration(waiting.talks[0]["text"]) + 0.2)
    waiting.talks.clear()
    vonage.api_requests.clear()


async def hang_up(*calls: FakeCall) -> None:
    """The callers hang up before the server stops: a server stopping with callers on the line lets what
    Vonage is still saying to them finish first (seconds of talk, by its estimate)."""
    for call in calls:
        await call.hang_up()


def test_voice_per_language_and_premium() -> None:
    talk = VonageTalk(rest=None, styles={"de": 2, "en-US": 4}, premium=True)  # type: ignore[arg-type]
    assert talk.voice("de-DE") == ("de-DE", 2, True)
    assert talk.voice("de") == ("de-DE", 2, True)
    assert talk.voice("en-US") == ("en-US", 4, True)
    assert talk.voice("en-GB") == ("en-GB", 0, True)  # unset style: Vonage's first (0)
    assert estimated_duration("x" * 140) > estimated_duration("x" * 14) > 1.0


async def test_translations_are_spoken_by_vonage_and_barge_in_stops_the_talk(
        keys: tuple[str, str], speech, tmp_path) -> None:
    private, public = keys
    key_file = tmp_path / "private.key"
    key_file.write_text(private)
    samples, rate = speech
    settings = Settings(models_dir=tmp_path / "models", playback_lead_ms=200)
    async with FakeVonage("http://unset", application_id=APP_ID, public_key=public) as vonage:
        api = await vonage.start_api()
        talk = VonageTalk(VonageRest(APP_ID, str(key_file), api), styles={"en": 3, "de-DE": 1}, premium=True)
        engines = double_engines(translator=LongTranslator())
        engines.talk = talk
        async with background(settings, engines) as url:
            vonage.server = url
            feed = CaptionFeed(url)
            await feed.start()
            german, english = await dial_pair(vonage)
            await joined_notice_spoken(german, vonage)

            await german.say(samples, rate)
            await wait_for(lambda: english.talks)
            spoken = english.talks[0]
            assert spoken["text"].startswith("[en-GB] speech of") and "at length" in spoken["text"]
            assert (spoken["language"], spoken["style"], spoken["premium"]) == ("en-GB", 3, True)
            put = next(r for r in vonage.api_requests if r.method == "PUT")
            assert put.path == f"/v1/calls/{english.uuid}/talk" and put.status == 200
            assert put.body == {"text": spoken["text"], "language": "en-GB", "style": 3, "premium": True}
            # the fake verified the RS256 signature with the public key; the token names our application
            assert put.claims["application_id"] == APP_ID
            with pytest.raises(jwt.InvalidSignatureError):
                jwt.decode(VonageRest(APP_ID, keypair()[0], api).token(), public, algorithms=["RS256"])

            # the English caller answers while Vonage is still speaking: the talk is stopped
            await english.say(samples, rate)
            await wait_for(lambda: english.talk_stops == 1)
            delete = next(r for r in vonage.api_requests if r.method == "DELETE")
            assert delete.path == f"/v1/calls/{english.uuid}/talk" and delete.claims["application_id"] == APP_ID
            first = (await feed.wait_utterances(1))[0]
            assert first["leg"] == german.leg and first["error"] == f"playback to {english.leg}: cleared"
            assert first["latencies"]["talk"] >= 0 and first["latencies"]["first_frame"] > 0
            assert "synthesize" not in first["latencies"]

            # ... and what they said is spoken to the German caller in German, with its style
            await wait_for(lambda: german.talks)
            assert german.talks[0]["language"] == "de-DE" and german.talks[0]["style"] == 1
            assert german.talks[0]["text"].startswith("[de-DE] speech of")
            # no audio went down either websocket: Vonage spoke everything
            assert german.received_frames == 0 and english.received_frames == 0
            await feed.stop()
            await hang_up(german, english)
        await talk.aclose()


async def test_a_refused_talk_costs_that_utterance_not_the_call(keys: tuple[str, str], speech, tmp_path) -> None:
    private, public = keys
    samples, rate = speech
    settings = Settings(models_dir=tmp_path / "models", playback_lead_ms=200)
    async with FakeVonage("http://unset", application_id=APP_ID, public_key=public) as vonage:
        api = await vonage.start_api()
        talk = VonageTalk(VonageRest(APP_ID, private, api))
        engines = double_engines()
        engines.talk = talk
        async with background(settings, engines) as url:
            vonage.server = url
            feed = CaptionFeed(url)
            await feed.start()
            german, english = await dial_pair(vonage)
            await joined_notice_spoken(german, vonage)
            vonage.calls.remove(english)  # Vonage no longer knows the call: the talk is refused with 404
            await german.say(samples, rate)
            first = (await feed.wait_utterances(1))[0]
            assert first["translations"] == {"en-GB": f"[en-GB] {first['source_text']}"}
            assert first["error"].startswith(f"playback to {english.leg}: talk: PUT /v1/calls/{english.uuid}/talk")
            assert "HTTP 404" in first["error"]
            assert {(r.method, r.path) for r in vonage.api_requests} == {("PUT", f"/v1/calls/{english.uuid}/talk")}
            assert vonage.api_requests[-1].status == 404

            vonage.calls.append(english)  # the next utterance reaches the caller: the call went on
            await german.say(samples, rate)
            await wait_for(lambda: english.talks)
            assert english.talks[0]["text"].startswith("[en-GB] speech of")
            assert english.talks[0]["style"] == 0 and "premium" not in english.talks[0]
            assert german.connected and english.connected
            second = (await feed.wait_utterances(2))[1]
            assert second["error"] is None and second["latencies"]["talk"] >= 0
            await feed.stop()
            await hang_up(german, english)
        await talk.aclose()
