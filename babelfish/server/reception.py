"""The opening of a call, before any translation: who may call, in which language, into which room.

    answer webhook -> refused (not on the allow-list)            -> spoken refusal, call ends
                   -> language: numbers map, remembered choice, or the DTMF menu (input webhook)
                   -> room: the next caller (default), a typed room code, or "*number#" to invite someone
                            (or "**code#": an interpreter the operator invited, see server/interpreters.py)
                   -> connect: the leg joins its room; its websocket carries the audio

Each step is an NCCO; a menu's key presses come back on the ``input`` webhook, which answers with the next
step's NCCO, exactly as Vonage runs an IVR. A call waiting in the menu is a :class:`Caller`; it becomes a
leg (``rooms.Leg``) only when it connects.

A keypad invitation rings a number on the operator's account, so it is only for callers on ``access.allowed``
(none when that list is empty), to numbers starting with one of ``access.invite_prefixes`` (when set), at most
``access.invites_per_hour`` per caller. A refused one is spoken ("invite_refused"), counted in the metrics
(``invite_refused_<reason>``), and the call goes on as if the caller had pressed only "#": paired with the next
caller. Logs show numbers masked and never the digits a caller typed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from babelfish.core import languages
from babelfish.core.privacy import mask_number
from babelfish.core.rooms import Leg, RoomFull
from babelfish.directory.cluster import NoServer
from babelfish.server import interpreters
from babelfish.server.invitations import Invitation, Invitations, InviteQuota
from babelfish.telephony import vonage
from babelfish.telephony.rest import VonageApiError

if TYPE_CHECKING:
    from babelfish.server.app import Server

log = logging.getLogger(__name__)

MENU_ATTEMPTS = 2  # a caller who presses nothing useful hears the menu twice, then gets the first option
WAITING_CALLERS = 10_000  # callers in the menu at once (bounded: a flood of calls cannot grow it further)
CALLER_TTL_S = 600.0


@dataclass(eq=False)
class Caller:
    uuid: str
    number: str
    to: str
    conversation: str
    direction: str = "inbound"
    language: str | None = None
    code: str | None = None
    invite_to: str | None = None  # a number to ring into this caller's room
    invitation: Invitation | None = None  # set when this call is the invitee's
    attempts: int = 0
    step: str = "language"
    created: float = field(default_factory=time.monotonic)
    ncco: list[dict[str, Any]] | None = None  # the connect NCCO, once connected (for Vonage's retries)


class Reception:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.settings = server.settings
        self.invitations = Invitations(self.settings.access.invite_timeout_s)
        self.quota = InviteQuota(self.settings.access.invites_per_hour)
        self.callers: dict[str, Caller] = {}
        self.refused = 0
        self._owed: dict[str, str] = {}  # leg id -> a notice to say once its socket is up
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- the answer webhook -----------------------------------------------------------------------------

    async def answer(self, call: vonage.AnswerRequest, base: str, invitation_token: str | None = None,
                     ) -> list[dict[str, Any]]:
        known = self.callers.get(call.uuid)
        if known is not None:  # Vonage retried the answer webhook
            return known.ncco or await self._next(known, base)
        self._forget_stale()
        caller = Caller(uuid=call.uuid, number=call.from_, to=call.to, conversation=call.conversation_uuid)
        if invitation_token is not None:
            # an outbound call we placed: Vonage's "to" is the invitee, "from" our own number
            invitation = self.invitations.redeem(invitation_token, call.to)
            if invitation is None:
                log.warning("answer for an invalid, used or expired invitation (call %s to %s)", call.uuid,
                            mask_number(call.to))
                return self._refuse(call.to)
            caller.number, caller.to = call.to, call.from_
            caller.direction, caller.invitation, caller.code = "outbound", invitation, invitation.code
            invitation.uuid = call.uuid
        elif not self.allowed(call.from_):
            log.warning("refused call from %s: not on the allow-list", mask_number(call.from_))
            return self._refuse(call.from_)
        caller.language = self.server.switchboard.mapped_language(caller.number)
        if caller.language is None and self.settings.menu.remember:
            caller.language = await self._remembered(caller.number)
        if caller.invitation is None:
            caller.invite_to = self.settings.access.invites.get(caller.number)
        if len(self.callers) >= WAITING_CALLERS:
            log.error("too many calls in the menu: refusing %s", call.uuid)
            return self.server.refusal("busy", caller.number, fallback=caller.language)
        self.callers[caller.uuid] = caller
        return await self._next(caller, base)

    def allowed(self, number: str) -> bool:
        allowed = self.settings.access.allowed
        return not allowed or number.lstrip("+") in {n.lstrip("+") for n in allowed}

    async def refusal_language(self, number: str) -> str | None:
        """The language to refuse ``number`` in before it reaches a menu: mapped (``numbers``), else the choice
        remembered from an earlier call; None when neither is known (or the lookup fails)."""
        language = self.server.switchboard.mapped_language(number)
        if language is None and self.settings.menu.remember:
            try:
                language = await self._remembered(number)
            except Exception:  # noqa: BLE001 - a refusal in the default language beats none
                log.warning("remembered language of %s unavailable", mask_number(number), exc_info=True)
        return language

    def invite_refusal(self, caller: Caller, number: str) -> str | None:
        """Why ``caller`` may not ring ``number`` from the keypad: ``not_allowed``, ``prefix`` or ``rate``;
        None when they may (one invitation of their hourly quota is then spent)."""
        access = self.settings.access
        if not access.allowed or not self.allowed(caller.number):
            return "not_allowed"
        prefixes = tuple(p.lstrip("+") for p in access.invite_prefixes)
        if not number.isdigit() or (prefixes and not number.startswith(prefixes)):
            return "prefix"
        if not self.quota.take(caller.number):
            return "rate"
        return None

    def _refuse(self, number: str) -> list[dict[str, Any]]:
        self.refused += 1
        return self.server.refusal("refused", number, fallback=(self.settings.menu.options or ["en-GB"])[0])

    def _forget_stale(self) -> None:
        cutoff = time.monotonic() - CALLER_TTL_S
        for uuid in [u for u, c in self.callers.items() if c.created < cutoff]:
            del self.callers[uuid]

    # -- the input webhook ------------------------------------------------------------------------------

    async def input(self, result: vonage.InputResult, base: str) -> list[dict[str, Any]] | None:
        """Key presses for a menu step; the reply is the next step. None: the call is not in a menu."""
        caller = self.callers.get(result.uuid)
        if caller is None or caller.ncco is not None:
            return None
        digits = result.digits
        if caller.step == "language":
            options = self.settings.menu.options
            if digits[:1].isdigit() and 1 <= int(digits[:1]) <= len(options):
                caller.language = options[int(digits[:1]) - 1]
                log.info("call %s chose %s", caller.uuid, caller.language)
                if self.settings.menu.remember:
                    await self.remember(caller.number, caller.language)
            else:
                caller.attempts += 1
                if caller.attempts >= MENU_ATTEMPTS:
                    caller.language = options[0]
                    log.info("call %s: no choice after %d menus, %s", caller.uuid, caller.attempts, caller.language)
        elif caller.step == "room":
            caller.step = "connect"
            typed = digits.split("#", 1)[0].strip("*")  # the "#" terminator too, should Vonage pass it on
            if digits.startswith(interpreters.KEYS):  # an interpreter's code, never a room's
                return await self.server.interpreters.dialled(caller, digits, base)
            if digits.startswith("*") and len(typed) >= 6:
                refused = self.invite_refusal(caller, typed)
                if refused is not None:
                    return await self._invite_refused(caller, typed, refused, base)
                caller.invite_to = typed
            elif typed:  # else "#" alone: the next caller
                caller.code = typed
                log.info("call %s: a room code was entered", caller.uuid)
        return await self._next(caller, base)

    async def _invite_refused(self, caller: Caller, number: str, reason: str, base: str) -> list[dict[str, Any]]:
        """Say so, then go on as the next caller: the caller meant to talk to someone, and a menu that just
        refused them again would invite guessing other numbers."""
        log.warning("call %s: invitation to %s refused (%s)", caller.uuid, mask_number(number), reason)
        self.server.metrics.error(f"invite_refused_{reason}")
        notice = languages.prompt("invite_refused", caller.language or self.settings.default_languages[0])
        return vonage.talk_ncco([notice]) + await self._next(caller, base)

    # -- steps ------------------------------------------------------------------------------------------

    async def _next(self, caller: Caller, base: str) -> list[dict[str, Any]]:
        menu = self.settings.menu
        if caller.language is None and menu.options and self.settings.languages.detect != "auto":
            caller.step = "language"
            prompts = []
            for digit, tag in enumerate(menu.options, 1):
                text, lang = languages.prompt("menu_option", tag)
                prompts.append((text.format(digit=digit, name=languages.name(tag)), lang))
            return vonage.menu_ncco(prompts, f"{base}/input", max_digits=1, timeout_s=menu.timeout_s)
        wants_room = menu.room_codes and caller.invitation is None and caller.invite_to is None
        if wants_room and caller.step != "connect" and caller.code is None:
            caller.step = "room"
            prompt = languages.prompt("room_menu", caller.language or self.server.settings.default_languages[0])
            return vonage.menu_ncco([prompt], f"{base}/input", max_digits=20, timeout_s=menu.timeout_s,
                                    submit_on_hash=True)
        return await self._connect(caller, base)

    async def _remembered(self, number: str) -> str | None:
        """A returning caller's language (shared by every server in a cluster)."""
        return await self.server.directory.remembered_language(number)

    async def remember(self, number: str, language: str) -> None:
        await self.server.directory.remember_language(number, language)

    async def _connect(self, caller: Caller, base: str) -> list[dict[str, Any]]:
        """The directory books the leg, here or (several servers) on the server hosting its room, whose URL
        the NCCO's websocket then goes to. Invitations ring from the server their inviter's room is on."""
        server = self.server
        code = caller.code
        if caller.invite_to is not None and code is None:
            code = f"invite-{caller.uuid[:8]}"
        try:
            booking = await server.directory.book(caller.uuid, caller.number, language=caller.language, code=code,
                                                  direction=caller.direction, conversation=caller.conversation)
        except RoomFull:
            log.info("call %s: its room is full", caller.uuid)
            self.callers.pop(caller.uuid, None)
            return vonage.talk_ncco([languages.prompt("room_full", caller.language or "en")])
        except NoServer:
            log.error("call %s refused: no live server to host its room", caller.uuid)
            self.callers.pop(caller.uuid, None)
            return server.refusal("restarting", caller.number)
        greeting = "wait"
        if caller.invite_to is not None and booking.here:
            greeting = "inviting"
            self._invite(booking.leg, caller.invite_to, code or "", booking.url or base)
        caller.ncco = server.connect_ncco(booking.leg, base, greeting, caller_id=caller.to, socket_base=booking.url)
        return caller.ncco

    # -- invitations ------------------------------------------------------------------------------------

    def _invite(self, inviter: Leg, number: str, code: str, base: str) -> None:
        invitation = self.invitations.create(number, inviter.id, code)
        log.info("call %s: an invitation to %s", inviter.id, mask_number(invitation.number))
        task = asyncio.create_task(self._place_call(invitation, base))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _place_call(self, invitation: Invitation, base: str) -> None:
        rest = self.server.rest
        if rest is None:
            self.invitation_failed(invitation, "no Vonage application configured (BABELFISH_VONAGE__*)")
            return
        inviter = self.callers.get(invitation.inviter)
        own = self.settings.vonage.number or (inviter.to if inviter else "")  # else the number they dialled
        try:
            placed = await rest.create_call(invitation.number, own, f"{base}/answer/invitation/{invitation.token}",
                                            f"{base}/event")
        except VonageApiError as exc:
            self.invitation_failed(invitation, str(exc))
            return
        if invitation.uuid is None:
            invitation.uuid = placed.uuid

    def invitation_failed(self, invitation: Invitation, reason: str) -> None:
        """The invitee could not be reached: the inviter hears so (and stays in the room, free to hang up)."""
        if invitation.failed is not None or invitation.answered:
            return
        invitation.failed = reason
        log.warning("invitation of %s failed: %s", mask_number(invitation.number),
                    re.sub(r"\d{6,}", lambda m: mask_number(str(m.group())), reason))  # Vonage may echo the number
        leg = self.server.switchboard.legs.get(invitation.inviter)
        if leg is None:
            return
        if leg.session is None:  # still connecting: told as soon as its socket is up
            self._owed[leg.id] = "invite_failed"
            return
        text, lang = languages.prompt("invite_failed", leg.language)
        leg.session.say(text, lang, label="invitation failed")

    def connected(self, leg: Leg) -> None:
        """The leg's socket is up: say what it missed while connecting."""
        key = self._owed.pop(leg.id, None)
        if key is not None and leg.session is not None:
            text, lang = languages.prompt(key, leg.language)
            leg.session.say(text, lang, label=key)

    def call_ended(self, uuid: str, status: str) -> None:
        """An event webhook says a call ended: if it was an invitation not yet answered, it failed."""
        self.callers.pop(uuid, None)
        invitation = self.invitations.by_call(uuid)
        if invitation is not None and not invitation.answered:
            self.invitation_failed(invitation, f"call {status}")

    def leg_ended(self, uuid: str) -> None:
        self.callers.pop(uuid, None)
        self._owed.pop(uuid, None)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
