"""Who may use the browser phone: signed join links, and each browser leg's own secret.

A **join link** is ``<public_url>/phone?link=<token>``, issued by the operator (``babelfish phone link`` or
``POST /phone/links``) for one room and one language. The token is ``room.language.expires.id.mac``: the
MAC is HMAC-SHA256, keyed with ``phone.link_secret`` (or, when unset, a key derived from
``security.operator_token``), over the room, the language, the expiry and the link's id. Nobody without the
key can make or change one; changing the key revokes every link issued. A link may be used by any number of
joins until it expires (one link per room invitation), so share it as you would a room's key; it names its
room code in the clear. ``DELETE /phone/links/{id}`` (or ``babelfish phone revoke ID``) revokes one link
before its time: the id stays on a revoked list that every join checks, kept in ``data_dir`` (so it outlives
a restart) until the link would have expired.

A **leg secret** proves a browser is the one that joined a leg: ``/phone/events`` streams a leg's captions
only to whoever offers it. It is an HMAC of the leg id with a key made for this process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from babelfish.core import credentials

if TYPE_CHECKING:
    from babelfish.config.settings import Settings

log = logging.getLogger(__name__)

BROWSER_CALLER = "browser"  # the caller of every browser leg
ROOM_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")  # \Z, not $: "4711\n" is not a room code
LINK_ID = re.compile(r"[0-9a-f]{16}\Z")
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?\Z")
MIN_TTL_S = 60.0
MAX_TTL_S = 30 * 86400.0  # a link lives at most this long (and a revocation is kept no longer)
MAX_REVOKED = 10_000
DERIVE_LABEL = b"babelfish phone links"


class LinkError(Exception):
    """A join link that does not admit: malformed, forged or tampered with, expired or revoked."""


@dataclass(frozen=True)
class JoinLink:
    id: str
    room: str  # the room code the link joins
    language: str  # the language of whoever joins with it
    expires: float  # Unix time


def link_key(settings: Settings) -> bytes | None:
    """The join links' HMAC key: ``phone.link_secret``, else derived from ``security.operator_token``;
    None when neither is set (no links can be issued, and none admits)."""
    if settings.phone.link_secret is not None:
        return settings.phone.link_secret.get_secret_value().encode()
    if settings.security.operator_token is not None:
        token = settings.security.operator_token.get_secret_value().encode()
        return hmac.new(token, DERIVE_LABEL, hashlib.sha256).digest()
    return None


NO_KEY = ("join links need a key: set BABELFISH_PHONE__LINK_SECRET (or BABELFISH_SECURITY__OPERATOR_TOKEN, "
          "from which one is derived)")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class PhoneLinks:
    """Issues and checks join links; keeps the revoked ones (bounded, in ``revoked_path`` when given)."""

    def __init__(self, key: bytes | None, *, revoked_path: Path | None = None) -> None:
        self.key = key
        self.revoked_path = revoked_path
        self._revoked: dict[str, float] = {}  # link id -> when it would have expired
        self._known: dict[str, float] = {}  # link id -> expiry, of links issued or seen here (bounded)
        self._mtime: int | None = None  # of revoked_path when last read
        self._load()

    @classmethod
    def from_settings(cls, settings: Settings, *, keep_revoked: bool = True) -> PhoneLinks:
        path = settings.data_dir / "phone-links-revoked.json" if keep_revoked else None
        return cls(link_key(settings), revoked_path=path)

    def _mac(self, room: str, language: str, expires: int, link_id: str) -> str:
        assert self.key is not None
        message = "\n".join(("babelfish join link v1", room, language, str(expires), link_id)).encode()
        return _b64(hmac.new(self.key, message, hashlib.sha256).digest())

    def issue(self, room: object, language: str, ttl_s: float, *, now: float | None = None) -> tuple[str, JoinLink]:
        """A new link's token and what it says. Raises ValueError for a bad room (anything a client sent),
        language or lifetime, or when there is no key."""
        if self.key is None:
            raise ValueError(NO_KEY)
        if not isinstance(room, str) or not ROOM_CODE.match(room):
            raise ValueError("room code: 1-32 letters, digits, '-' or '_'")
        if not isinstance(language, str) or not LANGUAGE.match(language):
            raise ValueError("language: a tag such as fr-FR")
        if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
            raise ValueError(f"ttl: {MIN_TTL_S:g} to {MAX_TTL_S:g} seconds")
        expires = int((time.time() if now is None else now) + ttl_s)
        link = JoinLink(id=secrets.token_hex(8), room=room, language=language, expires=float(expires))
        token = ".".join((room, language, str(expires), link.id, self._mac(room, language, expires, link.id)))
        self._remember(link)
        return token, link

    def check(self, token: object, *, now: float | None = None) -> JoinLink:
        """The link ``token`` stands for, if it admits now; else :class:`LinkError` saying why."""
        if self.key is None:
            raise LinkError("join links are off on this server (no link key)")
        parts = credentials.fields(token, 5)
        if parts is None or (expiry := credentials.number(parts[2])) is None or not LINK_ID.fullmatch(parts[3]):
            raise LinkError("malformed join link")
        room, language, _, link_id, mac = parts
        if not credentials.same(mac, self._mac(room, language, expiry, link_id)):
            raise LinkError("invalid join link (tampered with, forged, or its key has changed)")
        if expiry <= (time.time() if now is None else now):
            raise LinkError("this join link has expired: ask for a new one")
        self._load()
        if link_id in self._revoked:
            raise LinkError("this join link has been revoked")
        link = JoinLink(id=link_id, room=room, language=language, expires=float(expiry))
        self._remember(link)
        return link

    def _remember(self, link: JoinLink) -> None:
        self._known.pop(link.id, None)
        self._known[link.id] = link.expires
        while len(self._known) > MAX_REVOKED:
            del self._known[next(iter(self._known))]

    def revoke(self, link_id: str, *, expires: float | None = None, now: float | None = None) -> float:
        """Put ``link_id`` on the revoked list until the link expires (``expires``, else as issued or seen
        here, else after the longest a link lives); returns that time. Raises ValueError for a malformed
        id, or when the list is full (change the key then)."""
        if not LINK_ID.match(link_id):
            raise ValueError("a link id is 16 hex digits")
        now = time.time() if now is None else now
        until = expires if expires is not None else self._known.get(link_id, now + MAX_TTL_S)
        self._load()
        self._forget_expired(now)
        if link_id not in self._revoked and len(self._revoked) >= MAX_REVOKED:
            raise ValueError(f"{MAX_REVOKED} links are revoked already: change phone.link_secret to revoke all")
        self._revoked[link_id] = max(until, self._revoked.get(link_id, 0.0))
        self._save()
        return self._revoked[link_id]

    def revoked(self, link_id: str) -> bool:
        return link_id in self._revoked

    def _forget_expired(self, now: float) -> None:
        for link_id in [i for i, until in self._revoked.items() if until <= now]:
            del self._revoked[link_id]

    def _load(self) -> None:
        """Merge the revoked list kept in ``revoked_path`` (by this server or ``babelfish phone revoke``)
        when the file changed since last read; a revocation is never dropped before its time."""
        if self.revoked_path is None:
            return
        try:
            mtime = self.revoked_path.stat().st_mtime_ns
        except OSError:
            return
        if mtime == self._mtime:
            return
        try:
            data = json.loads(self.revoked_path.read_text())
            for key, until in data.items():
                if LINK_ID.match(str(key)):
                    self._revoked[str(key)] = max(float(until), self._revoked.get(str(key), 0.0))
            self._mtime = mtime
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.error("revoked join links unreadable (%s): %s", self.revoked_path, exc)
        self._forget_expired(time.time())

    def _save(self) -> None:
        if self.revoked_path is None:
            return
        try:
            self.revoked_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.revoked_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._revoked))
            os.replace(tmp, self.revoked_path)
            self._mtime = self.revoked_path.stat().st_mtime_ns
        except OSError as exc:
            log.error("could not keep the revoked join links in %s (revoked until restart): %s",
                      self.revoked_path, exc)


class LegSecrets:
    """Each browser leg's secret: an HMAC of its id with a random key of this process (nothing stored)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def issue(self, leg_id: str) -> str:
        return _b64(hmac.new(self._key, leg_id.encode(), hashlib.sha256).digest())

    def matches(self, leg_id: str, given: str) -> bool:
        return credentials.same(given, self.issue(leg_id))
