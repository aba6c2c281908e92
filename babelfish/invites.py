"""Invitations: an allowed caller has the server ring someone else into their room.

The invitee is not on the allow-list and gets no right to use the service: the outbound call's answer URL
carries a single-use token, valid only for the number that was rung and only until it expires.
"""

from __future__ import annotations

import secrets
import time
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
