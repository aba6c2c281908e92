"""The browser phone: ``/phone`` (the page), ``/static/...`` (its scripts), ``/phone/join`` and ``/phone/events``.

A browser leg is a leg like any other. ``POST /phone/join`` does what Vonage's answer webhook does for a
phone call (a leg through the switchboard, a Vonage-like call uuid) but with the language the person chose
and, optionally, a room code; it replies with the very NCCO the answer webhook would. The page then follows
that NCCO as Vonage does: it opens the websocket URI, sends ``websocket:connected`` with the headers, and
streams 20 ms L16 frames. ``/phone/events?leg=`` is the page's view of its call: the state of the leg (room,
partner) and the caption events of whatever room the leg is in now (a leg moves when its partner leaves).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid as uuidlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from babelfish import languages, rooms
from babelfish.app import error_response, wait_closed

if TYPE_CHECKING:
    from babelfish.app import Server

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
ROOM_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
BROWSER_CALLER = "browser"
STATE_POLL_S = 1.0


def _regional(primary: str) -> str:
    """``de`` -> ``de-DE``; kept bare where the regional tag names another language (``zh`` -> ``cmn-CN``)."""
    tag = languages.regional(primary)
    return tag if languages.primary(tag) == primary else primary


def language_choices() -> list[dict[str, str]]:
    return [{"tag": _regional(primary), "name": name} for primary, name in languages.NAMES.items()]


def _tag(value: Any) -> str | None:
    """A language the page offers (``de``, ``de-DE``, ``en-US``) -> a tag for the leg, else None."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?", value):
        return None
    primary = languages.primary(value)
    if primary not in languages.NAMES:
        return None
    return value.replace("_", "-") if "-" in value or "_" in value else _regional(primary)


class Phone:
    def __init__(self, server: Server) -> None:
        self.server = server

    async def page(self, request: Request) -> FileResponse:
        return FileResponse(STATIC / "phone.html", headers={"Cache-Control": "no-cache"})

    async def choices(self, request: Request) -> JSONResponse:
        return JSONResponse({"languages": language_choices(), "default": self.server.settings.default_languages})

    async def join(self, request: Request) -> JSONResponse:
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error_response(400, "body is not JSON")
        if not isinstance(data, dict):
            return error_response(400, "expected a JSON object")
        language = _tag(data.get("language"))
        if language is None:
            return error_response(400, f"language must be one of {', '.join(languages.NAMES)}")
        code = data.get("room") or None
        if code is not None and (not isinstance(code, str) or not ROOM_CODE.match(code.strip())):
            return error_response(400, "room code: 1-32 letters, digits, '-' or '_'")
        if self.server.draining:
            return error_response(503, "the service is restarting: try again in a minute")
        if self.server.at_capacity:
            self.server.metrics.error("legs_full")
            return error_response(503, "all lines are busy: try again later")
        call_uuid = str(uuidlib.uuid4())
        conversation = "CON-" + str(uuidlib.uuid4())
        try:
            leg = self.server.switchboard.answer(call_uuid, BROWSER_CALLER, conversation, language=language,
                                                 code=code.strip() if code else None)
        except rooms.RoomFull:
            return error_response(409, "that room is full")
        ncco = self.server.connect_ncco(leg, self.server.base_url(request), caller_id=BROWSER_CALLER)
        log.info("browser leg %s (%s) joined %s", leg.id, leg.language, leg.room.id if leg.room else None)
        # a tab closed before its websocket opened is ended by the server's watchdog (limits.connect_within_s)
        return JSONResponse({"uuid": leg.id, "conversation_uuid": conversation, "from": BROWSER_CALLER,
                             "to": "phone", "ncco": ncco})

    def state(self, leg_id: str) -> dict[str, Any]:
        leg = self.server.switchboard.legs.get(leg_id)
        if leg is None:
            return {"type": "state", "leg": leg_id, "active": False, "room": None, "partners": []}
        return {
            "type": "state", "leg": leg.id, "active": True, "language": leg.language,
            "room": leg.room.id if leg.room else None, "connected": leg.connected,
            "partners": [{"leg": o.id, "language": o.language, "name": languages.name(o.language),
                          "connected": o.connected} for o in leg.others()],
        }

    async def events(self, ws: WebSocket) -> None:
        """The leg's state, then caption and leg events of its room as they come (JSON text messages)."""
        await ws.accept()
        leg_id = ws.query_params.get("leg", "")
        if leg_id not in self.server.switchboard.legs:
            await ws.close(code=1008, reason="unknown leg")
            return
        queue = self.server.hub.subscribe(None)  # filtered here: the leg's room can change during the call
        receiver = asyncio.create_task(wait_closed(ws))
        try:
            state = self.state(leg_id)
            await ws.send_text(json.dumps(state))
            rooms_seen = {state["room"]}
            while not receiver.done():
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getter, receiver}, timeout=STATE_POLL_S,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    event = None
                else:
                    event = getter.result()
                    if event.get("room") in rooms_seen or event.get("leg") == leg_id:
                        await ws.send_text(json.dumps(event, default=str))
                fresh = self.state(leg_id)
                if fresh != state:
                    state = fresh
                    rooms_seen.add(state["room"])
                    await ws.send_text(json.dumps(state))
                if not state["active"] and event is None:
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            receiver.cancel()
            self.server.hub.unsubscribe(queue)
            if ws.application_state != WebSocketState.DISCONNECTED:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await ws.close()


def routes(server: Server) -> list[BaseRoute]:
    phone = Phone(server)
    return [
        Route("/phone", phone.page, methods=["GET"]),
        Route("/phone/languages", phone.choices, methods=["GET"]),
        Route("/phone/join", server.rate_limited(phone.join), methods=["POST"]),
        WebSocketRoute("/phone/events", phone.events),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
