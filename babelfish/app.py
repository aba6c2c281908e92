"""The web app Vonage talks to: /answer and /input (NCCOs), /event (call state), /socket (audio), plus
/health, /rooms, /captions and the transcript API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from babelfish import languages
from babelfish.audio import Reframer
from babelfish.captions import CaptionHub, Utterance
from babelfish.pipeline.stream import Engines, LegSession
from babelfish.playback import Playback
from babelfish.reception import Reception
from babelfish.rooms import Leg, Observer, Room, Switchboard
from babelfish.settings import Settings
from babelfish.store import AsyncStore, TranscriptStore
from babelfish.telephony import vonage, wire
from babelfish.telephony.rest import ConfigError, VonageRest

log = logging.getLogger("babelfish")

HANDSHAKE_TIMEOUT_S = 10.0
RETENTION_EVERY_S = 3600.0


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
        self.reception = Reception(self)
        self.hub = CaptionHub()
        self.started = time.time()
        self.events: dict[str, list[dict[str, Any]]] = {}

    def base_url(self, request: Request) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        proto = request.headers.get("x-forwarded-proto", request.url.scheme)
        host = request.headers.get("x-forwarded-host", request.headers.get("host", request.url.netloc))
        return f"{proto}://{host}"

    # -- webhooks ---------------------------------------------------------------------------------------

    async def answer(self, request: Request) -> JSONResponse:
        """Vonage asks what to do with a call: the reply is the first step of the call's opening (a refusal,
        the language menu, the room menu, or the connection to our websocket)."""
        if request.method == "POST":
            try:
                data = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                return error_response(400, "body is not JSON")
        else:
            data = dict(request.query_params)
        try:
            call = vonage.parse(vonage.AnswerRequest, data)
        except vonage.WebhookError as exc:
            log.warning("answer webhook rejected: %s", exc)
            return error_response(400, str(exc))
        token = request.path_params.get("token")
        return JSONResponse(await self.reception.answer(call, self.base_url(request), token))

    async def input(self, request: Request) -> JSONResponse:
        """The digits a caller pressed at a menu (the NCCO ``input`` action's result); replies with the next
        step's NCCO."""
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error_response(400, "body is not JSON")
        try:
            result = vonage.parse(vonage.InputResult, data)
        except vonage.WebhookError as exc:
            log.warning("input webhook rejected: %s", exc)
            return error_response(400, str(exc))
        ncco = await self.reception.input(result, self.base_url(request))
        if ncco is None:
            return error_response(404, "no menu is waiting for this call")
        return JSONResponse(ncco)

    def connect_ncco(self, leg: Leg, base: str, greeting: str = "wait", caller_id: str = "") -> list[dict[str, Any]]:
        """Greet the leg in its language, then connect its audio to our websocket."""
        text, lang = languages.prompt(greeting, leg.language)
        return vonage.answer_ncco(
            greeting=text,
            greeting_language=lang,
            socket_uri=vonage.websocket_uri(base, leg.id),
            sample_rate=self.settings.sample_rate,
            headers={"leg": leg.id, "lang": leg.language, "room": leg.room.id if leg.room else ""},
            caller_id=caller_id,
            event_url=f"{base}/event",
        )

    async def event(self, request: Request) -> JSONResponse:
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error_response(400, "body is not JSON")
        try:
            event = vonage.parse(vonage.CallEvent, data)
        except vonage.WebhookError as exc:
            log.warning("event webhook rejected: %s", exc)
            return error_response(400, str(exc))
        leg_id = event.leg_id
        if event.status not in vonage.KNOWN_STATUSES:
            log.info("unknown call status %r for %s (accepted)", event.status, leg_id)
        if leg_id is None:
            return JSONResponse({"ok": True})
        if event.status in vonage.ENDED_STATUSES and leg_id not in self.switchboard.legs:
            self.reception.call_ended(leg_id, event.status)  # ended in the menu, or an invitation unanswered
        history = self.events.setdefault(leg_id, [])
        if len(history) < 100:
            history.append({"status": event.status, "timestamp": event.timestamp})
        leg = self.switchboard.legs.get(leg_id)
        if leg is not None:
            leg.status = event.status
            leg.statuses.append((time.time(), event.status))
            if event.status in vonage.ENDED_STATUSES:
                await self.end_leg(leg, reason=f"call {event.status}")
        if len(self.events) > 10_000:  # keep the call-state log bounded
            self.events.pop(next(iter(self.events)))
        return JSONResponse({"ok": True})

    # -- the audio socket -------------------------------------------------------------------------------

    async def socket(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            leg, rate = await self._handshake(ws)
        except _Refused as exc:
            log.warning("websocket refused: %s", exc.reason)
            await ws.close(code=exc.code, reason=exc.reason)
            return
        except WebSocketDisconnect:
            return
        playback = Playback(ws.send_bytes, ws.send_text, rate, lead_s=self.settings.playback_lead_ms / 1000,
                            max_items=self.settings.turns.max_pending)
        assert self.engines is not None, "engines not loaded"
        session = LegSession(leg, self.engines, self.hub, self.settings, rate, playback,
                             on_record=self._keep_record)
        leg.session = session
        session.start()
        log.info("leg %s connected (%d Hz)", leg.id, rate)
        self.hub.publish({"type": "leg", "event": "connected", "room": leg.room.id if leg.room else "",
                          "leg": leg.id, "language": leg.language})
        reframer = Reframer(rate)
        limit = self.settings.max_message_bytes
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    chunk = message["bytes"]
                    if len(chunk) > limit:
                        await ws.close(code=wire.CLOSE_TOO_BIG, reason=f"message over {limit} bytes")
                        break
                    for frame in reframer.push(chunk):
                        session.feed(frame)
                elif message.get("text") is not None:
                    text = message["text"]
                    if len(text) > limit:
                        await ws.close(code=wire.CLOSE_TOO_BIG, reason=f"message over {limit} bytes")
                        break
                    self._on_text(leg, text)
        except WebSocketDisconnect:
            pass
        except Exception:
            log.exception("leg %s: socket failed", leg.id)
        finally:
            await self.end_leg(leg, reason="socket closed")

    async def _handshake(self, ws: WebSocket) -> tuple[Leg, int]:
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
        leg = self.switchboard.legs.get(str(leg_id)) if leg_id else None
        if leg is None:
            raise _Refused("unknown leg: the answer webhook did not create it")
        if leg.session is not None:
            raise _Refused("leg already has a websocket")
        try:
            rate = wire.content_rate(event.fields.get("content-type"), self.settings.sample_rate)
        except wire.ProtocolError as exc:
            raise _Refused(str(exc)) from None
        return leg, rate

    def _keep_record(self, leg: Leg, record: Utterance) -> None:
        self.store.write(self.store.store.add_utterance, record.room, record, leg.caller)

    def _on_text(self, leg: Leg, text: str) -> None:
        try:
            event = wire.parse_event(text)
        except wire.ProtocolError as exc:
            log.warning("leg %s: ignored bad text message: %s", leg.id, exc)
            return
        if event.name == wire.DTMF:
            log.info("leg %s: DTMF %s", leg.id, event.digit)
            self.hub.publish({"type": "dtmf", "room": leg.room.id if leg.room else "", "leg": leg.id,
                              "digit": event.digit})
        elif event.name in (wire.CLEARED, wire.NOTIFY):
            log.debug("leg %s: %s", leg.id, event.name)
        else:
            log.info("leg %s: unknown websocket event %r", leg.id, event.name)

    async def end_leg(self, leg: Leg, reason: str) -> None:
        """A caller hung up (event webhook) or their socket dropped: clean up, tell the others."""
        if self.switchboard.legs.get(leg.id) is not leg:
            return
        others = leg.others()
        self.switchboard.hang_up(leg.id)
        self.reception.leg_ended(leg.id)
        log.info("leg %s ended: %s", leg.id, reason)
        self.hub.publish({"type": "leg", "event": "ended", "room": leg.room.id if leg.room else "",
                          "leg": leg.id, "reason": reason})
        for other in others:
            if other.session is not None:
                text, lang = languages.prompt("partner_left", other.language)
                other.session.say(text, lang, label="partner left")
            self.switchboard.requeue(other)
        session, leg.session = leg.session, None
        if session is not None:
            await session.close()

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
        return JSONResponse({
            "status": "ok" if self.engines is not None else "loading",
            "uptime_s": round(time.time() - self.started, 1),
            "legs": len(self.switchboard.legs),
            "rooms": len(self.switchboard.rooms),
        })

    async def rooms(self, request: Request) -> JSONResponse:
        return JSONResponse(self.switchboard.snapshot())

    async def captions(self, ws: WebSocket) -> None:
        """Live captions and utterance records as JSON text messages (optionally ``?room=``)."""
        await ws.accept()
        queue = self.hub.subscribe(ws.query_params.get("room"))
        try:
            receiver = asyncio.create_task(wait_closed(ws))
            while not receiver.done():
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await ws.send_text(json.dumps(getter.result()))
                else:
                    getter.cancel()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.hub.unsubscribe(queue)
            if ws.application_state != WebSocketState.DISCONNECTED:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await ws.close()


async def wait_closed(ws: WebSocket) -> None:
    """Returns when the client closes the socket (run beside a sender)."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


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


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(settings: Settings, engines: Engines | None = None) -> Starlette:
    """The ASGI app. Without ``engines`` the real ones are loaded at startup (off the event loop)."""
    from babelfish import transcripts, web

    server = Server(settings, engines)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if server.engines is None:
            server.engines = await asyncio.to_thread(Engines.load, settings)
        retention = asyncio.create_task(server.keep_retention())
        yield
        retention.cancel()
        for leg in list(server.switchboard.legs.values()):
            await server.end_leg(leg, reason="server shutting down")
        await server.reception.close()
        await server.store.close()
        if server.rest is not None:
            await server.rest.aclose()

    app = Starlette(
        routes=[
            Route("/answer", server.answer, methods=["GET", "POST"]),
            Route("/answer/invitation/{token}", server.answer, methods=["GET", "POST"]),
            Route("/ncco", server.answer, methods=["GET", "POST"]),
            Route("/input", server.input, methods=["POST"]),
            Route("/event", server.event, methods=["POST"]),
            Route("/health", server.health, methods=["GET"]),
            Route("/rooms", server.rooms, methods=["GET"]),
            WebSocketRoute("/socket", server.socket),
            WebSocketRoute("/captions", server.captions),
            *web.routes(server),
            *transcripts.routes(server),
        ],
        lifespan=lifespan,
    )
    app.state.server = server
    return app
