"""Legs, rooms and pairing: who is in a call with whom, in which language.

A **leg** is one caller: their Vonage call (uuid), their websocket and their language. A **room** holds
legs; every leg hears every other leg of its room translated into its own language. As in the original,
the first caller waits in a room of one and the next caller joins it; a third caller opens a new room.
Callers who give a room code (or are invited) meet in that room instead, which may be a conference.

An **interpreter** is a leg of another kind: a person who interprets between two languages (``interprets``),
added to a running room by the operator (never paired by the switchboard, never counted against a room's
capacity). They hear the callers of their two languages live, in the original, and nothing translated; once
the operator hands the call over to them (``handed_over``) those callers hear the interpreter's voice instead
of the machine's translation between the two languages, until it is taken back or the interpreter leaves.
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from babelfish.core import languages
from babelfish.core.privacy import mask_number

if TYPE_CHECKING:
    from babelfish.pipeline.stream import LegSession

log = logging.getLogger(__name__)


MAX_CONTEXT_LINES = 24  # twice settings.translator.context_lines at most (see Room.context)


@dataclass(frozen=True)
class Line:
    """An utterance of the room as context: what was said, in which language, and its translations."""

    language: str
    text: str
    translations: dict[str, str]

    def text_in(self, language: str) -> str:
        if languages.primary(language) == languages.primary(self.language):
            return self.text
        return next((t for lang, t in self.translations.items()
                     if languages.primary(lang) == languages.primary(language) and t), "")


@dataclass(eq=False)
class Leg:
    id: str  # Vonage call uuid
    caller: str  # phone number (or browser label)
    language: str
    conversation: str = ""
    direction: str = "inbound"  # "outbound": a call the server placed (an invitation)
    room: Room | None = None
    status: str = "answered-webhook"
    session: LegSession | None = None  # set while the websocket is open
    created: float = field(default_factory=time.time)
    interprets: tuple[str, str] | None = None  # an interpreter's two languages; None: a caller
    handed_over: bool = False  # an interpreter the operator handed the call to: heard instead of the machine

    @property
    def connected(self) -> bool:
        return self.session is not None

    @property
    def role(self) -> str:
        return "caller" if self.interprets is None else "interpreter"

    def others(self) -> list[Leg]:
        return [leg for leg in self.room.legs if leg is not self] if self.room else []

    def listeners(self) -> list[Leg]:
        """Who hears this leg's speech translated: the room's other callers. An interpreter's speech is
        heard live (:func:`hears_live`), never translated, and an interpreter is spoken no translation."""
        return [] if self.interprets is not None else [leg for leg in self.others() if leg.interprets is None]

    def interprets_between(self, a: str, b: str) -> bool:
        """An interpreter for languages ``a`` and ``b`` (either way round; two different languages)."""
        if self.interprets is None or languages.same_language(a, b):
            return False
        pair = {languages.primary(tag) for tag in self.interprets}
        return {languages.primary(a), languages.primary(b)} == pair

    def interprets_for(self, language: str) -> bool:
        """An interpreter one of whose languages is ``language``."""
        return self.interprets is not None and any(languages.same_language(language, t) for t in self.interprets)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "caller": self.caller, "language": self.language, "status": self.status,
                "room": self.room.id if self.room else None, "connected": self.connected, "role": self.role,
                **({"interprets": list(self.interprets), "handed_over": self.handed_over}
                   if self.interprets is not None else {})}


def hears_live(listener: Leg, speaker: Leg) -> bool:
    """Whether ``listener`` hears ``speaker``'s own voice, live: a caller of the same language; an interpreter
    every caller of their languages; the callers of an interpreter's languages the interpreter, once handed
    the call (before that the interpreter listens without being heard)."""
    if speaker.interprets is not None:
        return speaker.handed_over and listener.interprets is None and speaker.interprets_for(listener.language)
    if listener.interprets is not None:
        return listener.interprets_for(speaker.language)
    return languages.same_language(speaker.language, listener.language)


@dataclass(eq=False)
class Room:
    """Legs that hear each other. A room opened by a code (typed on the phone, given in the browser, or made
    for an invitation) is private: strangers are never paired into it, and it holds up to the conference
    size rather than two."""

    id: str
    capacity: int = 2
    code: str | None = None
    legs: list[Leg] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    # What was said lately, for the translator's conversation context (a few lines, bounded).
    lines: collections.deque[Line] = field(default_factory=lambda: collections.deque(maxlen=MAX_CONTEXT_LINES))
    lines_said: int = 0

    @property
    def callers(self) -> list[Leg]:
        """The room's legs but its interpreters."""
        return [leg for leg in self.legs if leg.interprets is None]

    @property
    def full(self) -> bool:
        return len(self.callers) >= self.capacity  # an interpreter takes no caller's place

    @property
    def private(self) -> bool:
        return self.code is not None

    def languages(self) -> list[str]:
        return [leg.language for leg in self.callers]

    def interpreter(self, speaker: str, listener: str) -> Leg | None:
        """The interpreter heard, instead of the machine, by a listener of language ``listener`` when a caller
        speaks ``speaker``: connected, and handed the call. Asked at each delivery, so an interpreter who
        drops is not waited for: the next utterance is the machine's again."""
        return next((leg for leg in self.legs if leg.handed_over and leg.session is not None
                     and leg.interprets_between(speaker, listener)), None)

    def remember(self, language: str, text: str, translations: dict[str, str]) -> None:
        """One finished utterance, for the context of the next ones."""
        if text.strip():
            self.lines.append(Line(language, text, dict(translations)))
            self.lines_said += 1

    def context(self, source: str, target: str, n: int) -> list[tuple[str, str]]:
        """Recent lines that exist in both languages, oldest first, as (source text, target text): a line
        spoken in ``source`` with its ``target`` translation, or one spoken in ``target`` with its ``source``
        translation (the other speaker, seen from this direction).

        Between ``n`` and ``2n - 1`` lines once there are ``n``: the window grows by appending and moves
        on by ``n`` lines at a time, so one call's prompt is mostly a prefix of the next and the
        translator re-evaluates only the lines that are new (a sliding window would change them all)."""
        if n <= 0:
            return []
        start = (max(0, self.lines_said - n) // n) * n  # in lines said since the room opened
        first = self.lines_said - len(self.lines)  # the number of the oldest line still kept
        window = list(self.lines)[max(0, start - first):]
        return [(a, b) for line in window if (a := line.text_in(source)) and (b := line.text_in(target))]


class RoomFull(Exception):
    pass


class Observer:
    """Told of every change on the switchboard (the transcript store listens); does nothing by default."""

    def room_opened(self, room: Room) -> None: ...
    def room_closed(self, room: Room) -> None: ...
    def leg_joined(self, leg: Leg, room: Room) -> None: ...
    def leg_left(self, leg: Leg, room: Room) -> None: ...
    def handed_over(self, leg: Leg, room: Room, active: bool, by: str) -> None:
        """The call was handed to interpreter ``leg`` (``active``) or taken back from them, ``by`` whom."""


class Switchboard:
    """All legs and rooms of this server."""

    def __init__(self, numbers: dict[str, str], default_languages: list[str], *, conference_size: int = 6,
                 observer: Observer | None = None) -> None:
        self.numbers = {k.lstrip("+"): v for k, v in numbers.items()}
        self.default_languages = default_languages
        self.conference_size = conference_size
        self.observer = observer or Observer()
        self.legs: dict[str, Leg] = {}
        self.rooms: dict[str, Room] = {}
        self.codes: dict[str, Room] = {}
        self._counter = itertools.count(1)

    def waiting_room(self, besides: Room | None = None) -> Room | None:
        """The oldest public room still waiting for a partner."""
        for room in self.rooms.values():
            if room is not besides and not room.private and not room.full:
                return room
        return None

    def choose_language(self, caller: str, room: Room) -> str:
        if caller in self.numbers:
            return self.numbers[caller]
        spoken = {languages.primary(tag) for tag in room.languages()}
        for tag in self.default_languages:
            if languages.primary(tag) not in spoken:
                return tag
        return self.default_languages[0]

    def mapped_language(self, caller: str) -> str | None:
        return self.numbers.get(caller.lstrip("+"))

    def _open(self, code: str | None = None) -> Room:
        prefix = f"code-{code}" if code else "room"
        return self._register(Room(id=f"{prefix}-{next(self._counter)}-{uuidlib.uuid4().hex[:6]}", code=code,
                                   capacity=self.conference_size if code else 2))

    def _register(self, room: Room) -> Room:
        self.rooms[room.id] = room
        if room.code:
            self.codes[room.code] = room
        self.observer.room_opened(room)
        return room

    def answer(self, leg_id: str, caller: str, conversation: str = "", *, language: str | None = None,
               code: str | None = None, direction: str = "inbound") -> Leg:
        """A new caller joins the room ``code`` (opened if need be), else the waiting room, else a new room.
        Idempotent for Vonage's retries. Raises :class:`RoomFull` when the coded room is full."""
        if leg_id in self.legs:
            return self.legs[leg_id]
        if code is not None:
            room = self.codes.get(code)
            if room is not None and room.full:
                raise RoomFull(code)
            room = room or self._open(code)
        else:
            room = self.waiting_room() or self._open()
        return self._add(Leg(id=leg_id, caller=caller, language=language or self.choose_language(caller, room),
                             conversation=conversation, direction=direction), room)

    def place(self, leg_id: str, caller: str, room_id: str, *, language: str, capacity: int = 2,
              code: str | None = None, conversation: str = "", direction: str = "inbound") -> Leg:
        """A leg the cluster directory already placed in room ``room_id`` (opened here if need be): the
        bookkeeping of a room hosted on this server. Idempotent."""
        if leg_id in self.legs:
            return self.legs[leg_id]
        room = self.rooms.get(room_id) or self._register(Room(id=room_id, capacity=capacity, code=code))
        return self._add(Leg(id=leg_id, caller=caller, language=language, conversation=conversation,
                             direction=direction), room)

    # -- interpreters ---------------------------------------------------------------------------------------

    def add_interpreter(self, leg_id: str, caller: str, room_id: str, interprets: tuple[str, str], *,
                        language: str, conversation: str = "", direction: str = "inbound") -> Leg:
        """An interpreter joins the running room ``room_id`` (KeyError when it is gone). Idempotent."""
        if leg_id in self.legs:
            return self.legs[leg_id]
        room = self.rooms[room_id]
        return self._add(Leg(id=leg_id, caller=caller, language=language, conversation=conversation,
                             direction=direction, interprets=interprets), room)

    def hand_over(self, leg: Leg, active: bool, by: str) -> bool:
        """Hand the call to interpreter ``leg`` (``active``) or take it back; False when nothing changed."""
        if leg.interprets is None or leg.room is None or leg.handed_over == active:
            return False
        leg.handed_over = active
        log.info("leg %s: %s %s", leg.id, "handed over to the interpreter" if active else "taken back", by)
        self.observer.handed_over(leg, leg.room, active, by)
        return True

    def _add(self, leg: Leg, room: Room) -> Leg:
        self._join(leg, room)
        self.legs[leg.id] = leg
        log.info("leg %s (%s, %s) joined %s (%d/%d)", leg.id, mask_number(leg.caller), leg.language, room.id,
                 len(room.legs), room.capacity)
        return leg

    def _join(self, leg: Leg, room: Room) -> None:
        room.legs.append(leg)
        leg.room = room
        self.observer.leg_joined(leg, room)

    def _leave(self, leg: Leg) -> None:
        room = leg.room
        if room is None:
            return
        if leg.handed_over:  # the machine speaks again from the next utterance on
            self.hand_over(leg, False, "as the interpreter left")
        room.legs.remove(leg)
        self.observer.leg_left(leg, room)
        if not room.legs:
            self.rooms.pop(room.id, None)
            if room.code is not None and self.codes.get(room.code) is room:
                del self.codes[room.code]
            self.observer.room_closed(room)

    def hang_up(self, leg_id: str) -> Leg | None:
        """Remove a leg; its room is closed when empty."""
        leg = self.legs.pop(leg_id, None)
        if leg is None:
            return None
        room = leg.room
        self._leave(leg)
        log.info("leg %s left %s", leg_id, room.id if room else None)
        return leg

    def requeue(self, leg: Leg) -> None:
        """The partner left: this leg waits for a new partner in its room, or is paired at once with a caller
        already waiting elsewhere. A leg in a private room stays there for its partners to call back."""
        old = leg.room
        if old is None or old.private or len(old.legs) != 1:
            return
        other = self.waiting_room(besides=old)
        if other is None:
            return  # stays, alone, in its room: the next caller joins it
        self._leave(leg)
        self._join(leg, other)

    def snapshot(self, mask: Callable[[str], str] = str) -> dict[str, Any]:
        """Every room and its legs, callers' numbers passed through ``mask``."""

        def leg(leg: Leg) -> dict[str, Any]:
            return {**leg.summary(), "caller": mask(leg.caller)}

        return {
            "rooms": [{"id": r.id, "code": r.code, "capacity": r.capacity, "legs": [leg(x) for x in r.legs]}
                      for r in self.rooms.values()],
            "legs": len(self.legs),
        }
