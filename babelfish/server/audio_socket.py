"""``/socket``: a leg's audio websocket, from Vonage (or the browser phone), from its handshake to its end.

Who may open it (the leg's single-use token from its NCCO, and Vonage's JWT where asked), the 20 ms frames
into the leg's session at no more than real time, the text events; whatever happens, the leg is ended and
cleaned up when the socket goes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect

from babelfish.config import logs
from babelfish.core.audio import Reframer
from babelfish.core.events import LegConnected
from babelfish.core.rooms import Leg
from babelfish.pipeline.playback import Playback
from babelfish.pipeline.stream import LegSession
from babelfish.server.limits import AudioPace, TooFast
from babelfish.server.operator import origin_allowed
from babelfish.telephony import signature, wire
from babelfish.telephony.tokens import TokenError

if TYPE_CHECKING:
    from babelfish.server.app import Server

log = logging.getLogger("babelfish")

HANDSHAKE_TIMEOUT_S = 10.0


class Refused(Exception):
    def __init__(self, reason: str, code: int = wire.CLOSE_POLICY) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class AudioSocket:
    """The ``/socket`` endpoint of one server."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.settings = server.settings
        self.metrics = server.metrics

    async def serve(self, ws: WebSocket) -> None:
        # a browser page of another site is refused (Vonage sends no Origin)
        server = self.server
        if not origin_allowed(ws, self.settings.public_url):
            log.warning("websocket from %s refused: cross-origin (%s)", ws.client.host if ws.client else "?",
                        ws.headers.get("origin", "")[:100])
            self.metrics.error("socket_refused")
            await ws.close(code=wire.CLOSE_POLICY, reason="cross-origin websocket refused")
            return
        await ws.accept()
        try:
            leg, rate = await self._handshake(ws)
        except Refused as exc:
            client = ws.client.host if ws.client else "?"
            log.warning("websocket from %s refused: %s", client, exc.reason)
            self.metrics.error("socket_refused")
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.close(code=exc.code, reason=exc.reason[:120])
            return
        except WebSocketDisconnect:
            return
        logs.bind(leg=leg.id, room=leg.room.id if leg.room else None)
        server.sockets[leg.id] = ws
        try:  # from here on, whatever happens, the leg is ended and cleaned up
            session = self._open_session(leg, ws, rate)
            await self._receive(ws, leg, session, rate)
        except WebSocketDisconnect:
            pass
        except Exception:
            log.exception("leg %s: socket failed", leg.id)
        finally:
            if server.sockets.get(leg.id) is ws:
                del server.sockets[leg.id]
            await server.end_leg(leg, reason="socket closed")

    def _open_session(self, leg: Leg, ws: WebSocket, rate: int) -> LegSession:
        server = self.server

        async def clear() -> None:  # tell Vonage to drop the audio it buffered
            await ws.send_text(wire.clear_command())

        playback = Playback(ws.send_bytes, clear, rate, lead_s=self.settings.playback_lead_ms / 1000,
                            max_items=self.settings.turns.max_pending)
        assert server.engines is not None, "engines not loaded"
        session = LegSession(leg, server.engines, server.hub, self.settings, rate, playback,
                             on_record=server.keep_record, on_language=server.language_heard,
                             language_decided=server.language_decided(leg), glossary=server.glossary)
        session.on_queue_wait = self.metrics.queue_wait.observe
        leg.session = session
        session.start()
        server.reception.connected(leg)
        if leg.direction != "outbound":  # an invitee: the invitation flow tells the host, not a second notice
            server.announce(leg, "joined")
        log.info("leg %s connected (%d Hz)", leg.id, rate)
        server.hub.publish(LegConnected(room=leg.room.id if leg.room else "", leg=leg.id, language=leg.language))
        return session

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
        server = self.server
        if server.ending_all or (server.draining and not server.directory.shared):
            raise Refused("server is restarting", code=wire.CLOSE_TRY_AGAIN)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                first = await ws.receive()
        except TimeoutError:
            raise Refused("no websocket:connected message") from None
        if first["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(first.get("code", 1000))
        if first.get("text") is None:
            raise Refused("first message must be the websocket:connected text event")
        try:
            event = wire.parse_event(first["text"])
        except wire.ProtocolError as exc:
            raise Refused(str(exc)) from None
        if event.name != wire.CONNECTED:
            raise Refused(f"first message must be websocket:connected, not {event.name}")
        leg_id = ws.query_params.get("leg") or event.fields.get("leg")
        if not leg_id or not isinstance(leg_id, str):
            raise Refused("no leg named")
        admit = self._authenticate(ws, event, leg_id)
        leg = await server.directory.arrived(leg_id)
        if leg is None:
            raise Refused("unknown leg: the answer webhook did not create it, or it has ended")
        if leg.session is not None:
            raise Refused("leg already has a websocket")
        try:
            rate = wire.content_rate(event.fields.get("content-type"), self.settings.sample_rate)
        except wire.ProtocolError as exc:
            raise Refused(str(exc)) from None
        try:
            admit()
        except TokenError as exc:
            raise Refused(f"socket token refused: {exc}") from None
        return leg, rate

    def _authenticate(self, ws: WebSocket, event: wire.Event, leg_id: str) -> Callable[[], None]:
        """Check what the socket offers as proof: always the leg's own single-use token from its NCCO (URI
        query or echoed headers), and Vonage's JWT on the upgrade where ``security.vonage_socket_auth``
        asks Vonage for one (an extra check, never a substitute: a JWT names no leg). Every proof offered
        must hold. Returns what marks the proofs used, called once the socket is admitted (refusals use
        nothing)."""
        server = self.server
        token = ws.query_params.get("token") or event.fields.get("token")
        bearer = signature.bearer(ws.headers)
        if bearer is not None and server.verifier is None:
            bearer = None  # nothing to check it with; the token must do
        if not token:
            raise Refused("no socket token: a socket is admitted only with its leg's token from the NCCO")
        if bearer is None and server.verifier is not None and self.settings.security.vonage_socket_auth:
            raise Refused("no Vonage signature on the websocket upgrade (security.vonage_socket_auth)")
        uses: list[Callable[[], None]] = []
        try:
            nonce, expires = server.tokens.check(str(token), leg_id)
        except TokenError as exc:
            raise Refused(f"socket token refused: {exc}") from None
        uses.append(lambda: server.tokens.consume(nonce, expires))
        if bearer is not None and server.verifier is not None:
            verifier = server.verifier
            try:
                claims = signature.verify_token(bearer, verifier.secret, verifier.max_age_s,
                                                application_id=verifier.application_id)
            except signature.SignatureError as exc:
                raise Refused(f"Vonage signature refused: {exc.reason}") from None
            jti = claims.get("jti")
            if not isinstance(jti, str) or not jti:
                raise Refused("Vonage signature has no jti")
            if server.socket_jwts.seen(jti):
                raise Refused("Vonage signature already used (replay)")
            uses.append(lambda: server.socket_jwts.use(jti, float(claims["iat"]) + verifier.max_age_s))

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
