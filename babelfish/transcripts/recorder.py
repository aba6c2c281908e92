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

    def leg_left(self, leg: Leg, room: Room) -> None:
        self.store.write(self.store.store.leg_left, room.id, leg.id, time.time())
