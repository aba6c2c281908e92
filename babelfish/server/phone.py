"""The browser phone: ``/phone`` (the page), ``/static/...`` (its scripts), ``/phone/join`` and ``/phone/events``.

A browser leg is a leg like any other. ``POST /phone/join`` does what Vonage's answer webhook does for a
phone call (a leg through the switchboard, a Vonage-like call uuid) but with the language the person chose
and, optionally, a room code; it replies with the very NCCO the answer webhook would. The page then follows
that NCCO as Vonage does: it opens the websocket URI, sends ``websocket:connected`` with the headers, and
streams 20 ms L16 frames. ``/phone/events?leg=&secret=`` is the page's view of its call: the state of the leg
(room, partner) and the caption events of whatever room the leg is in now (a leg moves when its partner
leaves), for whoever has the leg's secret (returned by the join).

Who may join is ``phone.access``: ``open`` (anyone who reaches the page), ``link`` (only with a signed join
link from the operator, see :mod:`babelfish.server.phonelinks`; the link chooses the room and the language) or
``off``. A join is a JSON POST from the server's own page (anything else is refused before it is read: a
cross-site form cannot send one without a CORS preflight), and at most ``phone.max_legs`` browser legs are
up at once; one that sends no voice for ``phone.idle_s`` is ended by the server's watchdog.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid as uuidlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from babelfish.core import languages, rooms
from babelfish.engines import support
from babelfish.server.http import error_response, guest_feed, read_json, subscribe
from babelfish.server.invitations import InterpreterRefused
from babelfish.server.operator import origin_allowed
from babelfish.server.phonelinks import BROWSER_CALLER, ROOM_CODE, JoinLink, LegSecrets, LinkError, PhoneLinks
from babelfish.telephony import wire

if TYPE_CHECKING:
    from babelfish.server.app import Server

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
STATE_POLL_S = 1.0
__all__ = ["BROWSER_CALLER", "ROOM_CODE", "Phone", "language_choices", "language_tag", "routes"]


def _regional(primary: str) -> str:
    """``de`` -> ``de-DE``; kept bare where the regional tag names another language (``zh`` -> ``cmn-CN``)."""
    tag = languages.regional(primary)
    return tag if languages.primary(tag) == primary else primary


def language_choices(offered: list[str] | None = None, settings: Any = None) -> list[dict[str, Any]]:
    """Every language, each saying whether it is offered (the menu's languages, where given) and, if not,
    why (its measured verdict: :mod:`babelfish.engines.support`)."""
    wanted = None if offered is None else {languages.primary(tag) for tag in offered}
    out = []
    for primary, name in languages.NAMES.items():
        choice: dict[str, Any] = {"tag": _regional(primary), "name": name}
        if wanted is not None:
            choice["offered"] = primary in wanted
            if not choice["offered"]:
                choice["why"] = "; ".join(support.verdict(primary, settings).reasons) or "not in menu.languages"
        out.append(choice)
    return out


def language_tag(value: Any) -> str | None:
    """A language the page offers (``de``, ``de-DE``, ``en-US``) -> a tag for the leg, else None."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?", value):
        return None
    primary = languages.primary(value)
    if primary not in languages.NAMES:
        return None
    return value.replace("_", "-") if "-" in value or "_" in value else _regional(primary)


class Phone:
    """The browser phone's endpoints, with its join links and its legs' secrets."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.links = PhoneLinks.from_settings(server.settings)
        self.secrets = LegSecrets()

    async def page(self, request: Request) -> FileResponse:
        return FileResponse(STATIC / "phone.html", headers={"Cache-Control": "no-cache"})

    async def choices(self, request: Request) -> JSONResponse:
        settings = self.server.settings
        # the menu's languages; with the menu off, those measured to work and those callers get anyway
        offered = settings.menu.options or [*support.offered(settings), *settings.default_languages]
        return JSONResponse({"languages": language_choices(offered, settings), "default": settings.default_languages,
                             "access": self.server.settings.phone_access})

    @property
    def browser_legs(self) -> int:
        return sum(1 for leg in self.server.switchboard.legs.values() if leg.caller == BROWSER_CALLER)

    async def join(self, request: Request) -> JSONResponse:
        """A browser leg, as the answer webhook makes one for a call: the NCCO, and the leg's secret for
        ``/phone/events``. Refused: 403 (phone off, another site's page, no or a bad join link where links
        are needed, a bad interpreter invitation), 415 (not JSON), 503 (all lines busy), 409 (the room is full).
        ``{"interpreter": token}``: the operator's interpreter invitation (server/interpreters.py), used up
        here; it chooses the room, whatever ``phone.access`` says (but "off")."""
        settings = self.server.settings
        access = settings.phone_access
        if access == "off":
            return error_response(403, "the browser phone is off on this server")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return error_response(415, "a join is a JSON body (Content-Type: application/json)")
        if not origin_allowed(request, settings.public_url):
            self.server.metrics.error("phone_join_refused")
            return error_response(403, "cross-origin request refused")
        data = await read_json(request)
        if isinstance(data, JSONResponse):
            return data
        if not isinstance(data, dict):
            return error_response(400, "expected a JSON object")
        link: JoinLink | None = None
        interpreter = data.get("interpreter")  # an interpreter's invitation: it admits, whatever phone.access
        if interpreter is None and (access == "link" or data.get("link")):
            if not data.get("link"):
                self.server.metrics.error("phone_join_refused")
                return error_response(403, "joining needs a join link from the operator of this service")
            try:
                link = self.links.check(data["link"])
            except LinkError as exc:
                log.warning("browser join refused: %s", exc)
                self.server.metrics.error("phone_join_refused")
                return error_response(403, str(exc))
        language = language_tag(link.language if link else data.get("language"))
        if language is None and interpreter is None:
            return error_response(400, f"language must be one of {', '.join(languages.NAMES)}")
        code = link.room if link else (data.get("room") or None) if interpreter is None else None
        if code is not None and (not isinstance(code, str) or not ROOM_CODE.match(code.strip())):
            return error_response(400, "room code: 1-32 letters, digits, '-' or '_'")
        if self.server.draining:
            return error_response(503, "the service is restarting: try again in a minute")
        if self.server.at_capacity or self.browser_legs >= settings.phone.max_legs:
            self.server.metrics.error("legs_full")
            return error_response(503, "all lines are busy: try again later")
        call_uuid = str(uuidlib.uuid4())
        conversation = "CON-" + str(uuidlib.uuid4())
        code = code.strip() if code else None
        try:
            leg = (self.server.switchboard.answer(call_uuid, BROWSER_CALLER, conversation, language=language, code=code)
                   if interpreter is None else
                   self.server.interpreters.join(interpreter, call_uuid, conversation, language, BROWSER_CALLER))
        except rooms.RoomFull:
            return error_response(409, "that room is full")
        except InterpreterRefused as exc:
            log.warning("browser interpreter refused: %s", exc)
            self.server.metrics.error("interpreter_refused")
            return error_response(403, str(exc))
        ncco = self.server.connect_ncco(leg, self.server.base_url(request), caller_id=BROWSER_CALLER)
        log.info("browser leg %s (%s) joined %s%s", leg.id, leg.language, leg.room.id if leg.room else None,
                 f" with join link {link.id}" if link else "")
        # a tab closed before its websocket opened is ended by the server's watchdog (limits.connect_within_s)
        return JSONResponse({"uuid": leg.id, "conversation_uuid": conversation, "from": BROWSER_CALLER,
                             "to": "phone", "ncco": ncco, "secret": self.secrets.issue(leg.id),
                             "language": leg.language, "room": code})

    async def create_link(self, request: Request) -> JSONResponse:
        """``POST /phone/links`` ``{room, language, ttl_s}`` (operator token): a join link for that room."""
        if (refused := self.server.operator.refusal(request)) is not None:
            return refused
        return await self.issue_link(request)

    async def issue_link(self, request: Request) -> JSONResponse:
        """A join link for the request's ``{room, language, ttl_s}`` (201), for a caller already let in as
        the operator (``/phone/links``, the console)."""
        data = await read_json(request)
        if isinstance(data, JSONResponse):
            return data
        if not isinstance(data, dict):
            return error_response(400, "expected a JSON object {room, language, ttl_s}")
        language = language_tag(data.get("language"))
        if language is None:
            return error_response(400, f"language must be one of {', '.join(languages.NAMES)}")
        ttl = data.get("ttl_s", self.server.settings.phone.link_ttl_s)
        if not isinstance(ttl, int | float) or isinstance(ttl, bool):
            return error_response(400, "ttl_s: seconds")
        try:
            token, link = self.links.issue(data.get("room"), language, float(ttl))
        except ValueError as exc:
            return error_response(400, str(exc))
        log.info("join link %s issued for room %s (%s), expires %s", link.id, link.room, link.language,
                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(link.expires)))
        return JSONResponse({"url": link_url(self.server.base_url(request), token), "id": link.id,
                             "room": link.room, "language": link.language, "expires": link.expires},
                            status_code=201)

    async def revoke_link(self, request: Request) -> JSONResponse:
        """``DELETE /phone/links/{id}`` (operator token): the link admits nobody from now on."""
        if (refused := self.server.operator.refusal(request)) is not None:
            return refused
        link_id = request.path_params["id"]
        try:
            until = self.links.revoke(link_id)
        except ValueError as exc:
            return error_response(400, str(exc))
        log.warning("join link %s revoked", link_id)
        return JSONResponse({"revoked": link_id, "until": until})

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
        """The leg's state, then caption and leg events of the rooms it has been in, as they come (JSON text
        messages); the state again whenever it changes. Only for the leg's own page: ``?secret=`` from the
        join, from the server's own origin (else closed with 1008). The feed ends once the leg is gone."""
        leg_id = ws.query_params.get("leg", "")
        reason = None
        if not origin_allowed(ws, self.server.settings.public_url):
            reason = "cross-origin websocket refused"
        elif not self.secrets.matches(leg_id, ws.query_params.get("secret", "")):
            reason = "missing or wrong leg secret"  # said before the leg is looked up: no oracle of leg ids
        elif leg_id not in self.server.switchboard.legs:
            reason = "unknown leg"
        if reason is not None:
            self.server.metrics.error("phone_events_refused")
            await ws.accept()
            await ws.close(code=wire.CLOSE_POLICY, reason=reason)
            return
        state = self.state(leg_id)
        rooms_seen = {state["room"]}
        fresh_event = False  # an event came since the last tick: the feed goes on while they do

        async def first() -> None:
            await ws.send_text(json.dumps(state))

        def pick(event: dict[str, Any]) -> bool:
            nonlocal fresh_event
            fresh_event = True
            return event.get("room") in rooms_seen or event.get("leg") == leg_id

        async def tick() -> bool:
            nonlocal state, fresh_event
            fresh = self.state(leg_id)
            if fresh != state:
                state = fresh
                if state["room"] is not None:
                    rooms_seen.add(state["room"])
                await ws.send_text(json.dumps(state))
            went_on, fresh_event = fresh_event, False
            return state["active"] or went_on  # once gone, the events still queued are sent, then it ends

        limits = self.server.settings.limits
        address = ws.client.host if ws.client else "unknown"
        await subscribe(ws, self.server.hub, limits, self.server.feeds, guest_feed(limits, leg_id, address), pick=pick,
                        first=first, tick=tick, tick_s=STATE_POLL_S)


def link_url(base: str, token: str, kind: str = "link") -> str:
    """The page's URL with a join link: ``<base>/phone?link=<token>`` (``kind`` "interpreter": an
    interpreter's invitation)."""
    return f"{base.rstrip('/')}/phone?{urlencode({kind: token})}"


def routes(server: Server, phone: Phone | None = None) -> list[BaseRoute]:
    phone = phone or Phone(server)
    return [
        Route("/phone", phone.page, methods=["GET"]),
        Route("/phone/languages", phone.choices, methods=["GET"]),
        Route("/phone/join", server.rate_limited(phone.join, "/phone/join"), methods=["POST"]),
        Route("/phone/links", phone.create_link, methods=["POST"]),
        Route("/phone/links/{id}", phone.revoke_link, methods=["DELETE"]),
        WebSocketRoute("/phone/events", phone.events),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
