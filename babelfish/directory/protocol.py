"""The directory: where each caller is put, where their room lives, what is remembered about them.

One interface, two implementations, so that the server asks the same questions in both modes and never
branches on which it runs in: :class:`~babelfish.directory.local.LocalDirectory` (one server: its own
switchboard and transcript store) and :class:`~babelfish.directory.shared.SharedDirectory` (several servers
behind one number: the call state shared in Redis, see :mod:`babelfish.directory.cluster`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from babelfish.core.rooms import Leg


@dataclass
class Booking:
    """Where a new caller was put: their leg, and whether its room is hosted on this server. ``url``: the
    hosting server's public URL (the leg's websocket goes there); None for the request's own URL."""

    leg: Leg
    here: bool = True
    url: str | None = None


class Directory(Protocol):
    #: Several servers share the calls. Then a draining server lets its rooms finish (new callers are put
    #: elsewhere), and a caller whose partner left waits in the shared queue rather than this server's.
    shared: bool
    #: This server's id among several (None for one server alone).
    server_id: str | None
    #: How long a caller whose socket dropped is held with a notice while a survivor takes over (0: not held).
    hold_s: float

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def book(self, uuid: str, number: str, *, language: str | None, code: str | None, direction: str,
                   conversation: str) -> Booking:
        """Put a new caller in a room: the room ``code`` (opened if need be), a waiting caller's, or a new
        one. Idempotent for Vonage's retries. Raises :class:`~babelfish.core.rooms.RoomFull` for a full coded
        room and :class:`~babelfish.directory.cluster.NoServer` when no server takes new rooms."""
        ...

    async def arrived(self, leg_id: str) -> Leg | None:
        """The leg whose socket just arrived, if its room is hosted here (None: refuse the socket)."""
        ...

    async def forget(self, leg_id: str, *, hosted_here: bool = False) -> None:
        """The leg ended: its call is over (anyone may say so) or, with ``hosted_here``, this server ended it."""
        ...

    def partner_left(self, leg: Leg) -> bool:
        """``leg``'s partner left: it waits for a new one. True when it was paired at once, with a caller
        already waiting."""
        ...

    async def set_language(self, leg_id: str, language: str) -> None:
        """The leg was switched to the language its caller speaks."""
        ...

    async def remembered_language(self, number: str) -> str | None: ...

    async def remember_language(self, number: str, language: str) -> None: ...

    async def drain(self, rooms_finished: Callable[[], bool], timeout_s: float) -> None:
        """Shutting down: take no new rooms here, and wait (up to ``timeout_s``) for what should finish first."""
        ...

    async def health(self) -> dict[str, Any] | None:
        """What readiness depends on (``{"ok": bool, ...}``), or None when nothing outside this process."""
        ...
