"""One call as the fake Vonage places it: the caller's audio streamed as binary 20 ms L16 frames at real-time
pace (silence between turns, as a phone line does), and audio coming back played through a model of Vonage's
playback buffer: frames play one after another at 20 ms each, ``{"action": "clear"}`` drops what has not
played yet (answered with ``websocket:cleared``), ``notify`` is answered once the audio before it has played,
and a frame of the wrong size is logged as "unexpected frame size" and the socket dropped (close 1006).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid as uuidlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from babelfish.core import audio
from babelfish.devtools.playout import Played, Playout
from babelfish.telephony import wire

if TYPE_CHECKING:
    from babelfish.devtools.fake_vonage import FakeVonage

log = logging.getLogger(__name__)

CATCH_UP_S = 1.0  # a sender further behind than this skips ahead rather than bursting it all


ANSWER_RETRIES = 2


class SimulationError(RuntimeError):
    pass


@dataclass
class Turn:
    """A stretch of speech sent into a call: when its first and last frames went out (monotonic)."""

    samples: np.ndarray
    started: float = 0.0
    ended: float = 0.0
    sent: asyncio.Event = field(default_factory=asyncio.Event)


class FakeCall:
    """One phone call, from Vonage's side: inbound (a caller dialled our number) or outbound (placed by the
    server through ``POST /v1/calls``; then ``caller`` is our number and ``number`` the one we rang).

    ``keys`` are the digits the caller will press at each ``input`` action of the NCCO, in order (one string
    per prompt; ``None`` lets the prompt time out)."""

    def __init__(self, vonage: FakeVonage, caller: str, number: str, *, direction: str = "inbound",
                 answer_url: str | None = None, event_url: str | None = None,
                 keys: list[str | None] | None = None, language: str | None = None) -> None:
        self.vonage = vonage
        self.language = language  # with no keys left, the caller picks this language from a menu it hears
        self.caller = caller
        self.number = number
        self.direction = direction
        self.answer_url = answer_url or f"{vonage.server}/answer"
        self.event_url = event_url or f"{vonage.server}/event"
        self.keys: list[str | None] = list(keys or [])
        self.uuid = uuidlib.uuid4().hex
        self.conversation_uuid = "CON-" + uuidlib.uuid4().hex
        self.ncco: list[dict[str, Any]] = []
        self.prompts: list[dict[str, Any]] = []  # every talk action of the NCCOs followed (text, language)
        self.talks: list[dict[str, Any]] = []  # text spoken into the call through the REST API
        self.talk_stops = 0
        self.transfers = 0  # REST transfers to a new NCCO that this call followed
        self.ended = False  # the NCCO ran out without a connect (e.g. a refusal), or the call was hung up
        self.rate = 16000
        self.headers: dict[str, str] = {}
        self.ws: ClientConnection | None = None
        self.playout = Playout()  # what the caller hears
        self.bad_frames = 0
        self.texts: list[dict[str, Any]] = []  # text messages the server sent
        self.dtmf_sent: list[str] = []
        self.turns: list[Turn] = []
        self.closed: tuple[int | None, str] | None = None
        self.started_at = 0.0
        self._outbox: deque[Turn] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        # a speakerphone: what the caller hears leaks back into what they send, attenuated and delayed
        self.echo_gain = 0.0
        self.echo_delay_ms = 120

    @property
    def connected(self) -> bool:
        return self.ws is not None and self.closed is None

    @property
    def leg(self) -> str:
        return self.uuid

    @property
    def pace(self) -> float:
        return self.playout.pace

    @property
    def played(self) -> list[Played]:
        """Everything that played (or is scheduled to play) to the caller."""
        return self.playout.played

    @property
    def received_frames(self) -> int:
        return self.playout.received_frames

    @property
    def cleared(self) -> int:
        return self.playout.cleared

    # -- webhooks ---------------------------------------------------------------------------------------

    async def answer(self) -> list[dict[str, Any]]:
        """Fetch the NCCO from the answer URL and follow it up to its ``connect`` (talk prompts are noted,
        ``input`` actions answered with the next of ``keys`` and their result posted to the input's
        ``eventUrl``, whose reply is the next NCCO). An NCCO that ends without ``connect`` ends the call."""
        params = {"to": self.number, "from": self.caller, "uuid": self.uuid,
                  "conversation_uuid": self.conversation_uuid, "region_url": "https://api-eu-1.vonage.com"}
        last: httpx.Response | None = None
        for attempt in range(1 + ANSWER_RETRIES):
            last = await self.vonage.http.get(self.answer_url, params=params,
                                              headers=self.vonage.signed(query=params))
            if last.status_code < 500:
                break
            log.warning("answer webhook returned %d (attempt %d)", last.status_code, attempt + 1)
            await asyncio.sleep(0.2 * (attempt + 1))
        assert last is not None
        if last.status_code != 200:
            raise SimulationError(f"answer webhook: HTTP {last.status_code} {last.text}")
        ncco = last.json()
        for _ in range(20):  # a menu of more than 20 steps is a server bug, not a caller's patience
            self.ncco = ncco
            self.prompts += [{"text": a.get("text", ""), "language": a.get("language")}
                             for a in ncco if a.get("action") == "talk"]
            if any(a.get("action") == "connect" for a in ncco):
                return ncco
            inputs = [a for a in ncco if a.get("action") == "input"]
            if not inputs:
                self.ended = True
                await self.event("completed", duration="0", rate="0.0", price="0", network="fake")
                return ncco
            if not self.keys and self.language:
                self.keys.append(self._choose(ncco))
            ncco = await self._input(inputs[0])
        raise SimulationError("the NCCO never reached a connect action")

    def _choose(self, ncco: list[dict[str, Any]]) -> str | None:
        """A caller who listens to a language menu presses the digit said in their own language."""
        want = (self.language or "").split("-")[0].lower()
        for action in ncco:
            spoken = str(action.get("language") or "").split("-")[0].lower()
            digit = re.search(r"\b(\d)\b", str(action.get("text", "")))
            if action.get("action") == "talk" and spoken == want and digit:
                return digit.group(1)
        return None

    async def _input(self, action: dict[str, Any]) -> list[dict[str, Any]]:
        """What Vonage does at an ``input`` action: collect the digits (or time out), post the result."""
        settings = action.get("dtmf") or {}
        digits = self.keys.pop(0) if self.keys else None
        if digits is not None:
            digits = digits[: int(settings.get("maxDigits", 4))]
            if settings.get("submitOnHash") and "#" in digits:
                digits = digits[: digits.index("#")]
        body = {"from": self.caller, "to": self.number, "uuid": self.uuid,
                "conversation_uuid": self.conversation_uuid, "timed_out": digits is None,
                "dtmf": {"digits": digits or "", "timed_out": digits is None},
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
        urls = action.get("eventUrl") or [self.event_url]
        reply = await self.vonage.send_json(action.get("eventMethod", "POST"), urls[0], body)
        if reply.status_code != 200:
            raise SimulationError(f"input webhook: HTTP {reply.status_code} {reply.text}")
        ncco = reply.json()
        if not isinstance(ncco, list):
            raise SimulationError(f"input webhook did not return an NCCO: {ncco!r}")
        return ncco

    async def event(self, status: str, **extra: Any) -> httpx.Response:
        body = {"from": self.caller, "to": self.number, "uuid": self.uuid,
                "conversation_uuid": self.conversation_uuid, "status": status, "direction": self.direction,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), **extra}
        return await self.vonage.post_json(self.event_url, body)

    # -- the websocket ----------------------------------------------------------------------------------

    def _endpoint(self) -> dict[str, Any]:
        for action in self.ncco:
            if action.get("action") == "connect":
                for endpoint in action.get("endpoint", []):
                    if endpoint.get("type") == "websocket":
                        return endpoint
        raise SimulationError(f"NCCO has no websocket connect action: {self.ncco}")

    async def connect(self, pace: float = 1.0) -> None:
        """Open the NCCO's websocket, say ``websocket:connected`` and start streaming (silence until a
        turn is queued). ``pace`` > 1 streams faster than real time."""
        endpoint = self._endpoint()
        content_type = endpoint.get("content-type", "audio/l16;rate=16000")
        self.rate = wire.content_rate(content_type, 16000)
        self.headers = {str(k): str(v) for k, v in (endpoint.get("headers") or {}).items()}
        self.playout.pace = pace
        headers: dict[str, str] = {}
        authorization = endpoint.get("authorization") or {}
        if authorization.get("type") == "vonage":
            headers = self.vonage.signed()
        elif authorization.get("type") == "custom" and authorization.get("value"):
            headers = {"Authorization": str(authorization["value"])}
        self.ws = await connect(endpoint["uri"], max_size=2**20, open_timeout=10, additional_headers=headers,
                                **self.vonage.socket_options(endpoint["uri"]))
        await self.ws.send(wire.connected_message(content_type, self.headers))
        self.started_at = time.monotonic()
        self.playout.start(self.started_at)
        self._tasks = [asyncio.create_task(self._stream(), name=f"stream-{self.uuid[:6]}"),
                       asyncio.create_task(self._receive(), name=f"receive-{self.uuid[:6]}")]

    async def _stream(self) -> None:
        size = audio.frame_bytes(self.rate)
        silence = b"\x00" * size
        period = audio.FRAME_MS / 1000 / self.pace
        next_at = time.monotonic()
        turn: Turn | None = None
        pcm = b""
        pos = 0
        assert self.ws is not None
        try:
            while True:
                if turn is None and self._outbox:
                    turn = self._outbox.popleft()
                    pcm = audio.float_to_pcm(turn.samples)
                    pos = 0
                if turn is not None:
                    frame = pcm[pos : pos + size]
                    frame += b"\x00" * (size - len(frame))
                    if pos == 0:
                        turn.started = time.monotonic()
                    pos += size
                    if pos >= len(pcm):
                        turn.ended = time.monotonic() + period
                        turn.sent.set()
                        turn = None
                else:
                    frame = silence
                if self.echo_gain:
                    frame = self._with_echo(frame, next_at)
                await self.ws.send(frame)
                next_at += period
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -CATCH_UP_S:
                    next_at = time.monotonic()  # that much was lost on the way: go on from now
                else:
                    # We fell behind (a busy machine): the microphone kept recording, so its frames go out late,
                    # at once, as a network delivers delayed packets. Pausing instead would stop the caller's
                    # sample clock while the speakerphone's echo (mixed in by wall time) went on.
                    await asyncio.sleep(0)
        except ConnectionClosed:
            pass
        finally:
            if turn is not None and not turn.sent.is_set():  # the line dropped mid-turn: the rest is lost
                turn.ended = time.monotonic()
                turn.sent.set()

    def _with_echo(self, frame: bytes, at: float) -> bytes:
        """Mix in what played ``echo_delay_ms`` before ``at`` (speakerphone loopback)."""
        echo = self.playout.echo(len(frame) // 2, at, self.echo_delay_ms / 1000)
        if not echo.any():
            return frame
        return audio.float_to_pcm(audio.pcm_to_float(frame) + self.echo_gain * echo)

    async def _receive(self) -> None:
        assert self.ws is not None
        expected = audio.frame_bytes(self.rate)
        try:
            async for message in self.ws:
                if isinstance(message, bytes):
                    if len(message) != expected:
                        self.bad_frames += 1
                        log.error("unexpected frame size %d (expected %d): dropping the socket", len(message),
                                  expected)
                        self.closed = (1006, f"unexpected frame size {len(message)}")
                        self.ws.transport.abort()  # as Vonage does: close 1006, no closing handshake
                        return
                    self.playout.play(message, time.monotonic())
                else:
                    await self._command(message)
                self._flush_notifies()
        except ConnectionClosed:
            pass
        finally:
            if self.ws is not None and self.closed is None:
                self.closed = (self.ws.close_code, self.ws.close_reason or "")

    async def _command(self, text: str) -> None:
        try:
            command = json.loads(text)
        except json.JSONDecodeError:
            log.warning("server sent non-JSON text: %r", text[:80])
            return
        self.texts.append(command)
        assert self.ws is not None
        if command.get("action") == "clear":
            self.playout.clear(time.monotonic())
            await self.ws.send(json.dumps({"event": wire.CLEARED}))
        elif command.get("action") == "notify":
            self.playout.notify(command.get("payload", {}))

    def _flush_notifies(self) -> None:
        for payload in self.playout.due_notifies(time.monotonic()):
            if self.ws is not None:
                asyncio.create_task(self.ws.send(json.dumps({"event": wire.NOTIFY, "payload": payload})))

    # -- what the caller does ---------------------------------------------------------------------------

    async def say(self, samples: np.ndarray, rate: int) -> Turn:
        """Speak ``samples`` into the call (after what is already queued); returns when it has been sent."""
        turn = Turn(audio.resample(samples, rate, self.rate))
        self.turns.append(turn)
        self._outbox.append(turn)
        await turn.sent.wait()
        return turn

    async def press(self, digits: str, duration_ms: int = 260) -> None:
        assert self.ws is not None
        for digit in digits:
            self.dtmf_sent.append(digit)
            await self.ws.send(json.dumps({"event": wire.DTMF, "digit": digit, "duration": duration_ms}))

    async def send_raw(self, message: bytes | str) -> None:
        """Send anything at all (for tests of bad input)."""
        assert self.ws is not None
        await self.ws.send(message)

    async def wait_heard(self, after: float, quiet_s: float = 1.5, timeout: float = 30.0) -> bool:
        """Wait until audio that arrived after ``after`` has finished playing and ``quiet_s`` passed with
        nothing new. False on timeout or if nothing came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = time.monotonic()
            recent = [p.at for p in self.played if p.at >= after]
            if recent and now - max(recent) > quiet_s:
                return True
            if not self.connected:
                return bool(recent)
            await asyncio.sleep(0.05)
        return False

    def first_heard_after(self, t: float) -> float | None:
        """Arrival time of the first frame played at or after ``t``."""
        return self.playout.first_after(t)

    def heard(self) -> np.ndarray:
        """What the caller heard, on the call's timeline (silence where nothing played)."""
        return self.playout.heard(self.started_at, self.rate)

    async def transfer(self, ncco: list[dict[str, Any]]) -> None:
        """What Vonage does on a REST ``transfer``: the call leaves its current action (a socket that is
        still open is closed) and runs ``ncco``; with a ``connect`` the new websocket is opened and the
        caller's queued speech goes on there."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ws is not None and self.closed is None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        self.transfers += 1
        self.ncco = ncco
        self.prompts += [{"text": a.get("text", ""), "language": a.get("language")}
                         for a in ncco if a.get("action") == "talk"]
        self.ws, self.closed = None, None
        started = self.started_at
        await self.connect(pace=self.pace)
        self.started_at = started or self.started_at  # one timeline for what the caller heard

    async def hang_up(self) -> None:
        """The caller hangs up: the socket closes and Vonage reports ``completed``."""
        duration = int(time.monotonic() - self.started_at) if self.started_at else 0
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.closed is None:
            self.closed = (1000, "caller hung up")
        if self.ended:
            return
        self.ended = True
        await self.event("completed", duration=str(duration), start_time=None, end_time=None,
                         rate="0.0", price="0", network="fake")
