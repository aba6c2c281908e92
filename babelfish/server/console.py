"""The operator console (``/console``): live calls, stored transcripts and latency, in the browser.

Who: the operator only. The login form takes ``security.operator_token`` once and answers with a session
cookie (HttpOnly, SameSite=Strict, path ``/console``), so the token is never in a URL or in the page's
storage; scripts may send the token itself as ``Authorization: Bearer``. Without a credential every console
route answers 401 (the page: the login form), and with no operator token configured 403: the console is
off. Requests from another site's page are refused (Origin), and SameSite keeps the cookie off them anyway.

The page (``static/console.html``, ``console.js``: hand-written, no build step, no CDN) reads these:

| route | what |
|---|---|
| ``GET /console/api/live`` | rooms and legs (masked numbers, language, connected for, phone or browser) |
| ``WS /console/api/captions`` | live captions of every room (partials and finals, original and translation) |
| ``POST /console/api/legs/{id}/end``, ``/rooms/{id}/end`` | end a leg, or every leg of a room |
| ``POST /console/api/links`` | a browser-phone join link for a room |
| ``GET /console/api/glossary?room=`` | the glossary's entries (``room`` absent: all; empty: the server-wide ones) |
| ``POST /console/api/glossary``, ``PUT``/``DELETE /console/api/glossary/{id}`` | add (201), edit (the fields \
given) or remove an entry: JSON ``{kind, language, term, target_language, target_term, room}`` |
| ``GET /console/api/glossary.csv?room=``, ``POST …/glossary.csv?replace=0|1`` | export; import a ``text/csv`` \
body, all or nothing (docs/glossary.md) |
| ``GET /console/api/calls?q=&limit=&offset=`` | stored calls, newest first, searched in what was said |
| ``GET /console/api/calls/{id}?format=`` | one call's transcript (json, or a txt/srt/vtt download) |
| ``GET /console/api/health`` | the last hour's stage latencies per minute, utterances, errors, readiness |
| ``POST /console/api/rooms/{id}/interpreters``, ``/legs/{id}/hand-over``, ``/take-back`` | interpreters
(:mod:`babelfish.server.interpreters`) |
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from babelfish.core import credentials, languages
from babelfish.core.privacy import mask_number
from babelfish.engines import support
from babelfish.server import interpreters
from babelfish.server.http import error_response, operator_feed, read_json, subscribe
from babelfish.server.operator import origin_allowed, refusal_reason, token_matches
from babelfish.server.phonelinks import BROWSER_CALLER
from babelfish.server.transcripts import MAX_OFFSET
from babelfish.telephony import wire
from babelfish.transcripts.formats import FORMATS, render
from babelfish.transcripts.glossary import FIELDS, MAX_TERMS, GlossaryError, make_term, room_code

if TYPE_CHECKING:
    from babelfish.server.app import Server
    from babelfish.server.phone import Phone

STATIC = Path(__file__).parent / "static"
GLOSSARY_CSV = "/console/api/glossary.csv"  # takes bodies up to the glossary's CSV limit (app.py's BodyLimit)
COOKIE = "babelfish_console"
SESSION_S = 12 * 3600.0
OFF = "the console is off: set BABELFISH_SECURITY__OPERATOR_TOKEN"


class Sessions:
    """Console sessions: ``<expiry>.<nonce>.<mac>``, an HMAC with a key derived from the operator token
    (nothing stored; a new operator token ends every session)."""

    def __init__(self, operator_token: str | None, ttl_s: float = SESSION_S) -> None:
        self.key = (hmac.new(operator_token.encode(), b"babelfish console sessions", hashlib.sha256).digest()
                    if operator_token else None)
        self.ttl_s = ttl_s
        self.revoked: dict[str, float] = {}  # nonce -> expiry, of sessions logged out

    def _mac(self, expires: int, nonce: str) -> str:
        assert self.key is not None
        return hmac.new(self.key, f"{expires}.{nonce}".encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl_s)
        nonce = secrets.token_hex(8)
        return f"{expires}.{nonce}.{self._mac(expires, nonce)}"

    def valid(self, value: str | None, now: float | None = None) -> bool:
        parts = credentials.fields(value, 3, max_length=200)
        if self.key is None or parts is None or (expires := credentials.number(parts[0])) is None:
            return False
        nonce, mac = parts[1], parts[2]
        if nonce in self.revoked:
            return False
        return credentials.same(mac, self._mac(expires, nonce)) and expires > (time.time() if now is None else now)

    def revoke(self, value: str | None, now: float | None = None) -> None:
        """End a session on the server (logout): its nonce is refused until the session would have expired."""
        if self.valid(value, now):
            parts = value.split(".")  # type: ignore[union-attr]
            now = time.time() if now is None else now
            self.revoked = {n: t for n, t in self.revoked.items() if t > now}  # forget what expired anyway
            self.revoked[parts[1]] = float(parts[0])


class Console:
    def __init__(self, server: Server, phone: Phone) -> None:
        self.server = server
        self.phone = phone
        token = server.settings.security.operator_token
        self.token = token.get_secret_value() if token is not None else None
        self.sessions = Sessions(self.token)
        self.secure_cookie = (server.settings.public_url or "").startswith("https://")

    # -- who may --------------------------------------------------------------------------------------------

    def refusal(self, connection: HTTPConnection) -> JSONResponse | None:
        """The operator's check (:class:`OperatorGuard`), where a console session cookie stands in for the
        token; None for the operator."""
        refused = self.server.operator.refusal(connection)
        if refused is None or (refused.status_code == 401 and self.sessions.valid(connection.cookies.get(COOKIE))):
            return None
        return refused

    # -- the page -------------------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        refused = self.refusal(request)
        if refused is not None:
            return self._login_page(refused.status_code, "" if refused.status_code == 401 else refusal_reason(refused))
        return HTMLResponse((STATIC / "console.html").read_text(), headers={"Cache-Control": "no-store"})

    def _login_page(self, status: int, message: str) -> HTMLResponse:
        html = (STATIC / "console-login.html").read_text().replace("{{message}}", _escape(message))
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    async def login(self, request: Request) -> Response:
        """The login form's POST (``token=…``): a session cookie and back to the console, or the form again."""
        if not origin_allowed(request, self.server.settings.public_url):
            return self._login_page(403, "cross-origin request refused")
        if not self.token:
            return self._login_page(403, OFF)
        guesses = self.server.operator.guesses
        if guesses.locked_out(request) is not None:
            return self._login_page(429, "Too many wrong tokens from this address: try again in a minute.")
        body = (await request.body()).decode("utf-8", "replace")
        given = (parse_qs(body).get("token") or [""])[0].strip()
        if not token_matches(given, self.token):
            self.server.metrics.error("console_login_refused")
            guesses.failed(request)
            return self._login_page(401, "That is not the operator token.")
        response = RedirectResponse("/console", status_code=303)
        response.set_cookie(COOKIE, self.sessions.issue(), max_age=int(self.sessions.ttl_s), path="/console",
                            httponly=True, samesite="strict", secure=self.secure_cookie)
        return response

    async def logout(self, request: Request) -> Response:
        self.sessions.revoke(request.cookies.get(COOKIE))
        response = RedirectResponse("/console", status_code=303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    # -- live -----------------------------------------------------------------------------------------------

    async def live(self, request: Request) -> JSONResponse:
        if (refused := self.refusal(request)) is not None:
            return refused
        now = time.time()
        rooms = []
        for room in self.server.switchboard.rooms.values():
            rooms.append({"id": room.id, "code": room.code, "capacity": room.capacity, "legs": [{
                "id": leg.id, "caller": mask_number(leg.caller), "language": leg.language,
                "connected": leg.connected, "for_s": round(now - leg.created, 1), "direction": leg.direction,
                "mode": "browser" if leg.caller == BROWSER_CALLER else "phone", **interpreters.live(leg),
            } for leg in room.legs], "interpreter_invitations": [
                i.public() for i in self.server.interpreters.invitations.for_room(room.id)]})
        return JSONResponse({"rooms": rooms, "legs": len(self.server.switchboard.legs), "time": now})

    async def captions(self, ws: WebSocket) -> None:
        refused = self.refusal(ws)
        if refused is not None:
            await ws.accept()
            await ws.close(code=wire.CLOSE_POLICY, reason=refusal_reason(refused))
            return
        limits = self.server.settings.limits
        await subscribe(ws, self.server.hub, limits, self.server.feeds, operator_feed(limits),
                        room=ws.query_params.get("room"))

    async def end_leg(self, request: Request) -> JSONResponse:
        if (refused := self.refusal(request)) is not None:
            return refused
        leg = self.server.switchboard.legs.get(request.path_params["leg_id"])
        if leg is None:
            return error_response(404, "no such leg (it may have ended)")
        await self.server.end_leg(leg, reason="ended by the operator", hang_up=True)
        return JSONResponse({"ended": [leg.id]})

    async def end_room(self, request: Request) -> JSONResponse:
        if (refused := self.refusal(request)) is not None:
            return refused
        room = self.server.switchboard.rooms.get(request.path_params["room_id"])
        if room is None:
            return error_response(404, "no such room (it may have ended)")
        legs = list(room.legs)
        for leg in legs:
            await self.server.end_leg(leg, reason="room ended by the operator", hang_up=True)
        return JSONResponse({"ended": [leg.id for leg in legs]})

    async def link(self, request: Request) -> JSONResponse:
        if (refused := self.refusal(request)) is not None:
            return refused
        return await self.phone.issue_link(request)

    # -- glossary (docs/glossary.md) ------------------------------------------------------------------------
    # Every store call runs on the transcript store's worker; after a change the live glossary is reloaded at
    # once, so the next utterance of every call uses it.

    async def _glossary_change(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the store, then the live glossary reloaded; a 400 for a GlossaryError."""
        try:
            result = await self.server.store.run(fn, *args)
        except GlossaryError as exc:
            return error_response(400, str(exc))
        await self.server.glossary.refresh()
        return result

    @staticmethod
    def _room_filter(request: Request) -> str | None | JSONResponse:
        """``?room=``: None (absent: every entry), "" (the server-wide ones) or a room code; else a 400."""
        room = request.query_params.get("room")
        try:
            return None if room is None else room_code(room)
        except GlossaryError as exc:
            return error_response(400, str(exc))

    @staticmethod
    def _term_id(request: Request) -> int | None:
        given = request.path_params["term_id"]
        return int(given) if given.isascii() and given.isdigit() and len(given) <= 18 else None

    @staticmethod
    async def _entry(request: Request) -> dict[str, str] | JSONResponse:
        """An entry's fields from the request's JSON (``id`` aside), as strings; else a 400."""
        data = await read_json(request)
        if isinstance(data, JSONResponse):
            return data
        if not isinstance(data, dict):
            return error_response(400, f"expected a JSON object {{{', '.join(FIELDS)}}}")
        data.pop("id", None)
        if unknown := set(data) - set(FIELDS):
            return error_response(400, f"an entry has no {', '.join(sorted(unknown))} (it has {', '.join(FIELDS)})")
        if not all(value is None or isinstance(value, str) for value in data.values()):
            return error_response(400, "every field of an entry is a string")
        return {key: value or "" for key, value in data.items()}

    async def glossary(self, request: Request) -> JSONResponse:
        if (refused := self.refusal(request)) is not None:
            return refused
        if isinstance(room := self._room_filter(request), JSONResponse):
            return room
        terms = await self.server.store.run(self.server.glossary.store.terms, room)
        return JSONResponse({"terms": [term.as_dict() for term in terms], "max": MAX_TERMS,
                             "languages": languages.NAMES})

    async def glossary_add(self, request: Request) -> JSONResponse:
        if (refused := self.refusal(request)) is not None:
            return refused
        if isinstance(fields := await self._entry(request), JSONResponse):
            return fields
        try:
            term = make_term(**{**dict.fromkeys(FIELDS, ""), **fields})
        except GlossaryError as exc:
            return error_response(400, str(exc))
        added = await self._glossary_change(self.server.glossary.store.add, term)
        return added if isinstance(added, JSONResponse) else JSONResponse(added.as_dict(), status_code=201)

    async def glossary_edit(self, request: Request) -> JSONResponse:
        if (refused := self.refusal(request)) is not None:
            return refused
        if (term_id := self._term_id(request)) is None:
            return error_response(404, "no such glossary entry")
        if isinstance(fields := await self._entry(request), JSONResponse):
            return fields
        changed = await self._glossary_change(self.server.glossary.store.change, term_id, fields)
        if changed is None:
            return error_response(404, "no such glossary entry")
        return changed if isinstance(changed, JSONResponse) else JSONResponse(changed.as_dict())

    async def glossary_remove(self, request: Request) -> JSONResponse:
        if (refused := self.refusal(request)) is not None:
            return refused
        term_id = self._term_id(request)
        if term_id is None or not await self._glossary_change(self.server.glossary.store.remove, term_id):
            return error_response(404, "no such glossary entry")
        return JSONResponse({"removed": term_id})

    async def glossary_export(self, request: Request) -> Response:
        if (refused := self.refusal(request)) is not None:
            return refused
        if isinstance(room := self._room_filter(request), JSONResponse):
            return room
        text = await self.server.store.run(self.server.glossary.store.export_csv, room)
        name = f"glossary-{room}.csv" if room else "glossary-server-wide.csv" if room == "" else "glossary.csv"
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def glossary_import(self, request: Request) -> JSONResponse:
        """A CSV body (``text/csv``: a cross-site form cannot send it without a preflight), all or nothing."""
        if (refused := self.refusal(request)) is not None:
            return refused
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "text/csv":
            return error_response(415, "send the CSV as Content-Type: text/csv")
        replace = request.query_params.get("replace", "0")
        if replace not in ("0", "1"):
            return error_response(400, "replace is 0 or 1")
        try:
            text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            return error_response(400, "the CSV must be UTF-8")
        imported = await self._glossary_change(
            partial(self.server.glossary.store.import_csv, text, replace=replace == "1"))
        if isinstance(imported, JSONResponse):
            return imported
        return JSONResponse({"imported": imported, "replace": replace == "1"})

    # -- stored calls ---------------------------------------------------------------------------------------

    async def calls(self, request: Request) -> JSONResponse:
        if (refused := self.refusal(request)) is not None:
            return refused
        try:
            limit = min(max(int(request.query_params.get("limit", 20)), 1), 200)
            offset = min(max(int(request.query_params.get("offset", 0)), 0), MAX_OFFSET)
        except ValueError:
            return error_response(400, "limit and offset must be integers")
        query = request.query_params.get("q", "").strip()[:200]
        store = self.server.store
        rows, total = await store.run(store.store.search_calls, query, limit, offset)
        return JSONResponse({"calls": rows, "total": total, "limit": limit, "offset": offset, "q": query})

    async def call(self, request: Request) -> Response:
        if (refused := self.refusal(request)) is not None:
            return refused
        fmt = request.query_params.get("format", "json")
        if fmt not in FORMATS:
            return error_response(400, f"format must be one of {', '.join(FORMATS)}")
        store = self.server.store
        call = await store.run(store.store.get_call, request.path_params["call_id"])
        if call is None:
            return error_response(404, "no such call")
        if fmt == "json" and "download" not in request.query_params:
            return JSONResponse(call)
        return Response(render(call, fmt), media_type=FORMATS[fmt], headers={
            "Content-Disposition": f'attachment; filename="{call["id"]}.{fmt}"'})

    # -- health ---------------------------------------------------------------------------------------------

    async def health(self, request: Request) -> JSONResponse:
        if (refused := self.refusal(request)) is not None:
            return refused
        ready = json.loads((await self.server.ops.ready(request)).body)
        return JSONResponse({**self.server.metrics.recent.summary(), "ready": ready,
                             "languages": support.table(self.server.settings)})


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def routes(server: Server, phone: Phone) -> list[BaseRoute]:
    console = Console(server, phone)
    return [
        Route("/console", console.page, methods=["GET"]),
        Route("/console/login", server.rate_limited(console.login, "/console/login"), methods=["POST"]),
        Route("/console/logout", console.logout, methods=["POST"]),
        Route("/console/api/live", console.live, methods=["GET"]),
        WebSocketRoute("/console/api/captions", console.captions),
        Route("/console/api/legs/{leg_id}/end", console.end_leg, methods=["POST"]),
        Route("/console/api/rooms/{room_id}/end", console.end_room, methods=["POST"]),
        Route("/console/api/links", console.link, methods=["POST"]),
        Route("/console/api/glossary", console.glossary, methods=["GET"]),
        Route("/console/api/glossary", console.glossary_add, methods=["POST"]),
        Route("/console/api/glossary/{term_id}", console.glossary_edit, methods=["PUT"]),
        Route("/console/api/glossary/{term_id}", console.glossary_remove, methods=["DELETE"]),
        Route(GLOSSARY_CSV, console.glossary_export, methods=["GET"]),
        Route(GLOSSARY_CSV, console.glossary_import, methods=["POST"]),
        Route("/console/api/calls", console.calls, methods=["GET"]),
        Route("/console/api/calls/{call_id}", console.call, methods=["GET"]),
        Route("/console/api/health", console.health, methods=["GET"]),
        *server.interpreters.routes(console),
    ]
