"""One server alone: rooms are its switchboard's, a returning caller's language is in the transcript store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from babelfish.core.rooms import Leg, Switchboard
from babelfish.directory.protocol import Booking
from babelfish.transcripts.store import AsyncStore


class LocalDirectory:
    shared: bool = False
    server_id: str | None = None
    hold_s: float = 0.0

    def __init__(self, switchboard: Switchboard, store: AsyncStore) -> None:
        self.switchboard = switchboard
        self.store = store

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def book(self, uuid: str, number: str, *, language: str | None, code: str | None, direction: str,
                   conversation: str) -> Booking:
        leg = self.switchboard.answer(uuid, number, conversation, language=language, code=code,
                                      direction=direction)
        return Booking(leg)

    async def arrived(self, leg_id: str) -> Leg | None:
        return self.switchboard.legs.get(leg_id)

    async def forget(self, leg_id: str, *, hosted_here: bool = False) -> None:
        pass  # the switchboard already let the leg go

    def partner_left(self, leg: Leg) -> bool:
        room = leg.room
        self.switchboard.requeue(leg)
        return leg.room is not room

    async def set_language(self, leg_id: str, language: str) -> None:
        pass  # the leg itself holds it

    async def remembered_language(self, number: str) -> str | None:
        return await self.store.run(self.store.store.remembered_language, number)

    async def remember_language(self, number: str, language: str) -> None:
        self.store.write(self.store.store.remember_language, number, language)

    async def drain(self, rooms_finished: Callable[[], bool], timeout_s: float) -> None:
        pass  # nowhere else to send callers: every leg hears the notice and ends

    async def health(self) -> dict[str, Any] | None:
        return None
