"""Legs, rooms and pairing: who is in a call with whom, in which language.

A **leg** is one caller: their Vonage call (uuid), their websocket and their language. A **room** holds
legs; every leg hears every other leg of its room translated into its own language. As in the original,
the first caller waits in a room of one and the next caller joins it; a third caller opens a new room.
Callers who give a room code (or are invited) meet in that room instead, which may be a conference.
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

    @property
    def connected(self) -> bool:
        return self.session is not None

    def others(self) -> list[Leg]:
        return [leg for leg in self.room.legs if leg is not self] if self.room else []

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "caller": self.caller, "language": self.language, "status": self.status,
                "room": self.room.id if self.room else None, "connected": self.connected}


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
    def full(self) -> bool:
        return len(self.legs) >= self.capacity

    @property
    def private(self) -> bool:
        return self.code is not None

    def languages(self) -> list[str]:
        return [leg.language for leg in self.legs]

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
