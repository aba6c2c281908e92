"""Invitations: an allowed caller has the server ring someone else into their room.

The invitee is not on the allow-list and gets no right to use the service: the outbound call's answer URL
carries a single-use token, valid only for the number that was rung and only until it expires.

Keypad invitations (``*number#`` at the room menu) make the operator's account pay for the call, so they are
rationed per inviting number: :class:`InviteQuota`, a sliding hour in bounded memory.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass(eq=False)
class Invitation:
    token: str
    number: str  # who is rung
    inviter: str  # the inviting leg's id
    code: str  # the private room both meet in
    created: float = field(default_factory=time.monotonic)
    uuid: str | None = None  # the outbound call, once Vonage has accepted it
    answered: bool = False
    failed: str | None = None


class InterpreterRefused(Exception):
    """An interpreter's invitation (server/interpreters.py) that does not admit: unknown, used, withdrawn or
    expired, or its room has ended."""


class Invitations:
    def __init__(self, timeout_s: float = 120.0) -> None:
        self.timeout_s = timeout_s
        self._by_token: dict[str, Invitation] = {}

    def create(self, number: str, inviter: str, code: str) -> Invitation:
        self._expire()
        invitation = Invitation(token=secrets.token_urlsafe(18), number=number.lstrip("+"), inviter=inviter,
                                code=code)
        self._by_token[invitation.token] = invitation
        return invitation

    def redeem(self, token: str, number: str) -> Invitation | None:
        """The invitee answered: the token is good once, for the number that was rung, before it expires."""
        self._expire()
        invitation = self._by_token.get(token)
        if invitation is None or invitation.answered or invitation.number != number.lstrip("+"):
            return None
        invitation.answered = True
        return invitation

    def by_call(self, uuid: str) -> Invitation | None:
        return next((i for i in self._by_token.values() if i.uuid == uuid), None)

    def pending(self) -> list[Invitation]:
        return [i for i in self._by_token.values() if not i.answered and i.failed is None]

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.timeout_s
        for token in [t for t, i in self._by_token.items() if i.created < cutoff]:
            del self._by_token[token]


class InviteQuota:
    """At most ``per_hour`` keypad invitations per inviting number in any sliding hour. Tracks at most
    ``callers`` numbers; when that many have all invited within the hour a new one is refused (fail closed:
    a full table never lets an invitation through)."""

    WINDOW_S = 3600.0

    def __init__(self, per_hour: int, callers: int = 10_000) -> None:
        self.per_hour = per_hour
        self.callers = callers
        self._placed: dict[str, deque[float]] = {}

    def take(self, number: str, now: float | None = None) -> bool:
        """Count one invitation by ``number`` if it is within the quota; False (nothing counted) if not."""
        now = time.monotonic() if now is None else now
        key = number.lstrip("+")
        placed = self._placed.get(key)
        if placed is None:
            if len(self._placed) >= self.callers:
                self._expire(now)
            if len(self._placed) >= self.callers:
                return False
            placed = self._placed[key] = deque()
        while placed and placed[0] <= now - self.WINDOW_S:
            placed.popleft()
        if len(placed) >= self.per_hour:
            if not placed:
                del self._placed[key]
            return False
        placed.append(now)
        return True

    def _expire(self, now: float) -> None:
        cutoff = now - self.WINDOW_S
        for key in [k for k, times in self._placed.items() if not times or times[-1] <= cutoff]:
            del self._placed[key]
