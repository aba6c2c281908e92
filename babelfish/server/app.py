"""The server: one :class:`Server` per process holds the call state (settings, engines, switchboard,
transcript store, caption hub, metrics, credentials) and ends legs; :func:`create_app` wires the routes
of the modules beside it: ``webhooks`` (/answer, /input, /event), ``audio_socket`` (/socket), ``ops``
(/health, /ready, /metrics, /rooms, /captions), ``phone``, ``console`` and ``transcripts`` (/calls).

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
import socket
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
from babelfish.core.events import CaptionHub, LegEnded
from babelfish.core.polling import until
from babelfish.core.rooms import Leg, Room, Switchboard
from babelfish.core.utterance import Utterance
from babelfish.directory.cluster import LegRecord
from babelfish.directory.local import LocalDirectory
from babelfish.directory.protocol import Directory
from babelfish.directory.shared import SharedDirectory
from babelfish.engines import support
from babelfish.engines.registry import load_engines
from babelfish.pipeline.protocols import Engines
from babelfish.server import console, transcripts
from babelfish.server import phone as web
from babelfish.server.audio_socket import AudioSocket
from babelfish.server.http import FeedSlots
from babelfish.server.interpreters import Interpreters
from babelfish.server.limits import BodyLimit, RateLimiter
from babelfish.server.metrics import Metrics
from babelfish.server.operator import OperatorGuard
from babelfish.server.ops import Ops
from babelfish.server.phonelinks import BROWSER_CALLER
from babelfish.server.reception import Reception
from babelfish.server.watchdog import Watchdog
from babelfish.server.webhooks import Webhooks
from babelfish.telephony import signature, vonage, wire
from babelfish.telephony.rest import VonageApiError, rest_client
from babelfish.telephony.tokens import ReplayGuard, SocketTokens
from babelfish.transcripts.glossary import MAX_CSV_BYTES, GlossaryStore, LiveGlossary
from babelfish.transcripts.recorder import TranscriptRecorder
from babelfish.transcripts.store import AsyncStore, TranscriptStore

log = logging.getLogger("babelfish")

RETENTION_EVERY_S = 3600.0

Handler = Callable[[Request], Awaitable[Response]]


class Server:
    """The state of one babelfish process: settings, shared engines, the switchboard and the caption feed."""

    def __init__(self, settings: Settings, engines: Engines | None = None) -> None:
        if settings.menu.languages is None:  # unset: the languages measured to work on these engines
            menu = settings.menu.model_copy(update={"languages": support.menu(settings)})
            settings = settings.model_copy(update={"menu": menu})
        self.settings = settings
        self.engines = engines
        self.rest = rest_client(settings)
        self.store = AsyncStore(TranscriptStore(settings.database_url,
                                                mask_numbers=settings.transcripts.mask_numbers))
        self.glossary = LiveGlossary(GlossaryStore(self.store.store), self.store.run)
        self.switchboard = Switchboard(settings.numbers, settings.default_languages,
                                       conference_size=settings.rooms.conference_size,
                                       observer=TranscriptRecorder(self.store))
        self.directory: Directory = (SharedDirectory(settings, self.switchboard, on_moved_here=self._move_here)
                                     if settings.cluster.redis_url else LocalDirectory(self.switchboard, self.store))
        self.reception = Reception(self)
        self.interpreters = Interpreters(self)
        self.hub = CaptionHub()
        self.feeds = FeedSlots()  # who holds which caption feeds (server/http.py)
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
        self.ending_all = False  # the drain's last step: every leg left is being ended
        self.sockets: dict[str, WebSocket] = {}  # leg id -> its open audio socket
        self._dropped_ended: collections.Counter[str] = collections.Counter()
        self._watchdog: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.ops = Ops(self)

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
        self._say_which_languages_work()
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(Watchdog(self).run(), name="leg-watchdog")

    def _say_which_languages_work(self) -> None:
        """One line for the languages offered, one for each left out or offered against its verdict, with why."""
        offered = [languages.primary(tag) for tag in self.settings.menu.options]
        log.info("languages offered in the menu: %s", ", ".join(offered) or "none (menu off)")
        unmeasured = []
        for tag in languages.NAMES:
            verdict = support.verdict(tag, self.settings)
            if tag in offered and verdict.rating == "poor":
                log.warning("menu.languages offers %s", verdict.summary())
            elif tag not in offered and verdict.rating == "unmeasured":
                unmeasured.append(tag)
            elif tag not in offered and verdict.rating != "good":
                log.info("not offered: %s", verdict.summary())
        if unmeasured:
            log.info("not offered, not measured on these engines: %s (babelfish bench languages rates them)",
                     ", ".join(unmeasured))

    def say_what_runs(self, port: int) -> None:
        """Once the engines are loaded: a line per engine (model, device, threads: config/hardware.py says how
        they were chosen) and one with the addresses of the browser phone and the operator console."""
        engines = self.engines
        if engines is not None:
            if engines.speech_translator is not None:
                log.info("recognizer and translator: %s", _describe(engines.speech_translator))
            for stage, engine in (("recognizer", engines.recognizer), ("translator", engines.translator)):
                if engine is not None:
                    log.info("%s: %s", stage, _describe(engine))
            if engines.talk is not None:
                log.info("voices: Vonage speaks the translations into the call (synthesizer.engine 'vonage-talk')")
            for line in getattr(engines.voices, "describe", list)():
                log.info("voice: %s", line)
        host = self.settings.host
        if host in ("", "0.0.0.0", "::"):  # every interface: the machine's name is the one to try
            host = socket.gethostname()
        base = (self.settings.public_url or f"http://{f'[{host}]' if ':' in host else host}:{port}").rstrip("/")
        phone = {"open": "open to anyone who reaches it", "link": "with a join link from the console",
                 "off": "off: phone.access"}[self.settings.phone_access]
        console_state = "" if self.settings.security.operator_token else " (off until security.operator_token is set)"
        log.info("browser phone: %s/phone (%s); operator console: %s/console%s", base, phone, base, console_state)

    async def stop(self) -> None:
        tasks = [t for t in (self._watchdog, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watchdog = None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
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
        await self.directory.drain(lambda: all(len(room.legs) < 2 for room in self.switchboard.rooms.values()),
                                   deadline - time.monotonic())
        self.ending_all = True
        legs = list(self.switchboard.legs.values())
        sessions = [leg.session for leg in legs if leg.session is not None]
        log.log(logging.WARNING if legs else logging.INFO,
                "draining: taking no new calls; ending %d legs (%d connected) within %g s", len(legs),
                len(sessions), limit)
        for session in sessions:
            text, lang = languages.prompt("restarting", session.leg.language)
            session.say(text, lang, label="notice: restarting")
        await asyncio.gather(*(s.stop_listening() for s in sessions), return_exceptions=True)
        await until(lambda: all(s.idle for s in sessions), deadline - time.monotonic())
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

    # -- guards and NCCOs (used by the webhooks, reception, the browser phone) --------------------------

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
            said = dict.fromkeys(languages.prompt(greeting, tag) for tag in self.settings.menu.options)
            greetings = list(said) or greetings  # (a language without the prompt would repeat the English)
        hold = None
        if self.directory.hold_s > 0:
            hold_text, hold_lang = languages.prompt("hold", leg.language)
            hold = (hold_text, hold_lang, max(1, round(self.directory.hold_s / 3)))  # about 3 s per notice
        socket_uri = vonage.websocket_uri(socket_base or base, leg.id, token=self.tokens.issue(leg.id))
        if self.settings.cluster.shared_url:  # call events may go to any server: through the load balancer
            base = self.settings.cluster.shared_url.rstrip("/")
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

    # -- legs: announcements, the directory, languages, records, the end ------------------------------

    def announce(self, leg: Leg, key: str) -> None:
        """Say prompt ``key`` (``joined``, ``left``) about ``leg`` to the other connected legs of its room,
        each in their own language."""
        for other in leg.others():
            if other.session is not None:
                text, lang = languages.prompt(key, other.language)
                other.session.say(text, lang, label=key)

    async def _move_here(self, record: LegRecord) -> None:
        """The room of ``record``'s leg moved here from a lost server: its call is transferred, through
        Vonage's REST API, to a new NCCO that says they were reconnected and connects them here."""
        leg = Leg(id=record.id, caller=record.caller, language=record.language, room=Room(id=record.room))
        ncco = self.connect_ncco(leg, self.own_url, "reconnected", socket_base=self.own_url)
        if self.rest is None:
            log.error("leg %s: its server is gone and it cannot be moved here without the Vonage REST API "
                      "(BABELFISH_VONAGE__APPLICATION_ID and __PRIVATE_KEY)", record.id)
            await self.directory.forget(record.id)
            return
        try:
            await self.rest.transfer(record.id, ncco)
            log.warning("leg %s: moved here from a lost server (room %s)", record.id, record.room)
        except VonageApiError as exc:  # the call ended meanwhile
            log.warning("leg %s: transfer failed: %s", record.id, exc)
            await self.directory.forget(record.id)

    def language_decided(self, leg: Leg) -> bool:
        """False while ``languages.detect`` is "auto" and nobody chose the leg's language (no numbers map
        entry, no browser choice): its language is a first guess, fixed by what the caller says first."""
        return not (self.settings.languages.detect == "auto" and leg.caller != BROWSER_CALLER and not leg.interprets
                    and self.switchboard.mapped_language(leg.caller) is None)

    def language_heard(self, leg: Leg, language: str) -> None:
        """The leg was switched to the language its caller speaks: the room's first guesses move off it, and
        the caller's remembered choice follows."""
        for other in leg.others():
            if (other.session is not None and not other.session.follower.decided
                    and languages.same_language(other.language, language)):
                room_languages = [leg.language, *(o.language for o in other.others() if o is not leg)]
                other.language = next((tag for tag in [*self.settings.menu.options, *self.settings.default_languages]
                                       if not any(languages.same_language(tag, x) for x in room_languages)),
                                      other.language)
        async def record() -> None:
            try:
                if self.settings.menu.remember and leg.caller != BROWSER_CALLER:
                    await self.reception.remember(leg.caller, language)
                await self.directory.set_language(leg.id, language)
            except Exception:  # noqa: BLE001 - the call goes on in its new language regardless
                log.warning("leg %s: could not record its new language", leg.id, exc_info=True)

        self.spawn(record())

    def keep_record(self, leg: Leg, record: Utterance) -> None:
        self.store.write(self.store.store.add_utterance, record.room, record, leg.caller)

    async def end_leg(self, leg: Leg, reason: str, *, close_code: int = wire.CLOSE_NORMAL,
                      wait_s: float = 30.0, hang_up: bool = False, call_ended: bool = False) -> None:
        """A caller hung up (event webhook), their socket dropped, or we end the call (time limit,
        shutdown): clean up, tell the others, close the socket if it is still open. ``hang_up``: we end it;
        with several servers the call is also hung up through the REST API (its NCCO would hold it otherwise).
        ``call_ended``: Vonage said the call is over (the directory forgets the leg wherever its room is)."""
        if self.switchboard.legs.get(leg.id) is not leg:
            return
        others = leg.others()
        callers = [other for other in others if other.interprets is None]
        self.switchboard.hang_up(leg.id)
        await self.directory.forget(leg.id, hosted_here=not call_ended)
        self.reception.leg_ended(leg.id)
        log.info("leg %s ended: %s", leg.id, reason)
        self.hub.publish(LegEnded(room=leg.room.id if leg.room else "", leg=leg.id, reason=reason))
        if not self.draining and (len(callers) >= 2 or leg.interprets):  # a conference (or the call) goes on
            if leg.session is not None:
                self.announce(leg, "left")  # its room's others: the leg is off the room's list, not the room
        elif not self.draining:  # when draining every leg is ending: no "partner left", no new pairing
            for other in callers:
                if other.session is not None:
                    text, lang = languages.prompt("partner_left", other.language)
                    other.session.say(text, lang, label="partner left")
                if self.directory.partner_left(other) and other.session is not None:  # paired with one who waited
                    self.announce(other, "joined")
        session, leg.session = leg.session, None
        if session is not None:
            await session.close(drain_s=wait_s)
            self._dropped_ended.update(session.dropped)
        ws = self.sockets.pop(leg.id, None)
        if ws is not None and ws.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await ws.close(code=close_code, reason=reason[:120])
        if hang_up and self.directory.shared and self.rest is not None:
            with contextlib.suppress(VonageApiError):
                await self.rest.hang_up(leg.id)
        if leg.interprets is None and not callers:  # the last caller left: nobody is left to interpret for
            for other in others:
                await self.end_leg(other, reason="the callers have left", hang_up=True)

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


def _describe(engine: object) -> str:
    """An engine's model, device and threads where it says them (``describe``), else its name."""
    describe = getattr(engine, "describe", None)
    return describe() if callable(describe) else str(getattr(engine, "name", type(engine).__name__))


def create_app(settings: Settings, engines: Engines | None = None, *, port: int | None = None) -> Starlette:
    """The ASGI app. Without ``engines`` the real ones are loaded at startup (off the event loop). ``port``:
    the one it is served on, where that is not ``settings.port`` (for the addresses in the startup log)."""
    server = Server(settings, engines)
    phone = web.Phone(server)
    hooks = Webhooks(server)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server.start()
        if server.engines is None:
            server.engines = await asyncio.to_thread(load_engines, settings)
        server.say_what_runs(settings.port if port is None else port)
        await server.directory.start()
        retention = asyncio.create_task(server.keep_retention())
        glossary = asyncio.create_task(server.glossary.watch(), name="glossary")
        yield
        glossary.cancel()
        await server.drain()  # already done before the sockets closed under babelfish.server.serving
        await server.directory.stop()
        retention.cancel()
        await server.reception.close()
        await server.store.close()
        if server.rest is not None:
            await server.rest.aclose()
        await server.stop()

    app = Starlette(
        routes=[
            Route("/answer", server.webhook(hooks.answer, "/answer"), methods=["GET", "POST"]),
            Route("/answer/invitation/{token}", server.webhook(hooks.answer, "/answer/invitation/{token}"),
                  methods=["GET", "POST"]),
            Route("/ncco", server.webhook(hooks.answer, "/ncco"), methods=["GET", "POST"]),
            Route("/input", server.webhook(hooks.input, "/input"), methods=["POST"]),
            Route("/event", server.webhook(hooks.event, "/event"), methods=["POST"]),
            WebSocketRoute("/socket", AudioSocket(server).serve),
            *server.ops.routes(),
            *web.routes(server, phone),
            *console.routes(server, phone),
            *transcripts.routes(server),
        ],
        lifespan=lifespan,
        middleware=[Middleware(BodyLimit, max_bytes=settings.limits.max_body_bytes,
                               larger={console.GLOSSARY_CSV: MAX_CSV_BYTES})],
    )
    app.state.server = server
    return app
