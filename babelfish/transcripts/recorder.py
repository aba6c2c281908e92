"""The transcript follows the switchboard: calls opened and closed, legs joining and leaving, written to the
store as they happen (the utterances are written by the server as each is finished)."""

from __future__ import annotations

import time

from babelfish.core.rooms import Leg, Observer, Room
from babelfish.transcripts.store import AsyncStore


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
        if leg.interprets is not None:
            self._event(room, "interpreter_joined", leg, pair(leg))

    def leg_left(self, leg: Leg, room: Room) -> None:
        self.store.write(self.store.store.leg_left, room.id, leg.id, time.time())
        if leg.interprets is not None:
            self._event(room, "interpreter_left", leg, pair(leg))

    def handed_over(self, leg: Leg, room: Room, active: bool, by: str) -> None:
        self._event(room, "handed_over" if active else "taken_back", leg, f"{pair(leg)}, {by}")

    def _event(self, room: Room, kind: str, leg: Leg, detail: str) -> None:
        self.store.write(self.store.store.add_event, room.id, kind, leg.id, detail, time.time())


def pair(leg: Leg) -> str:
    """An interpreter's languages as the transcript writes them: ``en-GB<->de-DE``."""
    return "<->".join(leg.interprets or ())
