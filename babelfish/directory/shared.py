"""Several servers behind one number: the :class:`~babelfish.directory.protocol.Directory` over Redis.

Redis (:class:`~babelfish.directory.cluster.Cluster`) decides where a room lives; this server's switchboard
books the legs of the rooms it hosts, when they are placed here or when their socket arrives from an NCCO
another server wrote. The rooms of a server that stopped heart-beating move to a survivor: ``on_moved_here``
gets each of their legs, whose call the server then transfers to itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from babelfish.config.settings import Settings
from babelfish.core.polling import until
from babelfish.core.rooms import Leg, Room, Switchboard
from babelfish.directory.cluster import Cluster, LegRecord, safe_url
from babelfish.directory.protocol import Booking

log = logging.getLogger("babelfish")


class SharedDirectory:
    shared: bool = True

    def __init__(self, settings: Settings, switchboard: Switchboard,
                 on_moved_here: Callable[[LegRecord], Coroutine[Any, Any, None]]) -> None:
        self.cluster = Cluster(settings)
        self.cluster.load = lambda: (len(switchboard.legs), len(switchboard.rooms))
        self.cluster.on_take_over = self._take_over
        self.switchboard = switchboard
        self.server_id: str | None = self.cluster.server_id
        self.hold_s: float = settings.cluster.hold_s
        self.conference_size = settings.rooms.conference_size
        self.redis_url = settings.cluster.redis_url or ""
        self._on_moved_here = on_moved_here
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.cluster.start()  # joins once it can take calls

    async def stop(self) -> None:
        await self.cluster.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def book(self, uuid: str, number: str, *, language: str | None, code: str | None, direction: str,
                   conversation: str) -> Booking:
        placement = await self.cluster.place(uuid, number, language=language, code=code, direction=direction,
                                             conversation=conversation)
        if placement.server == self.server_id:
            leg = self.switchboard.place(uuid, number, placement.room, language=placement.language,
                                         capacity=self.conference_size if code else 2, code=code,
                                         conversation=conversation, direction=direction)
            return Booking(leg, here=True, url=placement.url)
        # only for the NCCO: the hosting server books the leg when its socket arrives there
        leg = Leg(id=uuid, caller=number, language=placement.language, conversation=conversation,
                  direction=direction, room=Room(id=placement.room))
        return Booking(leg, here=False, url=placement.url)

    async def arrived(self, leg_id: str) -> Leg | None:
        """A socket for a leg booked here, or placed here by another server (or moved here from a lost one):
        booked on this switchboard if the directory says its room is hosted here."""
        leg = self.switchboard.legs.get(leg_id)
        if leg is not None:
            return leg
        try:
            record = await self.cluster.leg(leg_id)
        except Exception:  # noqa: BLE001 - Redis unreachable: the socket is refused
            log.exception("leg %s: directory lookup failed", leg_id)
            return None
        if record is None or record.server != self.server_id:
            return None
        return self.switchboard.place(leg_id, record.caller, record.room, language=record.language,
                                      capacity=record.capacity, code=record.code, conversation=record.conversation,
                                      direction=record.direction)

    async def forget(self, leg_id: str, *, hosted_here: bool = False) -> None:
        try:
            await self.cluster.leave(leg_id, hosted_here=hosted_here)
        except Exception:  # noqa: BLE001 - Redis down: the leg's room is cleaned up when its server is swept
            log.exception("leg %s: could not leave the directory", leg_id)

    def partner_left(self, leg: Leg) -> bool:
        return False  # the room waits in the shared queue for the next caller, whichever server answers

    async def set_language(self, leg_id: str, language: str) -> None:
        await self.cluster.set_language(leg_id, language)

    async def remembered_language(self, number: str) -> str | None:
        return await self.cluster.remembered_language(number)

    async def remember_language(self, number: str, language: str) -> None:
        await self.cluster.remember_language(number, language)

    async def drain(self, rooms_finished: Callable[[], bool], timeout_s: float) -> None:
        """New rooms open elsewhere from now on; the conversations here are let finish (none is moved), and
        only what is left at the deadline hears the notice and ends."""
        try:
            await self.cluster.set_draining()
        except Exception:  # noqa: BLE001 - Redis down: the heartbeat's expiry says it for us
            log.exception("could not mark this server draining in Redis")
        log.warning("draining: no new rooms here; waiting up to %g s for %d rooms to finish", timeout_s,
                    len(self.switchboard.rooms))
        await until(rooms_finished, timeout_s)

    async def health(self) -> dict[str, Any] | None:
        return {"url": safe_url(self.redis_url), "ok": await self.cluster.ping(),
                "heartbeat_age_s": round(time.monotonic() - self.cluster.last_heartbeat, 1)}

    async def _take_over(self, rooms: list[str]) -> None:
        """Rooms of a lost server are ours now: their callers' calls are still up (hearing the hold notice)."""
        for room_id in rooms:
            for record in await self.cluster.room_legs(room_id):
                task = asyncio.create_task(self._on_moved_here(record))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
