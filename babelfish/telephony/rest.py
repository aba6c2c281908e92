"""Vonage Voice REST calls the server makes: place an outbound call, speak into a call, move a call to a
new NCCO, hang up.

Requests are authenticated with the application's JWT (RS256, signed with the application's private key)
made by ``vonage-jwt``, and request bodies are built with ``vonage-voice``'s own models. The transport is
``httpx`` rather than the ``vonage`` SDK's client: that client is synchronous (it would block the event loop
or need a thread per request) and always builds ``https://{host}`` URLs, so it cannot be pointed at a local
fake of the API, which every test here needs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
from vonage_jwt import JwtClient
from vonage_voice.models import CreateCallRequest, CreateCallResponse, TtsStreamOptions

from babelfish.config.settings import ConfigError, Settings

__all__ = ["ConfigError", "DEFAULT_API_URL", "VonageApiError", "VonageRest", "read_private_key", "rest_client"]

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.nexmo.com"


class VonageApiError(RuntimeError):
    """A Vonage REST call failed; carries the HTTP status and Vonage's explanation."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def read_private_key(value: str) -> str:
    """The private key itself (PEM text) or the path of a file holding it."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(f"Vonage private key: {value!r} is neither PEM text nor a readable file")
    key = path.read_text().strip()
    if not key.startswith("-----BEGIN"):
        raise ConfigError(f"Vonage private key: {path} does not hold a PEM key")
    return key


class VonageRest:
    """The Voice API calls babelfish makes, against ``api_url`` (Vonage's, or a fake's in tests)."""

    def __init__(self, application_id: str, private_key: str, api_url: str = DEFAULT_API_URL, *,
                 timeout: float = 10.0) -> None:
        if not application_id:
            raise ConfigError("Vonage application id is not set (BABELFISH_VONAGE__APPLICATION_ID)")
        try:
            self._jwt = JwtClient(application_id, read_private_key(private_key))
            self._jwt.generate_application_jwt()  # a key that cannot sign fails here, at startup
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"Vonage private key cannot sign a JWT: {exc}") from exc
        self.application_id = application_id
        self.api_url = api_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.api_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    def token(self) -> str:
        token = self._jwt.generate_application_jwt()
        return token.decode() if isinstance(token, bytes) else token

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, json=body,
                                                headers={"Authorization": f"Bearer {self.token()}"})
        except httpx.HTTPError as exc:
            raise VonageApiError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json()
                reason = detail.get("title") or detail.get("error_title") or detail.get("detail") or detail
            except ValueError:
                reason = response.text[:200]
            raise VonageApiError(f"{method} {path}: HTTP {response.status_code}: {reason}", response.status_code)
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {"data": data}

    async def create_call(self, to: str, from_: str, answer_url: str, event_url: str, *,
                          ringing_timer: int | None = 45) -> CreateCallResponse:
        """``POST /v1/calls``: phone ``to`` from our number; Vonage fetches the NCCO from ``answer_url``
        once they answer."""
        request = CreateCallRequest(
            to=[{"type": "phone", "number": to.lstrip("+")}], from_={"type": "phone", "number": from_.lstrip("+")},
            answer_url=[answer_url], event_url=[event_url], ringing_timer=ringing_timer,
        )
        data = await self._request("POST", "/v1/calls", request.model_dump(by_alias=True, exclude_none=True,
                                                                            mode="json"))
        log.info("outbound call to %s placed: %s", to, data.get("uuid"))
        return CreateCallResponse.model_validate(data)

    async def talk(self, uuid: str, text: str, language: str, *, style: int | None = None,
                   premium: bool | None = None) -> None:
        """``PUT /v1/calls/{uuid}/talk``: Vonage speaks ``text`` into the call."""
        options = TtsStreamOptions(text=text, language=language, style=style, premium=premium)
        await self._request("PUT", f"/v1/calls/{uuid}/talk",
                            options.model_dump(by_alias=True, exclude_none=True, mode="json"))

    async def stop_talk(self, uuid: str) -> None:
        """``DELETE /v1/calls/{uuid}/talk``: stop what Vonage is speaking into the call (barge-in)."""
        await self._request("DELETE", f"/v1/calls/{uuid}/talk")

    async def transfer(self, uuid: str, ncco: list[dict[str, Any]]) -> None:
        """``PUT /v1/calls/{uuid}`` with ``transfer``: the call leaves what it is doing and runs ``ncco``
        (how a survivor takes over the calls of a lost server)."""
        await self._request("PUT", f"/v1/calls/{uuid}",
                            {"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}})

    async def hang_up(self, uuid: str) -> None:
        """``PUT /v1/calls/{uuid}`` with ``hangup``."""
        await self._request("PUT", f"/v1/calls/{uuid}", {"action": "hangup"})


def rest_client(settings: Settings) -> VonageRest | None:
    """The Vonage REST client when an application is configured. Settings that need it without it (configured
    invitations) fail here, at startup, with the setting to fix."""
    vonage_settings = settings.vonage
    if vonage_settings.application_id and vonage_settings.private_key:
        return VonageRest(vonage_settings.application_id, vonage_settings.private_key, vonage_settings.api_url)
    if vonage_settings.application_id or vonage_settings.private_key:
        raise ConfigError("set both BABELFISH_VONAGE__APPLICATION_ID and BABELFISH_VONAGE__PRIVATE_KEY")
    if settings.access.invites:
        raise ConfigError("access.invites rings people through Vonage's REST API: set "
                          "BABELFISH_VONAGE__APPLICATION_ID and BABELFISH_VONAGE__PRIVATE_KEY")
    return None
