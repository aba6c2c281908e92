"""Vonage's signed webhooks and signed websocket upgrades.

With signed webhooks on, Vonage sends ``Authorization: Bearer <JWT>`` on every webhook: HS256 with the
account's signature secret, claims ``iat, jti, iss="Vonage", api_key, application_id, payload_hash``. The
``payload_hash`` (required) is the SHA-256 hex of the body (POST) or of the query parameters serialised as compact JSON
in the order received (GET). A request is genuine when the JWT verifies, is fresh, its hash matches what
arrived and its ``jti`` was not seen before: anyone can reach a public webhook, only Vonage knows the secret,
and a captured request sent again is refused.

:func:`signed` wraps any Starlette webhook handler with that check (answer, event, and menu input webhooks).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from babelfish.telephony.tokens import ReplayGuard

log = logging.getLogger(__name__)

ISSUER = "Vonage"
CLOCK_SKEW_S = 60.0  # an iat this far in the future is tolerated (clocks drift), beyond it refused

Handler = Callable[[Request], Awaitable[Response]]


class SignatureError(Exception):
    """A request that does not prove it comes from Vonage; ``reason`` is safe to log and to reply with."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def bearer(headers: Any) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def verify_token(token: str, secret: str, max_age_s: float, *, application_id: str | None = None,
                 now: float | None = None) -> dict[str, Any]:
    """The claims of a Vonage-signed JWT, or :class:`SignatureError`: HS256 with ``secret``, issued by
    Vonage no more than ``max_age_s`` ago (and not in the future), for ``application_id`` when given."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"verify_iat": False, "verify_exp": True, "verify_nbf": True})
    except jwt.InvalidSignatureError:
        raise SignatureError("signature does not verify") from None
    except jwt.PyJWTError as exc:
        raise SignatureError(f"invalid token: {exc}") from None
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise SignatureError("token has no iat")
    now = time.time() if now is None else now
    if now - iat > max_age_s:
        raise SignatureError(f"token is stale (issued {now - iat:.0f} s ago)")
    if iat - now > CLOCK_SKEW_S:
        raise SignatureError("token is issued in the future")
    if claims.get("iss") != ISSUER:
        raise SignatureError("token is not issued by Vonage")
    if application_id is not None and claims.get("application_id") != application_id:
        raise SignatureError("token names another application")
    return claims


def query_hashes(items: list[tuple[str, str]]) -> set[str]:
    """SHA-256 hex of query parameters as compact JSON in received order (with and without escaping non-ASCII,
    which describe the same parameters)."""
    params = dict(items)
    return {hashlib.sha256(json.dumps(params, separators=(",", ":"), ensure_ascii=ascii).encode()).hexdigest()
            for ascii in (True, False)}


class WebhookVerifier:
    """Checks that a webhook request was signed by Vonage for exactly what it carries, and only once."""

    def __init__(self, secret: str, max_age_s: float = 300.0, application_id: str | None = None) -> None:
        self.secret = secret
        self.max_age_s = max_age_s
        self.application_id = application_id
        self.seen = ReplayGuard()  # jti of the tokens accepted, until they would be too old anyway

    async def verify(self, request: Request) -> dict[str, Any]:
        token = bearer(request.headers)
        if token is None:
            raise SignatureError("missing Authorization: Bearer token")
        claims = verify_token(token, self.secret, self.max_age_s, application_id=self.application_id)
        expected = claims.get("payload_hash")
        if expected is None:  # Vonage always signs what it sends: a token without it could carry any body
            raise SignatureError("token has no payload_hash")
        if not isinstance(expected, str):
            raise SignatureError("payload_hash is not a string")
        body = await request.body()
        query = request.query_params.multi_items()
        if request.method in ("GET", "HEAD", "DELETE") and (query or not body):
            # the parameters are in the query, and the hash must cover them: the empty body's hash would
            # otherwise vouch for any query at all
            actual = query_hashes(query) if query else {hashlib.sha256(b"").hexdigest(), *query_hashes([])}
        else:
            actual = {hashlib.sha256(body).hexdigest()}
        if expected.lower() not in actual:
            raise SignatureError("payload_hash does not match the request")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise SignatureError("token has no jti")
        if self.seen.seen(jti):
            raise SignatureError("token was used before (a replayed request)")
        iat = float(claims["iat"])
        self.seen.use(jti, max(iat, time.time()) + self.max_age_s + CLOCK_SKEW_S)
        return claims


def signed(verifier: Callable[[], WebhookVerifier | None],
           on_reject: Callable[[Request, str], None] | None = None) -> Callable[[Handler], Handler]:
    """Decorator for a webhook handler: requests that fail ``verifier()`` get 401 and are logged (or passed
    to ``on_reject``, which logs them); the
    claims of those that pass are in ``request.state.vonage_claims``. ``verifier`` is called per request
    and may return None (signing off)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: Request) -> Response:
            current = verifier()
            if current is not None:
                try:
                    request.state.vonage_claims = await current.verify(request)
                except SignatureError as exc:
                    if on_reject is not None:
                        on_reject(request, exc.reason)
                    else:
                        client = request.client.host if request.client else "?"
                        log.warning("webhook %s %s from %s rejected: %s", request.method, request.url.path,
                                    client, exc.reason)
                    return JSONResponse({"error": f"unauthorized: {exc.reason}"}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
                jti = request.state.vonage_claims["jti"]
                try:
                    response = await handler(request)
                except BaseException:
                    current.seen.forget(jti)
                    raise
                if response.status_code >= 500:
                    current.seen.forget(jti)  # Vonage retries a failed webhook; its retry must not be refused
                return response
            return await handler(request)

        return checked

    return wrap
