"""Bounds: concurrent legs, call length, legs that never connect, webhook rate, queued audio, utterance
length. Over a bound the server sheds the work with a clear message, never its memory."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from babelfish.config.pipeline import SegmenterSettings
from babelfish.config.settings import LimitsSettings, Settings
from babelfish.core import languages
from babelfish.core.events import CaptionHub
from babelfish.core.rooms import Leg
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.pipeline.playback import Playback
from babelfish.pipeline.stream import LegSession
from babelfish.server.serving import background, background_server
from babelfish.telephony import wire

from .conftest import FAST_AUDIO, OPERATOR, double_engines

PACE = 4.0


def limited(tmp_path, **limits) -> Settings:
    return Settings(models_dir=tmp_path, playback_lead_ms=200, limits=LimitsSettings(**{**FAST_AUDIO, **limits}))


async def test_over_max_legs_callers_hear_all_lines_busy_and_the_call_ends(tmp_path) -> None:
    async with background(limited(tmp_path, max_legs=2), double_engines()) as url:
        async with FakeVonage(url) as vonage:
            a = await vonage.dial("4915100000001")
            await vonage.dial("4915100000002")
            c = await vonage.dial("4915100000003")
            assert c.ended and not c.connected
            assert [a["action"] for a in c.ncco] == ["talk"]
            assert c.prompts[0]["text"] == languages.PROMPTS["busy"]["de"]  # unmapped: first default language
            # a retried answer for a leg we already have is not a new caller
            retry = await vonage.http.get(f"{url}/answer", params={"to": "447700900000", "from": a.caller,
                                                                   "uuid": a.uuid, "conversation_uuid": "x"})
            assert retry.json()[-1]["action"] == "connect"
            async with httpx.AsyncClient() as http:
                join = await http.post(f"{url}/phone/join", json={"language": "de"})
                assert join.status_code == 503 and "busy" in join.json()["error"]
                metrics = (await http.get(f"{url}/metrics", headers=OPERATOR)).text
                assert 'babelfish_errors_total{kind="legs_full"} 2.0' in metrics
            await a.hang_up()
            d = await vonage.dial("4915100000004")
            assert d.connected


async def test_a_call_over_max_call_s_hears_a_notice_and_is_ended(tmp_path) -> None:
    async with background(limited(tmp_path, max_call_s=1.5), double_engines()) as url:
        async with FakeVonage(url) as vonage:
            a = await vonage.dial("4915100000001", pace=PACE)
            b = await vonage.dial("4915100000002", pace=PACE)
            async with asyncio.timeout(15):
                while a.closed is None or b.closed is None:
                    await asyncio.sleep(0.05)
            for call in (a, b):
                assert call.closed == (wire.CLOSE_NORMAL, "call time limit reached")
                assert call.received_frames > 10  # the spoken notice
            async with httpx.AsyncClient() as http:
                health = (await http.get(f"{url}/health")).json()
                assert health["legs"] == 0 and health["rooms"] == 0


async def test_a_leg_whose_socket_never_opens_is_ended(tmp_path) -> None:
    async with background(limited(tmp_path, connect_within_s=1), double_engines()) as url:
        async with FakeVonage(url) as vonage, httpx.AsyncClient() as http:
            await vonage.dial("4915100000001", connect=False)
            assert (await http.get(f"{url}/health")).json()["legs"] == 1
            async with asyncio.timeout(5):
                while (await http.get(f"{url}/health")).json()["legs"]:
                    await asyncio.sleep(0.1)


async def test_webhook_rate_per_client_gets_429_with_a_json_error(tmp_path) -> None:
    async with background(limited(tmp_path, webhook_rate=1, webhook_burst=3), double_engines()) as url:
        async with httpx.AsyncClient() as http:
            body = {"status": "ringing", "uuid": "x"}
            codes = [(await http.post(f"{url}/event", json=body)).status_code for _ in range(3)]
            assert codes == [200, 200, 200]
            r = await http.post(f"{url}/event", json=body)
            assert r.status_code == 429 and r.json() == {"error": "too many requests"}
            assert int(r.headers["retry-after"]) >= 1
            r = await http.get(f"{url}/answer", params={"to": "1", "from": "2", "uuid": "u", "conversation_uuid": "c"})
            assert r.status_code == 429
            assert (await http.get(f"{url}/health")).status_code == 200  # not a webhook: not limited
            await asyncio.sleep(1.1)
            assert (await http.post(f"{url}/event", json=body)).status_code == 200  # the bucket refills


def test_rate_limiter_keeps_a_bounded_number_of_clients() -> None:
    from babelfish.server.limits import RateLimiter

    limiter = RateLimiter(rate=1, burst=1, max_clients=100)
    for i in range(10_000):
        assert limiter.allow(f"10.0.{i // 256}.{i % 256}", now=0.0)
    assert len(limiter._buckets) == 100
    assert not limiter.allow("10.0.39.15", now=0.0)  # a recent client is still remembered


async def test_queued_audio_per_leg_is_bounded_by_a_setting(tmp_path) -> None:
    settings = limited(tmp_path, inbound_frames=20, pending_utterances=2)
    engines = double_engines()

    async def nowhere(*_: object) -> None:
        return None

    playback = Playback(nowhere, nowhere, 16000)
    session = LegSession(Leg(id="leg-1", caller="1", language="de-DE"), engines, CaptionHub(), settings, 16000,
                         playback)
    for _ in range(500):  # ten seconds of audio arrive while the segmenter is not keeping up
        session.feed(b"\x00" * 640)
    assert session.inbound.qsize() == 20 and session.dropped_frames == 480
    assert session.utterances.maxsize == 2
    assert session.dropped["frames"] == 480


async def test_long_turns_are_cut_at_max_utterance_s(tmp_path, speech) -> None:
    samples, rate = speech
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200,
                        segmenter=SegmenterSettings(max_utterance_s=2.0))
    async with background_server(settings, double_engines()) as (url, _server):
        feed = CaptionFeed(url)
        await feed.start()
        async with FakeVonage(url) as vonage:
            a = await vonage.dial("4915100000001", pace=PACE)
            await vonage.dial("4915100000002", pace=PACE)
            await a.say(samples, rate)  # about 5.5 s of speech
            records = await feed.wait_utterances(2, timeout=20)
        await feed.stop()
    assert records[0]["cut"] is True
    assert records[0]["ended_at"] - records[0]["started_at"] <= 2.0 / PACE + 0.5
    assert float(records[0]["source_text"].split()[2]) == pytest.approx(2.0, abs=0.35)


def test_limits_settings_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("BABELFISH_LIMITS__MAX_LEGS", "7")
    monkeypatch.setenv("BABELFISH_LIMITS__RECOGNIZE_TIMEOUT_S", "2.5")
    monkeypatch.setenv("BABELFISH_SECURITY__SIGNATURE_SECRET", "s3cret")
    monkeypatch.setenv("BABELFISH_LOG_FORMAT", "json")
    s = Settings()
    assert s.limits.max_legs == 7 and s.limits.recognize_timeout_s == 2.5
    assert s.security.signature_secret is not None and s.security.signature_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)  # secrets do not end up in logs
    assert s.log_format == "json"
