"""The operator's credential, and which browser pages may open the server's websockets.

What shows or changes live calls (``/rooms``, ``/captions``, ``/metrics``, ``/phone/links``) is for the
operator only: ``Authorization: Bearer <security.operator_token>`` (the scheme in any case), or
``?token=`` where a header cannot be sent (websockets from a browser, links). With no token set those
endpoints are off (403), never open. A browser sends ``Origin`` on every websocket and cross-site POST: one
that is not the server's own page is refused, so a page elsewhere cannot ride on a visitor's access.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import SecretStr
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from babelfish.config import logs
from babelfish.core import credentials
from babelfish.server.limits import RateLimiter
from babelfish.telephony.signature import bearer

if TYPE_CHECKING:
    from babelfish.config.settings import Settings

log = logging.getLogger(__name__)


def given_token(connection: HTTPConnection) -> str:
    """The credential a request or websocket offers: its bearer token, else its ``?token=``."""
    return bearer(connection.headers) or connection.query_params.get("token", "")


def token_matches(given: str, expected: str) -> bool:
    return credentials.same(given, expected)


class Guesses:
    """Wrong tokens per client address, on every route that takes one: after ``burst`` wrong tries a client
    gets one more try per ``1 / rate`` seconds, and until then 429, even with the right token (so a token
    cannot be guessed at a thousand tries a second); each wrong try is counted and logged (summarized)."""

    def __init__(self, rate: float = 1 / 6, burst: int = 10) -> None:
        self.limiter = RateLimiter(rate, burst)
        self.wrong = 0
        self._log = logs.Summarized(log)

    @staticmethod
    def client(connection: HTTPConnection) -> str:
        return connection.client.host if connection.client else "unknown"

    def locked_out(self, connection: HTTPConnection) -> JSONResponse | None:
        client = self.client(connection)
        if self.limiter.left(client) >= 1.0:
            return None
        retry = max(1, math.ceil(self.limiter.retry_after(client)))
        return JSONResponse({"error": "too many wrong tokens from this address: try again later"}, status_code=429,
                            headers={"Retry-After": str(retry)})

    def failed(self, connection: HTTPConnection) -> None:
        self.wrong += 1
        client = self.client(connection)
        self.limiter.allow(client)
        self._log.warning("wrong token from %s for %s (%d wrong so far)", client, connection.url.path, self.wrong)


def check_token(connection: HTTPConnection, expected: str | None, off: str,
                guesses: Guesses | None = None) -> JSONResponse | None:
    """None when ``connection`` carries ``expected``; else the refusal: 403 with ``off`` when no token is
    configured (the feature is off), 429 for an address that guessed wrong too often (``guesses``), 401 when
    the token is missing or wrong."""
    if not expected:
        return JSONResponse({"error": off}, status_code=403)
    if guesses is not None and (locked := guesses.locked_out(connection)) is not None:
        return locked
    given = given_token(connection)
    if not token_matches(given, expected):
        if guesses is not None and given:  # a guess (no token at all is a console page using its cookie)
            guesses.failed(connection)
        return JSONResponse({"error": "missing or wrong token"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_allowed(connection: HTTPConnection, public_url: str | None) -> bool:
    """A request without ``Origin`` (not from a browser page) passes; one with it must come from the server's
    own origin: ``public_url``'s, or without one the origin the request itself was sent to."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    if public_url:
        own = {_origin(public_url)}
    else:
        host = connection.headers.get("host", "")
        own = {f"http://{host}".lower(), f"https://{host}".lower()}
    return origin.strip().lower().rstrip("/") in own


class OperatorGuard:
    """The operator token check for HTTP endpoints and websockets."""

    OFF = "operator endpoints are off: set BABELFISH_SECURITY__OPERATOR_TOKEN"

    def __init__(self, token: Any, public_url: str | None) -> None:
        self.token: str | None = token.get_secret_value() if token is not None else None
        self.public_url = public_url
        self.guesses = Guesses()  # shared by every route that takes a token: the transcripts API too

    def refusal(self, connection: HTTPConnection) -> JSONResponse | None:
        """None for the operator from the server's own origin; else 403 (another site, or no token set) or
        401 (no or a wrong token)."""
        if not origin_allowed(connection, self.public_url):
            return JSONResponse({"error": "cross-origin request refused"}, status_code=403)
        return check_token(connection, self.token, self.OFF, self.guesses)


def refusal_reason(refused: JSONResponse) -> str:
    """A refusal's error text, for a websocket's close frame."""
    return str(json.loads(refused.body)["error"])


def ensure_token(settings: Settings) -> tuple[Settings, str]:
    """``settings`` with an operator token (a random one when none is set) and that token: for a server run
    in-process by ``babelfish call``, the demo and the benchmarks, which read its captions themselves."""
    token = settings.security.operator_token
    if token is not None:
        return settings, token.get_secret_value()
    value = secrets.token_urlsafe(24)
    security = settings.security.model_copy(update={"operator_token": SecretStr(value)})
    return settings.model_copy(update={"security": security}), value
