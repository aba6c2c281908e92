"""A faithful fake of Vonage's Voice API, to drive a babelfish server with no phone and no account.

It does what Vonage does for an inbound call, on the wire: calls the answer webhook (``GET /answer``
with ``to``, ``from``, ``uuid``, ``conversation_uuid``; retried on 5xx), posts call events to the event
webhook, opens the websocket named in the NCCO and sends ``websocket:connected`` with the NCCO's headers
flattened into it, then streams the caller's audio as binary 20 ms L16 frames at real-time pace (silence
between turns, as a phone line does). Audio coming back is played through a model of Vonage's playback
buffer: frames play one after another at 20 ms each, ``{"action": "clear"}`` drops what has not played
yet (answered with ``websocket:cleared``), ``notify`` is answered once the audio before it has played, and
a frame of the wrong size is logged as "unexpected frame size" and the socket dropped (close 1006).

Given the account's ``signature_secret`` it signs every webhook as Vonage does (``Authorization: Bearer``
JWT, HS256, with the ``payload_hash`` of the body or of the query), and, for a websocket endpoint with
``authorization: {"type": "vonage"}``, the websocket upgrade too.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import json
import logging
import os
import re
import time
import uuid as uuidlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from babelfish.core import audio
from babelfish.telephony import wire

log = logging.getLogger("babelfish.devtools.fake_vonage")

VONAGE_BUFFER_FRAMES = 3072  # about 60 s; Vonage drops audio beyond this
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


@dataclass
class Played:
    at: float  # monotonic time the frame starts playing to the caller
    frame: bytes


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
        self.played: list[Played] = []  # everything that played (or is scheduled to play) to the caller
        self._starts: list[float] = []  # their start times, for bisecting
        self.received_frames = 0
        self.bad_frames = 0
        self.cleared = 0
        self.texts: list[dict[str, Any]] = []  # text messages the server sent
        self.dtmf_sent: list[str] = []
        self.turns: list[Turn] = []
        self.closed: tuple[int | None, str] | None = None
        self.started_at = 0.0
        self._pending_notify: list[tuple[float, dict[str, Any]]] = []
        self._outbox: deque[Turn] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        self._play_clock = 0.0
        self.pace = 1.0
        # a speakerphone: what the caller hears leaks back into what they send, attenuated and delayed
        self.echo_gain = 0.0
        self.echo_delay_ms = 120

    @property
    def connected(self) -> bool:
        return self.ws is not None and self.closed is None

    @property
    def leg(self) -> str:
        return self.uuid

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
        self.pace = pace
        headers: dict[str, str] = {}
        authorization = endpoint.get("authorization") or {}
        if authorization.get("type") == "vonage":
            headers = self.vonage.signed()
        elif authorization.get("type") == "custom" and authorization.get("value"):
            headers = {"Authorization": str(authorization["value"])}
        self.ws = await connect(endpoint["uri"], max_size=2**20, open_timeout=10, additional_headers=headers)
        await self.ws.send(wire.connected_message(content_type, self.headers))
        self.started_at = time.monotonic()
        self._play_clock = self.started_at
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
                else:
                    next_at = time.monotonic()  # we fell behind; do not burst to catch up
        except ConnectionClosed:
            pass
        finally:
            if turn is not None and not turn.sent.is_set():  # the line dropped mid-turn: the rest is lost
                turn.ended = time.monotonic()
                turn.sent.set()

    def _with_echo(self, frame: bytes, at: float) -> bytes:
        """Mix in what played ``echo_delay_ms`` before ``at`` (speakerphone loopback), sample-accurately on
        the playback timeline, as a phone's microphone would pick it up."""
        n = len(frame) // 2
        step = audio.FRAME_MS / 1000 / self.pace
        t = at - self.echo_delay_ms / 1000 / self.pace
        lo = bisect.bisect_right(self._starts, t - step) - 1
        echo = np.zeros(n, dtype=np.float32)
        for p in self.played[max(lo, 0) :]:
            if p.at >= t + step:
                break
            offset = int(round((p.at - t) / step * n))
            samples = audio.pcm_to_float(p.frame)
            a, b = max(0, offset), min(n, offset + n)
            if b > a:
                echo[a:b] += samples[a - offset : b - offset]
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
                    self._play(message)
                else:
                    await self._command(message)
                self._flush_notifies()
        except ConnectionClosed:
            pass
        finally:
            if self.ws is not None and self.closed is None:
                self.closed = (self.ws.close_code, self.ws.close_reason or "")

    def _play(self, frame: bytes) -> None:
        now = time.monotonic()
        queued = sum(1 for p in self.played[-VONAGE_BUFFER_FRAMES - 1 :] if p.at > now)
        if queued >= VONAGE_BUFFER_FRAMES:
            log.warning("playback buffer full: frame dropped")
            return
        self.received_frames += 1
        start = max(now, self._play_clock)
        self._play_clock = start + audio.FRAME_MS / 1000 / self.pace
        self.played.append(Played(start, frame))
        self._starts.append(start)

    async def _command(self, text: str) -> None:
        try:
            command = json.loads(text)
        except json.JSONDecodeError:
            log.warning("server sent non-JSON text: %r", text[:80])
            return
        self.texts.append(command)
        assert self.ws is not None
        if command.get("action") == "clear":
            now = time.monotonic()
            self.played = [p for p in self.played if p.at <= now]
            self._starts = [p.at for p in self.played]
            self._play_clock = now
            self.cleared += 1
            await self.ws.send(json.dumps({"event": wire.CLEARED}))
        elif command.get("action") == "notify":
            self._pending_notify.append((self._play_clock, command.get("payload", {})))

    def _flush_notifies(self) -> None:
        now = time.monotonic()
        due = [n for n in self._pending_notify if n[0] <= now]
        self._pending_notify = [n for n in self._pending_notify if n[0] > now]
        for _, payload in due:
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
        for p in self.played:
            if p.at >= t:
                return p.at
        return None

    def heard(self) -> np.ndarray:
        """What the caller heard, on the call's timeline (silence where nothing played)."""
        if not self.played:
            return np.zeros(0, dtype=np.float32)
        per_frame = audio.frame_bytes(self.rate) // 2
        step = audio.FRAME_MS / 1000 / self.pace
        end = max(p.at for p in self.played) - self.started_at + step
        out = np.zeros(int(end / step + 1) * per_frame, dtype=np.float32)
        for p in self.played:
            i = int(round((p.at - self.started_at) / step)) * per_frame
            out[i : i + per_frame] = audio.pcm_to_float(p.frame)[: out.size - i]
        return out

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


class FakeVonage:
    """Vonage's side of many calls to one babelfish server (``server`` is its base URL; ``dial(server=...)``
    sends a call's webhooks to another, as a load balancer in front of several servers would).

    ``start_api()`` also serves a fake of the Voice REST API the server calls (``POST /v1/calls``,
    ``PUT /v1/calls/{uuid}`` with ``hangup`` or ``transfer`` to an inline NCCO, which the call follows as
    Vonage does, ``PUT|DELETE /v1/calls/{uuid}/talk``). Each request must carry an application JWT that
    verifies with ``public_key`` and names ``application_id``, as Vonage requires; every request is kept
    in ``api_requests``. An outbound call is rung, answered through the ``answer_url`` it names and
    connected like an inbound one; the test picks it up with ``next_outbound()``.
    """

    def __init__(self, server: str, number: str = "447700900000", *, application_id: str | None = None,
                 public_key: str | None = None, signature_secret: str | None = None,
                 api_key: str = "fakekey1") -> None:
        self.server = server.rstrip("/")
        self.signature_secret = signature_secret
        self.api_key = api_key
        self.number = number
        # idle connections are dropped before uvicorn's 5 s keep-alive ends them: with equal timeouts a
        # webhook could go out on a connection the server is closing at that moment (httpx.ReadError)
        self.http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(keepalive_expiry=2.0))
        self.calls: list[FakeCall] = []
        self.application_id = application_id
        self.public_key = public_key
        self.api_requests: list[ApiRequest] = []
        self.unreachable: set[str] = set()  # numbers that do not answer an outbound call
        self.outbound_keys: dict[str, list[str | None]] = {}  # digits an invitee presses, by number
        self._outbound: asyncio.Queue[FakeCall] = asyncio.Queue()
        self._api: Any = None
        self._api_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> FakeVonage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for call in self.calls:
            if call.connected:
                with contextlib.suppress(Exception):
                    await call.hang_up()
        if self._api is not None:
            self._api.should_exit = True
            if self._api_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._api_task, 10)
        await self.http.aclose()

    async def dial(self, caller: str, *, connect: bool = True, pace: float = 1.0,
                   keys: list[str | None] | None = None, language: str | None = None,
                   server: str | None = None) -> FakeCall:
        """An inbound call from ``caller``: answer webhook (and any menu, answered with ``keys``, or by
        picking ``language`` from what the menu says), events, websocket. ``server``: the base URL whose
        webhooks this call uses, when not ours (as a load balancer picks one of several servers)."""
        base = server.rstrip("/") if server else None
        call = FakeCall(self, caller, self.number, keys=keys, language=language,
                        answer_url=f"{base}/answer" if base else None, event_url=f"{base}/event" if base else None)
        self.calls.append(call)
        await call.event("started")
        await call.event("ringing")
        await call.answer()
        if call.ended:
            return call
        await call.event("answered")
        if connect:
            await call.connect(pace=pace)
        return call

    def signed(self, *, query: dict[str, str] | None = None, body: bytes | None = None) -> dict[str, str]:
        """The ``Authorization`` header Vonage adds to a request when signed webhooks are on (none when
        this fake has no signature secret): a JWT with the SHA-256 of the body, or of the query parameters
        as compact JSON in the order sent."""
        if self.signature_secret is None:
            return {}
        import jwt

        claims: dict[str, Any] = {"iat": int(time.time()), "jti": str(uuidlib.uuid4()), "iss": "Vonage",
                                  "api_key": self.api_key, "application_id": self.application_id or "fake-app"}
        if body is not None:
            claims["payload_hash"] = hashlib.sha256(body).hexdigest()
        elif query is not None:
            claims["payload_hash"] = hashlib.sha256(json.dumps(query, separators=(",", ":")).encode()).hexdigest()
        return {"Authorization": "Bearer " + jwt.encode(claims, self.signature_secret, algorithm="HS256")}

    async def post_json(self, url: str, body: Any) -> httpx.Response:
        return await self.send_json("POST", url, body)

    async def send_json(self, method: str, url: str, body: Any) -> httpx.Response:
        """Send ``body`` as JSON, signed over the exact bytes sent."""
        content = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **self.signed(body=content)}
        return await self.http.request(method, url, content=content, headers=headers)

    def find(self, uuid: str) -> FakeCall | None:
        return next((c for c in self.calls if c.uuid == uuid), None)

    async def next_outbound(self, timeout: float = 10.0) -> FakeCall:
        """The next call the server placed through ``POST /v1/calls`` (answered and connected)."""
        return await asyncio.wait_for(self._outbound.get(), timeout)

    # -- the fake REST API ------------------------------------------------------------------------------

    async def start_api(self) -> str:
        """Serve the fake Voice REST API on a free loopback port; returns its base URL."""
        import socket

        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        app = Starlette(routes=[
            Route("/v1/calls", self._api_create_call, methods=["POST"]),
            Route("/v1/calls/{uuid}", self._api_modify_call, methods=["PUT"]),
            Route("/v1/calls/{uuid}/talk", self._api_talk, methods=["PUT", "DELETE"]),
        ])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._api = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._api_task = asyncio.create_task(self._api.serve(sockets=[sock]))
        while not self._api.started:
            if self._api_task.done():
                self._api_task.result()
            await asyncio.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    def _authorize(self, request: Any) -> dict[str, Any]:
        """Vonage's check of the application JWT: RS256, signed by the application's key, not expired."""
        import jwt

        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise _ApiRefusal(401, "Unauthorized", "missing Bearer token")
        if self.public_key is None:
            raise _ApiRefusal(401, "Unauthorized", "fake has no public key to verify with")
        try:
            claims = jwt.decode(header[7:], self.public_key, algorithms=["RS256"])
        except jwt.PyJWTError as exc:
            raise _ApiRefusal(401, "Unauthorized", f"invalid JWT: {exc}") from None
        if self.application_id is not None and claims.get("application_id") != self.application_id:
            raise _ApiRefusal(401, "Unauthorized", "JWT names another application")
        return claims

    async def _api_call(self, request: Any, handler: Any) -> Any:
        from starlette.responses import JSONResponse

        try:
            claims = self._authorize(request)
            body = await request.json() if await request.body() else None
            self.api_requests.append(ApiRequest(request.method, request.url.path, body, claims))
            status, reply = await handler(request, body)
        except _ApiRefusal as exc:
            self.api_requests.append(ApiRequest(request.method, request.url.path, None, {}, exc.status))
            return JSONResponse({"type": "https://developer.nexmo.com/api-errors", "title": exc.title,
                                 "detail": exc.detail}, status_code=exc.status)
        except json.JSONDecodeError:
            return JSONResponse({"title": "Bad Request", "detail": "body is not JSON"}, status_code=400)
        if status == 204:
            from starlette.responses import Response

            return Response(status_code=204)
        return JSONResponse(reply, status_code=status)

    async def _api_create_call(self, request: Any) -> Any:
        async def create(request: Any, body: Any) -> tuple[int, dict[str, Any]]:
            from pydantic import ValidationError
            from vonage_voice.models import CreateCallRequest

            data = dict(body or {})
            if "from" in data:  # the wire name; the SDK model calls the field from_
                data["from_"] = data.pop("from")
            try:
                order = CreateCallRequest.model_validate(data)
            except (ValidationError, ValueError) as exc:
                raise _ApiRefusal(400, "Bad Request", str(exc)) from None
            if not order.answer_url:
                raise _ApiRefusal(400, "Bad Request", "this fake supports answer_url only")
            target = order.to[0].number
            origin = order.from_.number if hasattr(order.from_, "number") else str(order.from_)
            call = FakeCall(self, origin, target, direction="outbound", answer_url=order.answer_url[0],
                            event_url=(order.event_url or [f"{self.server}/event"])[0],
                            keys=self.outbound_keys.get(target))
            self.calls.append(call)
            self._spawn(self._ring(call))
            return 201, {"uuid": call.uuid, "status": "started", "direction": "outbound",
                         "conversation_uuid": call.conversation_uuid}

        return await self._api_call(request, create)

    async def _ring(self, call: FakeCall) -> None:
        await call.event("started")
        await call.event("ringing")
        if call.number in self.unreachable:
            call.ended = True
            await call.event("unanswered")
            return
        await call.answer()
        if call.ended:
            return
        await call.event("answered")
        await call.connect()
        self._outbound.put_nowait(call)

    async def _api_modify_call(self, request: Any) -> Any:
        async def modify(request: Any, body: Any) -> tuple[int, dict[str, Any]]:
            call = self.find(request.path_params["uuid"])
            if call is None:
                raise _ApiRefusal(404, "Not Found", "no such call")
            action = (body or {}).get("action")
            if action == "transfer":
                destination = (body or {}).get("destination") or {}
                ncco = destination.get("ncco")
                if destination.get("type") != "ncco" or not isinstance(ncco, list):
                    raise _ApiRefusal(400, "Bad Request", "this fake transfers to an inline NCCO only")
                if call.ended:
                    raise _ApiRefusal(400, "Bad Request", "call is not in progress")
                self._spawn(call.transfer(ncco))
                return 204, {}
            if action != "hangup":
                raise _ApiRefusal(400, "Bad Request", f"this fake supports hangup and transfer, not {action!r}")
            self._spawn(call.hang_up())
            return 204, {}

        return await self._api_call(request, modify)

    async def _api_talk(self, request: Any) -> Any:
        async def talk(request: Any, body: Any) -> tuple[int, dict[str, Any]]:
            call = self.find(request.path_params["uuid"])
            if call is None or call.ended:
                raise _ApiRefusal(404, "Not Found", "no such call in progress")
            if request.method == "DELETE":
                call.talk_stops += 1
                return 200, {"message": "Talk stopped", "uuid": call.uuid}
            from pydantic import ValidationError
            from vonage_voice.models import TtsStreamOptions

            try:
                options = TtsStreamOptions.model_validate(body)
            except ValidationError as exc:
                raise _ApiRefusal(400, "Bad Request", str(exc)) from None
            call.talks.append(options.model_dump(exclude_none=True, mode="json") | {"at": time.monotonic()})
            return 200, {"message": "Talk started", "uuid": call.uuid}

        return await self._api_call(request, talk)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)

        def done(task: asyncio.Task[Any]) -> None:
            self._background.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.error("fake Vonage: %s", task.exception())

        task.add_done_callback(done)


@dataclass
class ApiRequest:
    method: str
    path: str
    body: Any
    claims: dict[str, Any]
    status: int = 200


class _ApiRefusal(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class CaptionFeed:
    """Listens to the server's ``/captions`` websocket, keeping every event (for transcript.json)."""

    def __init__(self, server: str, printer: Any = None, token: str | None = None) -> None:
        """``token``: the server's operator token (default: ``BABELFISH_SECURITY__OPERATOR_TOKEN``)."""
        token = token or os.environ.get("BABELFISH_SECURITY__OPERATOR_TOKEN", "")
        self.url = server.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + "/captions"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.events: list[dict[str, Any]] = []
        self.printer = printer
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({ready, self._task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if not self._ready.is_set():
            ready.cancel()
            if self._task.done():
                self._task.result()  # the refusal (no or wrong operator token)
            raise TimeoutError(f"no caption feed from {self.url}")

    async def _run(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async with connect(self.url, additional_headers=self.headers) as ws:
                self._ready.set()
                async for message in ws:
                    event = json.loads(message)
                    self.events.append(event)
                    if self.printer is not None:
                        self.printer(event)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def utterances(self) -> list[dict[str, Any]]:
        return [e["record"] for e in self.events if e.get("type") == "utterance"]

    async def wait_utterances(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.utterances()) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.utterances()
