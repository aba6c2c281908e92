"""Socket tokens: the proof a websocket belongs to a leg this server answered.

The answer webhook puts a token in the NCCO's websocket URI. It is an HMAC over the leg id and an expiry,
so it cannot be forged or moved to another leg, and it is single use: a socket that connected once cannot
be opened again with the same URI (a leaked URI or a replay gets nothing). Nothing is stored per token until
it is used; used ones are remembered only until they would have expired anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from babelfish.core import credentials


class TokenError(Exception):
    """A token that does not admit the socket; the reason goes into the close frame."""


class ReplayGuard:
    """Remembers single-use ids (token nonces, JWT ``jti``) until they expire; bounded in size."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._seen: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, key: str) -> bool:
        return key in self._seen

    def use(self, key: str, expires: float, now: float | None = None) -> None:
        """Mark ``key`` used; raises :class:`TokenError` if it was used before."""
        now = time.time() if now is None else now
        if key in self._seen:
            raise TokenError("already used (replay)")
        if len(self._seen) >= self.max_entries:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
            while len(self._seen) >= self.max_entries:  # all still valid: forget the soonest to expire
                self._seen.pop(min(self._seen, key=self._seen.__getitem__))
        self._seen[key] = expires

    def forget(self, key: str) -> None:
        """Let ``key`` be used again (its first use failed on our side, and a retry may carry it)."""
        self._seen.pop(key, None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SocketTokens:
    """Issues and checks ``<expiry>.<nonce>.<mac>`` tokens bound to a leg id."""

    def __init__(self, secret: bytes | None = None, ttl_s: float = 120.0) -> None:
        self.secret = secret or secrets.token_bytes(32)
        self.ttl_s = ttl_s
        self.used = ReplayGuard()

    def _mac(self, leg_id: str, expires: int, nonce: str) -> str:
        message = f"{leg_id}\n{expires}\n{nonce}".encode()
        return _b64(hmac.new(self.secret, message, hashlib.sha256).digest()[:24])

    def issue(self, leg_id: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl_s)
        nonce = _b64(secrets.token_bytes(12))
        return f"{expires}.{nonce}.{self._mac(leg_id, expires, nonce)}"

    def check(self, token: str, leg_id: str, now: float | None = None) -> tuple[str, int]:
        """Raise :class:`TokenError` unless ``token`` was issued for ``leg_id``, is unexpired and unused.
        Returns ``(nonce, expiry)`` for :meth:`consume` once the socket is admitted."""
        parts = credentials.fields(token, 3, max_length=200)
        if parts is None or (expires := credentials.number(parts[0])) is None:
            raise TokenError("malformed token")
        nonce, mac = parts[1], parts[2]
        if not credentials.same(mac, self._mac(leg_id, expires, nonce)):
            raise TokenError("token is not valid for this leg")
        if (time.time() if now is None else now) > expires:
            raise TokenError("token expired")
        if self.used.seen(nonce):
            raise TokenError("token already used (replay)")
        return nonce, expires

    def consume(self, nonce: str, expires: int) -> None:
        self.used.use(nonce, expires)
