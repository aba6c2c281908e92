"""The system test of a human interpreter (docs/interpreters.md), through the fake Vonage at real time: an
English and a German caller, an interpreter who joins by the keypad code the operator asked for; the
operator hands the call over and takes it back, then hands it over again and the interpreter hangs up.

What the German caller hears is told apart by its frames: the interpreter's voice arrives frame for frame as
the interpreter sent it (a recording of another speaker), the machine's translation is synthesized (a tone,
with the test-double engines). The figures it prints are in benchmarks/README.md:

    pytest -s -n 0 tests/test_interpreters_call.py
"""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np

from babelfish.config.settings import Settings
from babelfish.core import audio
from babelfish.core.events import UtteranceDone
from babelfish.devtools.fake_call import FakeCall, Turn
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.serving import background_server

from .conftest import OPERATOR, asterisk, double_engines

EN, DE, INTERPRETER = "447700900001", "4915100000002", "447700900009"
LOUD = 2000


def loud(frames: list[bytes]) -> list[bytes]:
    return [f for f in frames if np.abs(np.frombuffer(f, dtype="<i2")).max(initial=0) >= LOUD]


def frames_of(samples: np.ndarray, rate: int, call: FakeCall) -> list[bytes]:
    """The frames ``call`` sends when it says ``samples`` (as FakeCall.say cuts them)."""
    return audio.frames(audio.float_to_pcm(audio.resample(samples, rate, call.rate)), call.rate)


def heard(call: FakeCall, start: float, end: float = float("inf")) -> list[tuple[float, bytes]]:
    """The loud frames ``call`` heard that started playing between ``start`` and ``end``."""
    return [(p.at, p.frame) for p in call.played if start <= p.at < end and loud([p.frame])]


async def quiet(*calls: FakeCall, for_s: float = 0.8, timeout: float = 20.0) -> None:
    """Until nothing has played to ``calls`` for ``for_s`` (notices, the last translation)."""
    async with asyncio.timeout(timeout):
        while any(c.played and c.played[-1].at > time.monotonic() - for_s for c in calls):
            await asyncio.sleep(0.05)


async def test_an_interpreter_takes_the_call_over_and_gives_it_back_within_one_utterance(
        settings: Settings, speech) -> None:
    engines = double_engines()
    said, rate = speech
    said = said[: int(rate * 2.5)]
    interpreting, interpreting_rate = audio.read_wav(asterisk("conf-getconfno"))
    settings.menu.room_codes = True
    settings.numbers = {EN: "en-GB", DE: "de-DE"}
    async with background_server(settings, engines) as (url, server), FakeVonage(url) as vonage, \
            httpx.AsyncClient(base_url=url, headers=OPERATOR) as http:
        en = await vonage.dial(EN, keys=["4711#"])  # real time: a live voice cannot come faster
        de = await vonage.dial(DE, keys=["4711#"])
        room = next(r for r in (await http.get("/console/api/live")).json()["rooms"] if r["code"] == "4711")
        invitation = (await http.post(f"/console/api/rooms/{room['id']}/interpreters", json={})).json()
        interpreter = await vonage.dial(INTERPRETER, keys=[invitation["keys"]])
        assert server.switchboard.legs[interpreter.leg].interprets == ("en-GB", "de-DE")
        from_en = set(loud(frames_of(said, rate, en)))
        voice = frames_of(interpreting, interpreting_rate, interpreter)
        from_interpreter = set(loud(voice))
        live = from_en | from_interpreter

        def machine(call: FakeCall, start: float, end: float = float("inf")) -> list[float]:
            """When ``call`` heard frames that nobody sent: the machine speaking."""
            return [at for at, frame in heard(call, start, end) if frame not in live]

        finished: list[str] = []
        server.hub.listen(lambda event: finished.append(event.leg) if isinstance(event, UtteranceDone) else None)

        async def utterance(speaker: FakeCall, samples: np.ndarray, samples_rate: int) -> Turn:
            """``speaker`` says ``samples``; returns once its utterance was delivered and has played."""
            done = finished.count(speaker.leg)
            turn = await speaker.say(samples, samples_rate)
            async with asyncio.timeout(20):
                while finished.count(speaker.leg) == done:
                    await asyncio.sleep(0.05)
            await quiet(en, de, interpreter)
            return turn

        async def operator(action: str) -> float:
            reply = await http.post(f"/console/api/legs/{interpreter.leg}/{action}")
            assert reply.status_code == 200, reply.text
            return time.monotonic()

        await quiet(en, de, interpreter)  # "someone has joined"

        # standby: the machine translates; the interpreter hears the caller live, frame for frame
        first = await utterance(en, said, rate)
        assert machine(de, first.started)
        got = {frame for _, frame in heard(interpreter, first.started)}
        assert len(from_en & got) > 0.9 * len(from_en) and got <= from_en

        # handed over: the next utterance is not spoken by the machine; the listener hears the interpreter
        handed = await operator("hand-over")
        await utterance(en, said, rate)
        interpreted = await utterance(interpreter, interpreting, interpreting_rate)
        taken = await operator("take-back")
        assert not machine(de, handed, taken), "the machine spoke while the interpreter had the call"
        from_them = heard(de, interpreted.started, taken)
        assert len({f for _, f in from_them} & from_interpreter) > 0.9 * len(from_interpreter)
        sent_at = {frame: interpreted.started + i * 0.02 for i, frame in enumerate(voice)}
        voice_delay = [at - sent_at[frame] for at, frame in from_them]
        assert {f for _, f in heard(en, interpreted.started, taken)} <= from_interpreter  # both sides hear them

        # taken back: the next utterance is the machine's again, and the interpreter is not heard
        third = await utterance(en, said, rate)
        back = machine(de, third.started)
        assert back and not any(f in from_interpreter for _, f in heard(de, third.started))

        # handed over again, and the interpreter hangs up: the next utterance is the machine's
        await operator("hand-over")
        await interpreter.hang_up()
        async with asyncio.timeout(10):
            while interpreter.leg in server.switchboard.legs:
                await asyncio.sleep(0.05)
        await quiet(en, de)  # "someone has left"
        fourth = await utterance(en, said, rate)
        dropped = machine(de, fourth.started)
        assert dropped

        await server.store.flush()
        call = (await http.get(f"/console/api/calls/{room['id']}")).json()
        assert [(e["kind"], e["detail"].split(", ")[-1]) for e in call["events"]] == [
            ("interpreter_joined", "en-GB<->de-DE"), ("handed_over", "by the operator"),
            ("taken_back", "by the operator"), ("handed_over", "by the operator"),
            ("taken_back", "as the interpreter left"), ("interpreter_left", "en-GB<->de-DE")]
        spoken = {u["leg_id"]: u for u in call["utterances"]}
        assert spoken[interpreter.leg]["translations"] == {} and spoken[interpreter.leg]["source_text"]
        translated = [u for u in call["utterances"] if u["leg_id"] == en.leg]
        assert len(translated) == 4 and all(u["translations"]["de-DE"] for u in translated)  # captions still
        print(f"\ninterpreter hand-over: machine utterances heard after the hand-over 0 of 1; "
              f"interpreter's voice to the listener {1000 * min(voice_delay):.0f}-{1000 * max(voice_delay):.0f} ms "
              f"after it was sent; after the take-back the next utterance's translation began "
              f"{back[0] - third.ended:.2f} s after it ended, after the interpreter dropped "
              f"{dropped[0] - fourth.ended:.2f} s (standby: {machine(de, first.started)[0] - first.ended:.2f} s)")


class LongTone:
    """Test double: every translation a 440 Hz tone of 6 s, long enough to be playing at the hand-over."""

    name = "long-tone"
    rate = 16000

    async def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        t = np.arange(6 * self.rate) / self.rate
        return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), self.rate


async def test_a_translation_playing_at_the_hand_over_stops_and_stays_in_the_transcript(
        settings: Settings, speech) -> None:
    said, rate = speech
    said = said[: int(rate * 2.5)]
    settings.menu.room_codes = True
    settings.numbers = {EN: "en-GB", DE: "de-DE"}
    async with background_server(settings, double_engines(LongTone())) as (url, server), \
            FakeVonage(url) as vonage, httpx.AsyncClient(base_url=url, headers=OPERATOR) as http:
        en = await vonage.dial(EN, keys=["4711#"])
        de = await vonage.dial(DE, keys=["4711#"])
        room = next(r for r in (await http.get("/console/api/live")).json()["rooms"] if r["code"] == "4711")
        invitation = (await http.post(f"/console/api/rooms/{room['id']}/interpreters", json={})).json()
        interpreter = await vonage.dial(INTERPRETER, keys=[invitation["keys"]])
        await quiet(en, de, interpreter)  # "someone has joined"
        from_en = set(loud(frames_of(said, rate, en)))

        turn = await en.say(said, rate)
        async with asyncio.timeout(20):  # the machine's translation has begun playing to the German caller
            while not [f for _, f in heard(de, turn.started) if f not in from_en]:
                await asyncio.sleep(0.02)
        reply = await http.post(f"/console/api/legs/{interpreter.leg}/hand-over")
        assert reply.status_code == 200, reply.text
        handed = time.monotonic()
        await quiet(en, de, interpreter)
        machine = [at for at, f in heard(de, turn.started) if f not in from_en]
        # without the hand-over clearing it, the 6 s tone plays on to its end; with it, what was already
        # handed to the far end (the playback lead, 1 s at most) is all that is heard after the hand-over
        assert machine[-1] - handed < 1.5, f"the machine spoke {machine[-1] - handed:.1f} s into the hand-over"
        assert machine[-1] - machine[0] < 5

        await server.store.flush()
        call = (await http.get(f"/console/api/calls/{room['id']}")).json()
        (utterance,) = [u for u in call["utterances"] if u["leg_id"] == en.leg]
        assert utterance["translations"]["de-DE"] and "handed over to the interpreter" in utterance["error"]
        assert [e["kind"] for e in call["events"]][:2] == ["interpreter_joined", "handed_over"]
        print(f"\nhand-over while a 6 s translation played: the machine last heard {machine[-1] - handed:.2f} s "
              f"after the hand-over ({machine[-1] - machine[0]:.2f} s of it heard in all)")
