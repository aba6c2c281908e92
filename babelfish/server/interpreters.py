"""Human interpreters: the operator asks for one for a running room and a language pair, hands the call to
them and takes it back (see docs/interpreters.md; who hears what is :func:`babelfish.core.rooms.hears_live`
and :meth:`babelfish.pipeline.fanout.FanOut.interpreted`).

Who may: only the operator (the console's check) asks for an interpreter, hands over and takes back. The
request answers with an **interpreter invitation**, good once, for that room only, until it expires: a
keypad code to type at the phone's room menu (``**`` and ten digits, then ``#``: a room code never makes an
interpreter, and ``**`` is never a room code), and a browser-phone link (``/phone?interpreter=<token>``, a
random token of 144 bits). Keypad codes are rationed: :data:`TRIES_PER_HOUR` tries per calling number, and
:data:`WRONG_PER_HOUR` wrong codes from everyone together, after which the keypad refuses every interpreter
code for the rest of the hour (the link still works). A refused code is told with the "by invitation only"
notice and the call ends, so each guess costs a new call.

| route (operator only) | what |
|---|---|
| ``POST /console/api/rooms/{id}/interpreters`` ``{languages, ttl_s}`` | an invitation: code, keys, link |
| ``DELETE /console/api/interpreters/{id}`` | withdraw an invitation not yet used |
| ``POST /console/api/legs/{id}/hand-over``, ``/take-back`` | the interpreter is heard, or the machine again |
"""

from __future__ import annotations

import collections
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from babelfish.core import languages
from babelfish.core.privacy import mask_number
from babelfish.core.rooms import Leg
from babelfish.pipeline.playback import HANDED_OVER
from babelfish.server.http import error_response, read_json
from babelfish.server.invitations import InterpreterRefused as Refused
from babelfish.server.invitations import InviteQuota
from babelfish.server.phone import language_tag, link_url

if TYPE_CHECKING:
    from babelfish.server.app import Server
    from babelfish.server.console import Console
    from babelfish.server.reception import Caller

log = logging.getLogger(__name__)

KEYS = "**"  # what an interpreter code starts with at the room menu
CODE_DIGITS = 10
TTL_S = 1800.0  # an invitation's default lifetime
MIN_TTL_S, MAX_TTL_S = 60.0, 86400.0
PENDING = 100  # invitations not yet used, at most
TRIES_PER_HOUR = 5  # interpreter codes typed per calling number
WRONG_PER_HOUR = 50  # wrong interpreter codes from all callers together


@dataclass(eq=False)
class Invitation:
    id: str
    room: str  # the room's id
    interprets: tuple[str, str]
    code: str  # the digits after KEYS
    token: str  # the browser link's
    expires: float  # Unix time
    created: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        """What the live view shows of a pending invitation (not its code or token)."""
        return {"id": self.id, "languages": list(self.interprets), "expires": self.expires}


class Invitations:
    """Pending interpreter invitations (bounded); each is redeemed once, by its code or its token."""

    def __init__(self) -> None:
        self._by_id: dict[str, Invitation] = {}

    def create(self, room: str, interprets: tuple[str, str], ttl_s: float) -> Invitation | None:
        """A new invitation; None when :data:`PENDING` are waiting already."""
        self._expire()
        if len(self._by_id) >= PENDING:
            return None
        codes = {i.code for i in self._by_id.values()}
        code = ""
        while not code or code in codes:  # (two pending invitations never share a code)
            code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        invitation = Invitation(id=secrets.token_hex(8), room=room, interprets=interprets, code=code,
                                token=secrets.token_urlsafe(18), expires=time.time() + ttl_s)
        self._by_id[invitation.id] = invitation
        return invitation

    def redeem(self, *, code: str | None = None, token: str | None = None) -> Invitation | None:
        """The invitation with this code or token, used up; None if there is none (or it expired)."""
        self._expire()
        found = next((i for i in self._by_id.values()
                      if (code is not None and secrets.compare_digest(i.code, code))
                      or (token is not None and secrets.compare_digest(i.token, token))), None)
        if found is not None:
            del self._by_id[found.id]
        return found

    def withdraw(self, invitation_id: str) -> bool:
        return self._by_id.pop(invitation_id, None) is not None

    def for_room(self, room: str) -> list[Invitation]:
        self._expire()
        return [i for i in self._by_id.values() if i.room == room]

    def _expire(self) -> None:
        now = time.time()
        for key in [k for k, i in self._by_id.items() if i.expires <= now]:
            del self._by_id[key]


class Interpreters:
    """A server's interpreter invitations, the legs they admit, and the operator's routes."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.invitations = Invitations()
        self.tries = InviteQuota(TRIES_PER_HOUR)
        self._wrong: collections.deque[float] = collections.deque(maxlen=WRONG_PER_HOUR)

    # -- admission ----------------------------------------------------------------------------------------

    def admit(self, invitation: Invitation | None, uuid: str, caller: str, conversation: str,
              language: str | None) -> Leg:
        """The interpreter's leg in the invitation's room, speaking ``language`` if it is one of theirs."""
        if invitation is None:
            raise Refused("no such interpreter invitation (wrong, used, withdrawn or expired)")
        interprets = invitation.interprets
        spoken = next((t for t in interprets if language and languages.same_language(language, t)), interprets[0])
        try:
            leg = self.server.switchboard.add_interpreter(uuid, caller, invitation.room, interprets,
                                                          language=spoken, conversation=conversation)
        except KeyError:
            raise Refused("the room of this interpreter invitation has ended") from None
        log.info("interpreter %s (%s) joined %s with invitation %s", leg.id, "<->".join(interprets),
                 invitation.room, invitation.id)
        return leg

    def join(self, token: object, uuid: str, conversation: str, language: str | None, caller: str) -> Leg:
        """A browser-phone join with an interpreter link's token (:class:`Refused` if it does not admit)."""
        invitation = self.invitations.redeem(token=token) if isinstance(token, str) and token else None
        return self.admit(invitation, uuid, caller, conversation, language)

    async def dialled(self, caller: Caller, digits: str, base: str) -> list[dict[str, Any]]:
        """Keys typed at the room menu that start with :data:`KEYS`: connected as the interpreter, or told
        "by invitation only" and the call ends."""
        code = digits.split("#", 1)[0].removeprefix(KEYS)
        invitation = None
        now = time.monotonic()
        while self._wrong and self._wrong[0] <= now - InviteQuota.WINDOW_S:
            self._wrong.popleft()
        if len(self._wrong) >= WRONG_PER_HOUR:
            log.warning("call %s: interpreter codes refused for the hour (%d wrong)", caller.uuid, len(self._wrong))
        elif not self.tries.take(caller.number):
            log.warning("call %s: too many interpreter codes from %s", caller.uuid, mask_number(caller.number))
        else:
            invitation = self.invitations.redeem(code=code) if code.isdigit() else None
            if invitation is None:
                self._wrong.append(now)
        try:
            leg = self.admit(invitation, caller.uuid, caller.number, caller.conversation, caller.language)
        except Refused as exc:
            log.warning("call %s: interpreter code refused: %s", caller.uuid, exc)
            self.server.metrics.error("interpreter_refused")
            self.server.reception.callers.pop(caller.uuid, None)
            return self.server.refusal("refused", caller.number, fallback=caller.language)
        caller.ncco = self.server.connect_ncco(leg, base, "wait", caller_id=caller.to)
        return caller.ncco

    # -- the operator's routes ----------------------------------------------------------------------------

    async def request(self, request: Request, console: Console) -> JSONResponse:
        """An invitation for an interpreter in room ``{room_id}`` for ``{languages: [a, b]}`` (default: the
        room's two languages) and ``ttl_s`` (201)."""
        if (refused := console.refusal(request)) is not None:
            return refused
        room = self.server.switchboard.rooms.get(request.path_params["room_id"])
        if room is None:
            return error_response(404, "no such room (it may have ended)")
        data = await read_json(request) if await request.body() else {}
        if isinstance(data, JSONResponse):
            return data
        if not isinstance(data, dict):
            return error_response(400, "expected a JSON object {languages, ttl_s}")
        spoken = list({languages.primary(t): t for t in room.languages()}.values())
        wanted = data.get("languages", spoken)
        tags = [language_tag(t) for t in wanted] if isinstance(wanted, list) else []
        if len(tags) != 2 or None in tags or languages.same_language(str(tags[0]), str(tags[1])):
            return error_response(400, "languages: two different languages, such as [\"en-GB\", \"de-DE\"]")
        ttl = data.get("ttl_s", TTL_S)
        if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not MIN_TTL_S <= ttl <= MAX_TTL_S:
            return error_response(400, f"ttl_s: {MIN_TTL_S:g} to {MAX_TTL_S:g} seconds")
        invitation = self.invitations.create(room.id, (str(tags[0]), str(tags[1])), float(ttl))
        if invitation is None:
            return error_response(429, f"{PENDING} interpreter invitations are waiting already")
        log.info("interpreter invitation %s for %s (%s)", invitation.id, room.id, "<->".join(invitation.interprets))
        base = self.server.base_url(request)
        return JSONResponse({**invitation.public(), "room": room.id, "code": invitation.code,
                             "keys": f"{KEYS}{invitation.code}#", "number": self.server.settings.vonage.number,
                             "url": link_url(base, invitation.token, "interpreter")},
                            status_code=201)

    async def withdraw(self, request: Request, console: Console) -> JSONResponse:
        if (refused := console.refusal(request)) is not None:
            return refused
        if not self.invitations.withdraw(request.path_params["invitation_id"]):
            return error_response(404, "no such invitation (used, withdrawn or expired)")
        return JSONResponse({"withdrawn": request.path_params["invitation_id"]})

    async def hand(self, request: Request, console: Console, active: bool) -> JSONResponse:
        """Hand the call to the interpreter ``{leg_id}`` (``active``), or take it back."""
        if (refused := console.refusal(request)) is not None:
            return refused
        leg = self.server.switchboard.legs.get(request.path_params["leg_id"])
        if leg is None or leg.interprets is None:
            return error_response(404, "no such interpreter (they may have left)")
        if active and (leg.session is None or not leg.session.hears_live):  # (Vonage talk: no voice is mixed)
            return error_response(409, "the interpreter is not connected yet (or cannot be heard: Vonage talk)")
        if self.server.switchboard.hand_over(leg, active, "by the operator") and active:
            await silence_the_machine(leg)
        return JSONResponse({"leg": leg.id, "handed_over": leg.handed_over})

    def routes(self, console: Console) -> list[BaseRoute]:
        async def request(r: Request) -> JSONResponse:
            return await self.request(r, console)

        async def withdraw(r: Request) -> JSONResponse:
            return await self.withdraw(r, console)

        async def hand_over(r: Request) -> JSONResponse:
            return await self.hand(r, console, True)

        async def take_back(r: Request) -> JSONResponse:
            return await self.hand(r, console, False)

        return [
            Route("/console/api/rooms/{room_id}/interpreters", request, methods=["POST"]),
            Route("/console/api/interpreters/{invitation_id}", withdraw, methods=["DELETE"]),
            Route("/console/api/legs/{leg_id}/hand-over", hand_over, methods=["POST"]),
            Route("/console/api/legs/{leg_id}/take-back", take_back, methods=["POST"]),
        ]


async def silence_the_machine(interpreter: Leg) -> None:
    """From the hand-over on, the pair's callers hear the interpreter: a machine translation queued or playing
    for them stops now rather than talking over the interpreter (its utterance is kept in the transcript, as
    cleared by the hand-over)."""
    room = interpreter.room
    for caller in room.callers if room is not None else []:
        if caller.session is not None and interpreter.interprets_for(caller.language):
            await caller.session.playback.clear(HANDED_OVER)


def live(leg: Leg) -> dict[str, Any]:
    """What the console's live view adds for an interpreter's leg."""
    if leg.interprets is None:
        return {"role": "caller"}
    return {"role": "interpreter", "interprets": list(leg.interprets), "handed_over": leg.handed_over}

