"""Legs, rooms and pairing: who is in a call with whom, in which language.

A **leg** is one caller: their Vonage call (uuid), their websocket and their language. A **room** pairs
legs; every leg hears every other leg of its room translated into its own language. As in the original,
the first caller waits in a room of one and the next caller joins it; a third caller opens a new room.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from babelfish import languages

if TYPE_CHECKING:
    from babelfish.pipeline.stream import LegSession

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Leg:
    id: str  # Vonage call uuid
    caller: str  # phone number (or browser label)
    language: str
    conversation: str = ""
    room: Room | None = None
    status: str = "answered-webhook"
    statuses: list[tuple[float, str]] = field(default_factory=list)
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
    id: str
    capacity: int = 2
    legs: list[Leg] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    @property
    def full(self) -> bool:
        return len(self.legs) >= self.capacity

    def languages(self) -> list[str]:
        return [leg.language for leg in self.legs]


class Switchboard:
    """All legs and rooms of this server; pairing happens when Vonage asks the answer webhook."""

    def __init__(self, numbers: dict[str, str], default_languages: list[str]) -> None:
        self.numbers = {k.lstrip("+"): v for k, v in numbers.items()}
        self.default_languages = default_languages
        self.legs: dict[str, Leg] = {}
        self.rooms: dict[str, Room] = {}
        self._counter = itertools.count(1)

    def waiting_room(self) -> Room | None:
        """The oldest room still waiting for a partner."""
        for room in self.rooms.values():
            if not room.full:
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

    def answer(self, leg_id: str, caller: str, conversation: str = "") -> Leg:
        """A new caller: join the waiting room, or open a new one. Idempotent for Vonage's retries."""
        if leg_id in self.legs:
            return self.legs[leg_id]
        room = self.waiting_room()
        if room is None:
            room = Room(id=f"room-{next(self._counter)}-{uuidlib.uuid4().hex[:6]}")
            self.rooms[room.id] = room
        leg = Leg(id=leg_id, caller=caller, language=self.choose_language(caller, room),
                  conversation=conversation)
        room.legs.append(leg)
        leg.room = room
        self.legs[leg_id] = leg
        log.info("leg %s (%s, %s) joined %s (%d/%d)", leg_id, caller, leg.language, room.id, len(room.legs),
                 room.capacity)
        return leg

    def hang_up(self, leg_id: str) -> Leg | None:
        """Remove a leg; its room is closed when empty."""
        leg = self.legs.pop(leg_id, None)
        if leg is None:
            return None
        room = leg.room
        if room is not None:
            room.legs.remove(leg)
            if not room.legs:
                self.rooms.pop(room.id, None)
        log.info("leg %s left %s", leg_id, room.id if room else None)
        return leg

    def requeue(self, leg: Leg) -> None:
        """The partner left: this leg waits for a new partner in a room of its own... unless one is waiting
        already, in which case the two are paired at once."""
        old = leg.room
        if old is not None and len(old.legs) == 1:
            other = next((r for r in self.rooms.values() if r is not old and not r.full), None)
            if other is None:
                return  # stays, alone, in its room: the next caller joins it
            old.legs.remove(leg)
            self.rooms.pop(old.id, None)
            other.legs.append(leg)
            leg.room = other

    def snapshot(self) -> dict[str, Any]:
        return {
            "rooms": [{"id": r.id, "legs": [leg.summary() for leg in r.legs]} for r in self.rooms.values()],
            "legs": len(self.legs),
        }
