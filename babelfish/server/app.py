"""The web app Vonage talks to: /answer and /input (NCCOs), /event (call state), /socket (audio), plus
/health, /metrics, /rooms, /captions and the transcript API.

Nobody gets in who does not belong: webhooks must be signed by Vonage (when a signature secret is set) and
come at a bounded rate per address; a socket must prove, with the single-use token of its NCCO or Vonage's
own JWT, that it is for a leg this server answered. Under load and faults the server sheds work, never
memory: a bounded number of legs and call length, bounded queues, engine timeouts. On shutdown it drains:
no new calls, a spoken notice to the callers, in-flight utterances finished, then the legs ended and the
transcripts written.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from babelfish.config import logs
from babelfish.config.settings import Settings
from babelfish.core import languages
from babelfish.core.audio import Reframer
from babelfish.core.privacy import mask_number
from babelfish.core.rooms import Leg, Observer, Room, Switchboard
from babelfish.core.utterance import CaptionHub, Utterance
from babelfish.directory.cluster import Cluster, LegRecord
from babelfish.engines.registry import load_engines
from babelfish.pipeline.playback import Playback
from babelfish.pipeline.stream import Engines, LegSession
from babelfish.server import console, transcripts
from babelfish.server import phone as web
from babelfish.server.http import error_response, read_json, subscribe
from babelfish.server.limits import AudioPace, BodyLimit, RateLimiter, TooFast
from babelfish.server.metrics import CONTENT_TYPE, Metrics
from babelfish.server.operator import OperatorGuard, origin_allowed, refusal_reason
from babelfish.server.phonelinks import BROWSER_CALLER
from babelfish.server.reception import Reception
from babelfish.telephony import signature, vonage, wire
from babelfish.telephony.rest import ConfigError, VonageApiError, VonageRest
from babelfish.telephony.tokens import ReplayGuard, SocketTokens, TokenError
from babelfish.transcripts.store import AsyncStore, TranscriptStore

log = logging.getLogger("babelfish")
_malformed = logs.Summarized(log)  # malformed webhooks: a summary line per burst

HANDSHAKE_TIMEOUT_S = 10.0
RETENTION_EVERY_S = 3600.0
WATCH_EVERY_S = 1.0  # how often legs are checked against the call-length and connect-within limits
NOTICE_WAIT_S = 15.0  # longest wait for a closing notice (time limit) to play before the leg ends

Handler = Callable[[Request], Awaitable[Response]]


class TranscriptRecorder(Observer):
    """Writes the switchboard's changes (calls opened and closed, legs joining and leaving) to the store."""

    def __init__(self, store: AsyncStore) -> None:
        self.store = store

    def room_opened(self, room: Room) -> None:
        self.store.write(self.store.store.call_started, room.id, room.code or "", room.created)

    def room_closed(self, room: Room) -> None:
        self.store.write(self.store.store.call_ended, room.id, time.time())

    def leg_joined(self, leg: Leg, room: Room) -> None:
        self.store.write(self.store.store.leg_joined, room.id, leg.id, leg.caller, leg.language, leg.direction,
                         time.time())

    def leg_left(self, leg: Leg, room: Room) -> None:
        self.store.write(self.store.store.leg_left, room.id, leg.id, time.time())


class Server:
    """The state of one babelfish process: settings, shared engines, the switchboard and the caption feed."""

    def __init__(self, settings: Settings, engines: Engines | None = None) -> None:
        self.settings = settings
        self.engines = engines
        self.rest = _rest_client(settings)
        self.store = AsyncStore(TranscriptStore(settings.database_url,
                                                mask_numbers=settings.transcripts.mask_numbers))
        self.switchboard = Switchboard(settings.numbers, settings.default_languages,
                                       conference_size=settings.rooms.conference_size,
                                       observer=TranscriptRecorder(self.store))
        self.cluster = Cluster(settings) if settings.cluster.redis_url else None
        if self.cluster is not None:
            self.cluster.load = lambda: (len(self.switchboard.legs), len(self.switchboard.rooms))
            self.cluster.on_take_over = self._take_over
        self.reception = Reception(self)
        self.hub = CaptionHub()
        self.started = time.time()
        security = settings.security
        secret = security.signature_secret.get_secret_value() if security.signature_secret else None
        self.verifier = (signature.WebhookVerifier(secret, security.signature_max_age_s,
                                                   settings.vonage.application_id) if secret else None)
        token_key = security.socket_token_secret.get_secret_value().encode() if security.socket_token_secret else None
        self.tokens = SocketTokens(token_key, security.socket_token_ttl_s)
        self.socket_jwts = ReplayGuard()  # jti of Vonage JWTs that opened a socket
        self.rate_limiter = RateLimiter(settings.limits.webhook_rate, settings.limits.webhook_burst)
        self.operator = OperatorGuard(security.operator_token, settings.public_url)
        self._rejections = logs.Summarized(log)  # a flood of rejected webhooks is a line per 10 s, not one each
        self.metrics = Metrics(
            legs=lambda: len(self.switchboard.legs),
            connected=lambda: sum(1 for leg in self.switchboard.legs.values() if leg.session is not None),
            rooms=lambda: len(self.switchboard.rooms),
            dropped=self.dropped,
        )
        self.hub.listen(self.metrics.observe_event)
        self.draining = False
        # Awaited, in order, once the legs have ended on shutdown: where the transcript store is flushed.
        self.on_drain: list[Callable[[], Awaitable[None]]] = [self.store.flush]
        self._drain_task: asyncio.Task[None] | None = None
        self._ending_all = False  # the drain's last step: every leg left is being ended
        self._sockets: dict[str, WebSocket] = {}  # leg id -> its open audio socket
        self._dropped_ended: collections.Counter[str] = collections.Counter()
        self._timing_out: set[str] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the watchdog (call-length limit, legs that never connect). Needs a running loop."""
        if self.verifier is None:
            log.warning("!" * 100)
            log.warning("SIGNED WEBHOOKS ARE OFF: anyone who finds this server can place calls through /answer "
                        "and /event. Set BABELFISH_SECURITY__SIGNATURE_SECRET to the Vonage signature secret.")
            log.warning("!" * 100)
            if self.settings.security.vonage_socket_auth:
                log.warning("security.vonage_socket_auth needs security.signature_secret: sockets are admitted "
                            "by their NCCO token only")
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch(), name="leg-watchdog")

    async def stop(self) -> None:
        tasks = [t for t in (self._watchdog, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watchdog = None

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Shut down gently (SIGTERM): take no new calls, tell the callers, let in-flight utterances finish,
        end the legs, then run the ``on_drain`` hooks. Safe to call more than once."""
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(self._drain(), name="drain")
        await asyncio.shield(self._drain_task)

    async def _drain(self) -> None:
        self.draining = True
        limit = self.settings.limits.drain_s
        deadline = time.monotonic() + limit
        if self.cluster is not None:
            # Several servers: new rooms open elsewhere from now on; the conversations here are let finish
            # (none is moved), and only what is left at the deadline hears the notice and ends.
            try:
                await self.cluster.set_draining()
            except Exception:  # noqa: BLE001 - Redis down: the heartbeat's expiry says it for us
                log.exception("could not mark this server draining in Redis")
            log.warning("draining: no new rooms here; waiting up to %g s for %d rooms to finish", limit,
                        len(self.switchboard.rooms))
            await _until(lambda: all(len(room.legs) < 2 for room in self.switchboard.rooms.values()),
                         deadline - time.monotonic())
        self._ending_all = True
        legs = list(self.switchboard.legs.values())
        sessions = [leg.session for leg in legs if leg.session is not None]
        log.log(logging.WARNING if legs else logging.INFO,
                "draining: taking no new calls; ending %d legs (%d connected) within %g s", len(legs),
                len(sessions), limit)
        for session in sessions:
            text, lang = languages.prompt("restarting", session.leg.language)
            session.say(text, lang, label="notice: restarting")
        await asyncio.gather(*(s.stop_listening() for s in sessions), return_exceptions=True)
        await _until(lambda: all(s.idle for s in sessions), deadline - time.monotonic())
        unfinished = [s.leg.id for s in sessions if not s.idle]
        if unfinished:
            log.warning("drain time up: %d legs still busy", len(unfinished))
        await asyncio.gather(*(self.end_leg(leg, reason="server restarting", close_code=wire.CLOSE_GOING_AWAY,
                                            wait_s=max(0.5, deadline - time.monotonic()), hang_up=True)
                               for leg in legs),
                             return_exceptions=True)
        for hook in self.on_drain:
            try:
                await hook()
            except Exception:
                log.exception("drain hook %r failed", hook)
        log.log(logging.WARNING if legs else logging.INFO, "drained: %d legs ended", len(legs))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            try:
                self._check_legs(time.time())
            except Exception:
                log.exception("leg watchdog failed")

    def _check_legs(self, now: float) -> None:
        limits = self.settings.limits
        for leg in list(self.switchboard.legs.values()):
            age = now - leg.created
            if leg.session is None and leg.id not in self._sockets and age > limits.connect_within_s:
                log.info("leg %s: websocket never opened (%.0f s after the answer): ended", leg.id, age)
                self._spawn(self.end_leg(leg, reason="websocket never opened", hang_up=True))
            elif leg.session is not None and age > limits.max_call_s and leg.id not in self._timing_out:
                self._timing_out.add(leg.id)
                self._spawn(self._time_limit(leg))
            elif (leg.caller == BROWSER_CALLER and leg.session is not None and leg.id not in self._timing_out
                  and time.monotonic() - leg.session.last_voice > self.settings.phone.idle_s):
                log.info("leg %s: browser leg sent no voice for %g s: ended", leg.id, self.settings.phone.idle_s)
                self._spawn(self.end_leg(leg, reason="browser leg idle"))

    async def _time_limit(self, leg: Leg) -> None:
        """The call reached ``limits.max_call_s``: say so, let the notice play, end the leg."""
        try:
            session = leg.session
            log.info("leg %s: call time limit (%g s) reached", leg.id, self.settings.limits.max_call_s)
            self.metrics.error("call_time_limit")
            if session is not None:
                text, lang = languages.prompt("time_limit", leg.language)
                session.say(text, lang, label="notice: time limit")
                await session.stop_listening()
                await _until(lambda: session.idle, NOTICE_WAIT_S)
            await self.end_leg(leg, reason="call time limit reached", hang_up=True)
        finally:
            self._timing_out.discard(leg.id)

    def dropped(self) -> dict[str, int]:
        """Work shed since the start, by what: ended legs' counts plus the live ones'."""
        totals = collections.Counter(self._dropped_ended)
        for leg in self.switchboard.legs.values():
            if leg.session is not None:
                totals.update(leg.session.dropped)
        totals["captions"] = self.hub.dropped
        return dict(totals)

    @property
    def at_capacity(self) -> bool:
        return len(self.switchboard.legs) >= self.settings.limits.max_legs

    @property
    def own_url(self) -> str:
        """This server's own public URL (cluster mode; the request's host otherwise, see base_url)."""
        return (self.settings.public_url or "").rstrip("/")

    def base_url(self, request: Request) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        proto = request.headers.get("x-forwarded-proto", request.url.scheme)
        host = request.headers.get("x-forwarded-host", request.headers.get("host", request.url.netloc))
        return f"{proto}://{host}"

    # -- webhooks ---------------------------------------------------------------------------------------

    def webhook(self, handler: Handler, route: str) -> Handler:
        """Guard a Vonage webhook handler (answer, event, menu input) at ``route``: a rate limit per client
        address (429), then Vonage's signature (401)."""
        return self.rate_limited(signature.signed(lambda: self.verifier, self._rejected)(handler), route)

    def rate_limited(self, handler: Handler, route: str) -> Handler:
        """Guard an endpoint anyone may call with the per-address rate limit (429 with a JSON error). The
        client address is the peer's, or, behind ``deployment.trusted_proxies``, the one they forwarded
        (uvicorn resolves it). ``route``: the path template the metrics count it under (one series per
        route, never per raw path)."""

        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            client = request.client.host if request.client else "unknown"
            if self.rate_limiter.allow(client):
                response = await handler(request)
            else:
                self.metrics.error("webhook_rate_limited")
                if self.rate_limiter.refused % 100 == 1:
                    log.warning("webhook rate limit: refusing %s (%d refused so far)", client,
                                self.rate_limiter.refused)
                retry = max(1, math.ceil(self.rate_limiter.retry_after(client)))
                response = JSONResponse({"error": "too many requests"}, status_code=429,
                                        headers={"Retry-After": str(retry)})
            self.metrics.webhooks.labels(route, str(response.status_code)).inc()
            return response

        return guarded

    def _rejected(self, request: Request, reason: str) -> None:
        self.metrics.error("webhook_rejected")
        client = request.client.host if request.client else "?"
        self._rejections.warning("webhook %s %s from %s rejected: %s", request.method, request.url.path, client,
                                 reason)

    def refusal(self, key: str, caller: str, fallback: str | None = None) -> list[dict[str, Any]]:
        """An NCCO that says prompt ``key`` in the caller's language (from ``numbers``, else ``fallback``,
        else the first default language) and ends the call."""
        language = self.switchboard.mapped_language(caller) or fallback or self.settings.default_languages[0]
        text, lang = languages.prompt(key, language)
        return vonage.talk_ncco([(text, lang)])

    def connect_ncco(self, leg: Leg, base: str, greeting: str = "wait", caller_id: str = "", *,
                     socket_base: str | None = None) -> list[dict[str, Any]]:
        """The NCCO that greets ``leg`` (prompt ``greeting`` in its language) and connects it to its socket,
        with the socket's single-use token. Every NCCO that connects to ``/socket`` must come from here: a
        socket without a token is refused. ``socket_base``: the server hosting the leg's room, when it is
        not this one (cluster mode); the tokens' secret is shared, so that server admits the socket. In
        cluster mode the caller is held with a notice should the socket drop, while a survivor takes over."""
        greetings = [languages.prompt(greeting, leg.language)]
        if not self.language_decided(leg):  # languages.detect "auto": the caller has not said which yet
            said = dict.fromkeys(languages.prompt(greeting, tag) for tag in self.settings.menu.languages)
            greetings = list(said) or greetings  # (a language without the prompt would repeat the English)
        hold = None
        cluster = self.settings.cluster
        if self.cluster is not None and cluster.hold_s > 0:
            hold_text, hold_lang = languages.prompt("hold", leg.language)
            hold = (hold_text, hold_lang, max(1, round(cluster.hold_s / 3)))  # about 3 s per notice
        socket_uri = vonage.websocket_uri(socket_base or base, leg.id, token=self.tokens.issue(leg.id))
        if cluster.shared_url:  # call events may go to any server: through the load balancer
            base = cluster.shared_url.rstrip("/")
        return vonage.answer_ncco(
            greetings=greetings,
            socket_uri=socket_uri,
            sample_rate=self.settings.sample_rate,
            headers={"leg": leg.id, "lang": leg.language, "room": leg.room.id if leg.room else ""},
            caller_id=caller_id,
            event_url=f"{base}/event",
            vonage_auth=self.settings.security.vonage_socket_auth and self.verifier is not None,
            hold=hold,
        )

    async def answer(self, request: Request) -> JSONResponse:
        """Vonage asks what to do with a call: the reply is the first step of the call's opening (a refusal,
        the language menu, the room menu, or the connection to our websocket)."""
        call = await read_webhook(request, vonage.AnswerRequest, "answer", query=request.method == "GET")
        if isinstance(call, JSONResponse):
            return call
        logs.bind(leg=call.uuid)
        if self.draining and self.cluster is None:  # in a cluster the call is placed on another server
            log.info("answer while draining: call refused")
            return JSONResponse(self.refusal("restarting", call.from_))
        token = request.path_params.get("token")
        if call.uuid not in self.switchboard.legs and self.at_capacity:
            log.warning("all lines busy (%d legs): call refused", len(self.switchboard.legs))
            self.metrics.error("legs_full")
            person = call.to if token is not None else call.from_  # an invitation's callee is its "to"
            return JSONResponse(self.refusal("busy", person, fallback=await self.reception.refusal_language(person)))
        return JSONResponse(await self.reception.answer(call, self.base_url(request), token))

    async def input(self, request: Request) -> JSONResponse:
        """The digits a caller pressed at a menu (the NCCO ``input`` action's result); replies with the next
        step's NCCO."""
        result = await read_webhook(request, vonage.InputResult, "input")
        if isinstance(result, JSONResponse):
            return result
        logs.bind(leg=result.uuid)
        if self.draining and self.cluster is None:
            return JSONResponse(self.refusal("restarting", ""))
        ncco = await self.reception.input(result, self.base_url(request))
        if ncco is None:
            return error_response(404, "no menu is waiting for this call")
        return JSONResponse(ncco)

    async def event(self, request: Request) -> JSONResponse:
        event = await read_webhook(request, vonage.CallEvent, "event")
        if isinstance(event, JSONResponse):
            return event
        leg_id = event.leg_id
        logs.bind(leg=leg_id)
        if event.status not in vonage.KNOWN_STATUSES:
            log.info("unknown call status %r for %s (accepted)", event.status, leg_id)
        if leg_id is None:
            return JSONResponse({"ok": True})
        if event.status in vonage.ENDED_STATUSES and leg_id not in self.switchboard.legs:
            self.reception.call_ended(leg_id, event.status)  # ended in the menu, or an invitation unanswered
            if self.cluster is not None:  # a leg placed on another server (or never connected): off the directory
                await self._leave_directory(leg_id)
        leg = self.switchboard.legs.get(leg_id)
        if leg is not None:
            leg.status = event.status
            if event.status in vonage.ENDED_STATUSES:
                await self.end_leg(leg, reason=f"call {event.status}", call_ended=True)
        return JSONResponse({"ok": True})

    # -- the audio socket -------------------------------------------------------------------------------

    async def socket(self, ws: WebSocket) -> None:
        if not origin_allowed(ws, self.settings.public_url):  # a browser page of another site (Vonage sends none)
            log.warning("websocket from %s refused: cross-origin (%s)", ws.client.host if ws.client else "?",
                        ws.headers.get("origin", "")[:100])
            self.metrics.error("socket_refused")
            await ws.close(code=wire.CLOSE_POLICY, reason="cross-origin websocket refused")
            return
        await ws.accept()
        try:
            leg, rate = await self._handshake(ws)
        except _Refused as exc:
            client = ws.client.host if ws.client else "?"
            log.warning("websocket from %s refused: %s", client, exc.reason)
            self.metrics.error("socket_refused")
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.close(code=exc.code, reason=exc.reason[:120])
            return
        except WebSocketDisconnect:
            return
        logs.bind(leg=leg.id, room=leg.room.id if leg.room else None)
        self._sockets[leg.id] = ws
        try:  # from here on, whatever happens, the leg is ended and cleaned up
            session = self._open_session(leg, ws, rate)
            await self._receive(ws, leg, session, rate)
        except WebSocketDisconnect:
            pass
        except Exception:
            log.exception("leg %s: socket failed", leg.id)
        finally:
            if self._sockets.get(leg.id) is ws:
                del self._sockets[leg.id]
            await self.end_leg(leg, reason="socket closed")

    def _open_session(self, leg: Leg, ws: WebSocket, rate: int) -> LegSession:
        playback = Playback(ws.send_bytes, ws.send_text, rate, lead_s=self.settings.playback_lead_ms / 1000,
                            max_items=self.settings.turns.max_pending)
        assert self.engines is not None, "engines not loaded"
        session = LegSession(leg, self.engines, self.hub, self.settings, rate, playback,
                             on_record=self._keep_record, on_language=self._language_heard,
                             language_decided=self.language_decided(leg))
        session.on_queue_wait = self.metrics.queue_wait.observe
        leg.session = session
        session.start()
        self.reception.connected(leg)
        if leg.direction != "outbound":  # an invitee: the invitation flow tells the host, not a second notice
            self._announce(leg, "joined")
        log.info("leg %s connected (%d Hz)", leg.id, rate)
        self.hub.publish({"type": "leg", "event": "connected", "room": leg.room.id if leg.room else "",
                          "leg": leg.id, "language": leg.language})
        return session

    def _announce(self, leg: Leg, key: str) -> None:
        """Say prompt ``key`` (``joined``, ``left``) about ``leg`` to the other connected legs of its room,
        each in their own language."""
        for other in leg.others():
            if other.session is not None:
                text, lang = languages.prompt(key, other.language)
                other.session.say(text, lang, label=key)

    async def _receive(self, ws: WebSocket, leg: Leg, session: LegSession, rate: int) -> None:
        """The socket's messages until it closes: audio re-framed into 20 ms frames for the session (at no
        more than real time, see :class:`AudioPace`), text events to :meth:`_on_text`."""
        reframer = Reframer(rate)
        limit = self.settings.max_message_bytes
        limits = self.settings.limits
        pace = AudioPace(limits.audio_speed, limits.audio_ahead_s)
        bytes_per_s = 2 * rate
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                chunk = message["bytes"]
                if len(chunk) > limit:
                    await ws.close(code=wire.CLOSE_TOO_BIG, reason=f"message over {limit} bytes")
                    return
                try:
                    wait = pace.push(len(chunk) / bytes_per_s)
                except TooFast as exc:
                    log.warning("leg %s: closed, sending faster than real time (%s)", leg.id, exc)
                    self.metrics.error("audio_too_fast")
                    await ws.close(code=wire.CLOSE_POLICY, reason="audio faster than real time")
                    return
                for frame in reframer.push(chunk):
                    session.feed(frame)
                if wait > 0:
                    if pace.throttles == 1:  # the first time for this leg
                        log.warning("leg %s: sending faster than real time: throttled", leg.id)
                        self.metrics.error("audio_throttled")
                    await asyncio.sleep(wait)
            elif message.get("text") is not None:
                text = message["text"]
                if len(text) > limit:
                    await ws.close(code=wire.CLOSE_TOO_BIG, reason=f"message over {limit} bytes")
                    return
                self._on_text(leg, text)

    async def _handshake(self, ws: WebSocket) -> tuple[Leg, int]:
        if self._ending_all or (self.draining and self.cluster is None):
            raise _Refused("server is restarting", code=wire.CLOSE_TRY_AGAIN)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                first = await ws.receive()
        except TimeoutError:
            raise _Refused("no websocket:connected message") from None
        if first["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(first.get("code", 1000))
        if first.get("text") is None:
            raise _Refused("first message must be the websocket:connected text event")
        try:
            event = wire.parse_event(first["text"])
        except wire.ProtocolError as exc:
            raise _Refused(str(exc)) from None
        if event.name != wire.CONNECTED:
            raise _Refused(f"first message must be websocket:connected, not {event.name}")
        leg_id = ws.query_params.get("leg") or event.fields.get("leg")
        if not leg_id or not isinstance(leg_id, str):
            raise _Refused("no leg named")
        admit = self._authenticate(ws, event, leg_id)
        leg = self.switchboard.legs.get(leg_id)
        if leg is None and self.cluster is not None:
            leg = await self._adopt(leg_id)
        if leg is None:
            raise _Refused("unknown leg: the answer webhook did not create it, or it has ended")
        if leg.session is not None:
            raise _Refused("leg already has a websocket")
        try:
            rate = wire.content_rate(event.fields.get("content-type"), self.settings.sample_rate)
        except wire.ProtocolError as exc:
            raise _Refused(str(exc)) from None
        try:
            admit()
        except TokenError as exc:
            raise _Refused(f"socket token refused: {exc}") from None
        return leg, rate

    async def _adopt(self, leg_id: str) -> Leg | None:
        """A socket for a leg another server answered (or a survivor moved here): book it on this switchboard
        if the directory says its room is hosted here."""
        assert self.cluster is not None
        try:
            record = await self.cluster.leg(leg_id)
        except Exception:  # noqa: BLE001 - Redis unreachable: the socket is refused
            log.exception("leg %s: directory lookup failed", leg_id)
            return None
        if record is None or record.server != self.cluster.server_id:
            return None
        return self.switchboard.place(leg_id, record.caller, record.room, language=record.language,
                                      capacity=record.capacity, code=record.code, conversation=record.conversation,
                                      direction=record.direction)

    async def _leave_directory(self, leg_id: str, *, hosted_here: bool = False) -> None:
        assert self.cluster is not None
        try:
            await self.cluster.leave(leg_id, hosted_here=hosted_here)
        except Exception:  # noqa: BLE001 - Redis down: the leg's room is cleaned up when its server is swept
            log.exception("leg %s: could not leave the directory", leg_id)

    async def _take_over(self, rooms: list[str]) -> None:
        """Rooms of a lost server are ours now: their callers' calls are still up (hearing the hold notice),
        so each is transferred, through Vonage's REST API, to a new NCCO that says they were reconnected and
        connects them here."""
        assert self.cluster is not None
        for room_id in rooms:
            for record in await self.cluster.room_legs(room_id):
                self._spawn(self._reconnect(record))

    async def _reconnect(self, record: LegRecord) -> None:
        assert self.cluster is not None
        leg = Leg(id=record.id, caller=record.caller, language=record.language, room=Room(id=record.room))
        ncco = self.connect_ncco(leg, self.cluster.url, "reconnected", socket_base=self.cluster.url)
        if self.rest is None:
            log.error("leg %s: its server is gone and it cannot be moved here without the Vonage REST API "
                      "(BABELFISH_VONAGE__APPLICATION_ID and __PRIVATE_KEY)", record.id)
            await self._leave_directory(record.id)
            return
        try:
            await self.rest.transfer(record.id, ncco)
            log.warning("leg %s: moved here from a lost server (room %s)", record.id, record.room)
        except VonageApiError as exc:  # the call ended meanwhile
            log.warning("leg %s: transfer failed: %s", record.id, exc)
            await self._leave_directory(record.id)

    def language_decided(self, leg: Leg) -> bool:
        """False while ``languages.detect`` is "auto" and nobody chose the leg's language (no numbers map
        entry, no browser choice): its language is a first guess, fixed by what the caller says first."""
        return not (self.settings.languages.detect == "auto" and leg.caller != BROWSER_CALLER
                    and self.switchboard.mapped_language(leg.caller) is None)

    def _language_heard(self, leg: Leg, language: str) -> None:
        """The leg was switched to the language its caller speaks: the room's first guesses move off it, and
        the caller's remembered choice follows."""
        for other in leg.others():
            if (other.session is not None and not other.session.follower.decided
                    and languages.same_language(other.language, language)):
                room_languages = [leg.language, *(o.language for o in other.others() if o is not leg)]
                other.language = next((tag for tag in [*self.settings.menu.languages, *self.settings.default_languages]
                                       if not any(languages.same_language(tag, x) for x in room_languages)),
                                      other.language)
        async def record() -> None:
            try:
                if self.settings.menu.remember and leg.caller != BROWSER_CALLER:
                    await self.reception.remember(leg.caller, language)
                if self.cluster is not None:
                    await self.cluster.set_language(leg.id, language)
            except Exception:  # noqa: BLE001 - the call goes on in its new language regardless
                log.warning("leg %s: could not record its new language", leg.id, exc_info=True)

        self._spawn(record())

    def _keep_record(self, leg: Leg, record: Utterance) -> None:
        self.store.write(self.store.store.add_utterance, record.room, record, leg.caller)

    def _authenticate(self, ws: WebSocket, event: wire.Event, leg_id: str) -> Callable[[], None]:
        """Check what the socket offers as proof: always the leg's own single-use token from its NCCO (URI
        query or echoed headers), and Vonage's JWT on the upgrade where ``security.vonage_socket_auth``
        asks Vonage for one (an extra check, never a substitute: a JWT names no leg). Every proof offered
        must hold. Returns what marks the proofs used, called once the socket is admitted (refusals use
        nothing)."""
        token = ws.query_params.get("token") or event.fields.get("token")
        bearer = signature.bearer(ws.headers)
        if bearer is not None and self.verifier is None:
            bearer = None  # nothing to check it with; the token must do
        if not token:
            raise _Refused("no socket token: a socket is admitted only with its leg's token from the NCCO")
        if bearer is None and self.verifier is not None and self.settings.security.vonage_socket_auth:
            raise _Refused("no Vonage signature on the websocket upgrade (security.vonage_socket_auth)")
        uses: list[Callable[[], None]] = []
        try:
            nonce, expires = self.tokens.check(str(token), leg_id)
        except TokenError as exc:
            raise _Refused(f"socket token refused: {exc}") from None
        uses.append(lambda: self.tokens.consume(nonce, expires))
        if bearer is not None and self.verifier is not None:
            verifier = self.verifier
            try:
                claims = signature.verify_token(bearer, verifier.secret, verifier.max_age_s,
                                                application_id=verifier.application_id)
            except signature.SignatureError as exc:
                raise _Refused(f"Vonage signature refused: {exc.reason}") from None
            jti = claims.get("jti")
            if not isinstance(jti, str) or not jti:
                raise _Refused("Vonage signature has no jti")
            if self.socket_jwts.seen(jti):
                raise _Refused("Vonage signature already used (replay)")
            uses.append(lambda: self.socket_jwts.use(jti, float(claims["iat"]) + verifier.max_age_s))

        def admit() -> None:
            for use in uses:
                use()

        return admit

    def _on_text(self, leg: Leg, text: str) -> None:
        try:
            event = wire.parse_event(text)
        except wire.ProtocolError as exc:
            log.warning("leg %s: ignored bad text message: %s", leg.id, exc)
            return
        if event.name == wire.DTMF:  # the digit itself is neither logged nor published: it may be a PIN
            log.info("leg %s: a key was pressed", leg.id)
        elif event.name in (wire.CLEARED, wire.NOTIFY):
            log.debug("leg %s: %s", leg.id, event.name)
        else:
            log.info("leg %s: unknown websocket event %r", leg.id, event.name)

    async def end_leg(self, leg: Leg, reason: str, *, close_code: int = wire.CLOSE_NORMAL,
                      wait_s: float = 30.0, hang_up: bool = False, call_ended: bool = False) -> None:
        """A caller hung up (event webhook), their socket dropped, or we end the call (time limit,
        shutdown): clean up, tell the others, close the socket if it is still open. ``hang_up``: we end it;
        in cluster mode the call is also hung up through the REST API (its NCCO would hold it otherwise).
        ``call_ended``: Vonage said the call is over (the directory forgets the leg wherever its room is)."""
        if self.switchboard.legs.get(leg.id) is not leg:
            return
        others = leg.others()
        self.switchboard.hang_up(leg.id)
        if self.cluster is not None:
            await self._leave_directory(leg.id, hosted_here=not call_ended)
        self.reception.leg_ended(leg.id)
        log.info("leg %s ended: %s", leg.id, reason)
        self.hub.publish({"type": "leg", "event": "ended", "room": leg.room.id if leg.room else "",
                          "leg": leg.id, "reason": reason})
        if not self.draining and len(others) >= 2:  # a conference goes on: "someone has left" (if they were on)
            if leg.session is not None:
                self._announce(leg, "left")  # its room's others: the leg is off the room's list, not the room
        elif not self.draining:  # when draining every leg is ending: no "partner left", no new pairing
            for other in others:
                if other.session is not None:
                    text, lang = languages.prompt("partner_left", other.language)
                    other.session.say(text, lang, label="partner left")
                if self.cluster is None:  # in a cluster the room waits in the shared queue for a partner
                    room = other.room
                    self.switchboard.requeue(other)
                    if other.room is not room and other.session is not None:  # paired with one who waited
                        self._announce(other, "joined")
        session, leg.session = leg.session, None
        if session is not None:
            await session.close(drain_s=wait_s)
            self._dropped_ended.update(session.dropped)
        ws = self._sockets.pop(leg.id, None)
        if ws is not None and ws.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await ws.close(code=close_code, reason=reason[:120])
        if hang_up and self.cluster is not None and self.rest is not None:
            with contextlib.suppress(VonageApiError):
                await self.rest.hang_up(leg.id)

    async def keep_retention(self) -> None:
        """Delete transcripts past ``transcripts.retention_days``, at startup and then hourly."""
        days = self.settings.transcripts.retention_days
        if days is None:
            return
        while True:
            try:
                await self.store.run(self.store.store.purge, days)
            except Exception:  # noqa: BLE001 - retried next hour
                log.exception("retention purge failed")
            await asyncio.sleep(RETENTION_EVERY_S)

    async def health(self, request: Request) -> JSONResponse:
        """Liveness: the process answers (a load balancer restarts it when this fails)."""
        return JSONResponse({
            "status": "draining" if self.draining else "ok" if self.engines is not None else "loading",
            "uptime_s": round(time.time() - self.started, 1),
            "legs": len(self.switchboard.legs),
            "rooms": len(self.switchboard.rooms),
            "server_id": self.cluster.server_id if self.cluster is not None else None,
        })

    async def ready(self, request: Request) -> JSONResponse:
        """Readiness: whether to send this server new calls, and what it depends on (503 when not ready:
        engines still loading, draining, Redis or the Ray cluster unreachable)."""
        depends: dict[str, Any] = {}
        if self.cluster is not None:
            from babelfish.directory.cluster import _safe_url

            depends["redis"] = {"url": _safe_url(self.settings.cluster.redis_url or ""),
                                "ok": await self.cluster.ping(),
                                "heartbeat_age_s": round(time.monotonic() - self.cluster.last_heartbeat, 1)}
        if self.settings.ray.stages:
            from babelfish.engines import ray_serve

            depends["ray"] = {"address": self.settings.ray.address or "local", "stages": self.settings.ray.stages,
                              "ok": ray_serve.reachable()}
        engines = self.engines is not None
        ready = engines and not self.draining and all(d["ok"] for d in depends.values())
        return JSONResponse({
            "ready": ready, "engines": "loaded" if engines else "loading", "draining": self.draining,
            "server_id": self.cluster.server_id if self.cluster is not None else None, "depends": depends,
            "legs": len(self.switchboard.legs), "rooms": len(self.switchboard.rooms),
        }, status_code=200 if ready else 503)

    async def metrics_page(self, request: Request) -> Response:
        """Prometheus text format (operator token, unless ``security.metrics_open``). The live figures are
        read here, on the loop; the text is rendered in a thread, so a scrape never stalls the calls' audio."""
        if not self.settings.security.metrics_open and (refused := self.operator.refusal(request)) is not None:
            return refused
        self.metrics.snapshot()
        body = await asyncio.to_thread(self.metrics.render)
        return Response(body, headers={"Content-Type": CONTENT_TYPE})

    async def rooms(self, request: Request) -> JSONResponse:
        """The live rooms and legs (operator token; numbers masked)."""
        if (refused := self.operator.refusal(request)) is not None:
            return refused
        return JSONResponse(self.switchboard.snapshot(mask=mask_number))

    async def captions(self, ws: WebSocket) -> None:
        """Live captions and utterance records as JSON text messages (optionally ``?room=``); operator token."""
        refused = self.operator.refusal(ws)
        if refused is not None:
            self.metrics.error("captions_refused")
            await ws.close(code=wire.CLOSE_POLICY, reason=refusal_reason(refused))
            return
        await subscribe(ws, self.hub, self.settings.limits, room=ws.query_params.get("room"))


async def _until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + max(0.0, timeout_s)
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


class _Refused(Exception):
    def __init__(self, reason: str, code: int = wire.CLOSE_POLICY) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def _rest_client(settings: Settings) -> VonageRest | None:
    """The Vonage REST client when an application is configured. Settings that need it without it (configured
    invitations) fail here, at startup, with the setting to fix."""
    vonage_settings = settings.vonage
    if vonage_settings.application_id and vonage_settings.private_key:
        return VonageRest(vonage_settings.application_id, vonage_settings.private_key, vonage_settings.api_url)
    if vonage_settings.application_id or vonage_settings.private_key:
        raise ConfigError("set both BABELFISH_VONAGE__APPLICATION_ID and BABELFISH_VONAGE__PRIVATE_KEY")
    if settings.access.invites:
        raise ConfigError("access.invites rings people through Vonage's REST API: set "
                          "BABELFISH_VONAGE__APPLICATION_ID and BABELFISH_VONAGE__PRIVATE_KEY")
    return None


async def read_webhook(request: Request, model: type[Any], name: str, *, query: bool = False) -> Any:
    """The webhook's JSON body (or its query, for GET) validated into ``model``; a 400 response when it is
    not (returned, for the handler to pass on)."""
    if query:
        data: Any = dict(request.query_params)
    else:
        data = await read_json(request)
        if isinstance(data, JSONResponse):
            return data
    try:
        return vonage.parse(model, data)
    except vonage.WebhookError as exc:
        _malformed.warning("%s webhook rejected: %s", name, exc)
        return error_response(400, str(exc))


def create_app(settings: Settings, engines: Engines | None = None) -> Starlette:
    """The ASGI app. Without ``engines`` the real ones are loaded at startup (off the event loop)."""
    server = Server(settings, engines)
    phone = web.Phone(server)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server.start()
        if server.engines is None:
            server.engines = await asyncio.to_thread(load_engines, settings)
        if server.cluster is not None:
            await server.cluster.start()  # joins once it can take calls
        retention = asyncio.create_task(server.keep_retention())
        yield
        await server.drain()  # already done before the sockets closed under babelfish.server.serving
        if server.cluster is not None:
            await server.cluster.stop()
        retention.cancel()
        await server.reception.close()
        await server.store.close()
        if server.rest is not None:
            await server.rest.aclose()
        await server.stop()

    app = Starlette(
        routes=[
            Route("/answer", server.webhook(server.answer, "/answer"), methods=["GET", "POST"]),
            Route("/answer/invitation/{token}", server.webhook(server.answer, "/answer/invitation/{token}"),
                  methods=["GET", "POST"]),
            Route("/ncco", server.webhook(server.answer, "/ncco"), methods=["GET", "POST"]),
            Route("/input", server.webhook(server.input, "/input"), methods=["POST"]),
            Route("/event", server.webhook(server.event, "/event"), methods=["POST"]),
            Route("/health", server.health, methods=["GET"]),
            Route("/ready", server.ready, methods=["GET"]),
            Route("/metrics", server.metrics_page, methods=["GET"]),
            Route("/rooms", server.rooms, methods=["GET"]),
            WebSocketRoute("/socket", server.socket),
            WebSocketRoute("/captions", server.captions),
            *web.routes(server, phone),
            *console.routes(server, phone),
            *transcripts.routes(server),
        ],
        lifespan=lifespan,
        middleware=[Middleware(BodyLimit, max_bytes=settings.limits.max_body_bytes)],
    )
    app.state.server = server
    return app
