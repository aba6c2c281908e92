"""Vonage Voice API webhooks: the answer request, call events, and the NCCO we reply with.

The NCCO is built with the ``vonage-voice`` SDK's own pydantic models, so what we send is what Vonage's
SDK considers valid.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from vonage_voice.models.common import WebsocketAuthorization
from vonage_voice.models.connect_endpoints import WebsocketEndpoint
from vonage_voice.models.input_types import Dtmf
from vonage_voice.models.ncco import Connect, Input, Talk

_PHONE = re.compile(r"[1-9]\d{6,14}\Z")  # \Z, not $: no trailing newline

# Statuses Vonage documents for the event webhook; others are accepted and logged.
KNOWN_STATUSES = frozenset(
    "started ringing answered busy cancelled unanswered disconnected rejected failed human machine timeout "
    "completed record input transfer".split()
)
ENDED_STATUSES = frozenset({"completed", "disconnected", "busy", "cancelled", "unanswered", "rejected",
                            "failed", "timeout"})


class WebhookError(ValueError):
    """A webhook we cannot act on; carries a message fit for a 400 reply."""


class AnswerRequest(BaseModel):
    """The fields of the answer webhook we use (GET query or POST JSON body); others are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: str = Field(alias="from", min_length=1, max_length=64)
    to: str = Field(min_length=1, max_length=256)
    uuid: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    conversation_uuid: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")

    @field_validator("from_", "to")
    @classmethod
    def _strip_plus(cls, value: str) -> str:
        return value.strip().lstrip("+")


class CallEvent(BaseModel):
    """An event webhook body. ``human``/``machine`` events carry ``call_uuid`` instead of ``uuid``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    status: str = Field(min_length=1, max_length=64)
    uuid: str | None = Field(None, max_length=128)
    call_uuid: str | None = Field(None, max_length=128)
    conversation_uuid: str | None = Field(None, max_length=128)
    direction: str | None = None
    timestamp: str | None = None
    from_: str | None = Field(None, alias="from")
    to: str | None = None

    @property
    def leg_id(self) -> str | None:
        return self.uuid or self.call_uuid


class InputResult(BaseModel):
    """What an NCCO ``input`` action posts to its ``eventUrl``: the digits pressed (old and new shapes)."""

    model_config = ConfigDict(extra="ignore")

    uuid: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    conversation_uuid: str | None = Field(None, max_length=128)
    dtmf: str | dict[str, Any] | None = None
    timed_out: bool = False

    @property
    def digits(self) -> str:
        raw = self.dtmf.get("digits") if isinstance(self.dtmf, dict) else self.dtmf
        return "".join(ch for ch in str(raw or "") if ch in "0123456789*#")[:32]

    @property
    def timed_out_without_digits(self) -> bool:
        nested = isinstance(self.dtmf, dict) and bool(self.dtmf.get("timed_out"))
        return (self.timed_out or nested) and not self.digits


def parse(model: type[BaseModel], data: Any) -> Any:
    """Validate webhook ``data`` into ``model`` or raise :class:`WebhookError` with a readable message."""
    if not isinstance(data, dict):
        raise WebhookError("expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
        )
        raise WebhookError(problems) from None


def websocket_uri(base_url: str, leg_id: str, token: str | None = None) -> str:
    """``https://host`` -> ``wss://host/socket?leg=...&token=...`` (http -> ws)."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    query = {"leg": leg_id} if token is None else {"leg": leg_id, "token": token}
    return f"{base}/socket?{urlencode(query)}"


def answer_ncco(
    *,
    greetings: list[tuple[str, str]],
    socket_uri: str,
    sample_rate: int,
    headers: dict[str, str],
    caller_id: str,
    event_url: str,
    vonage_auth: bool = False,
    hold: tuple[str, str, int] | None = None,
) -> list[dict[str, Any]]:
    """Greet the caller (each ``(text, language)`` in turn), then connect the call to our websocket for this
    leg. With ``vonage_auth`` Vonage signs the websocket upgrade with its JWT (endpoint ``authorization:
    {"type": "vonage"}``). With ``hold`` (text, language, times) Vonage says that notice, after the socket,
    should the socket drop: the call stays up while another server takes it over (a transfer replaces the
    rest of the NCCO)."""
    talks = [Talk(text=text, language=language) for text, language in greetings]
    endpoint = WebsocketEndpoint(uri=socket_uri, contentType=f"audio/l16;rate={sample_rate}", headers=headers,
                                 authorization=WebsocketAuthorization(type="vonage") if vonage_auth else None)
    if _PHONE.match(caller_id):
        connect = Connect(endpoint=[endpoint], from_=caller_id, eventType="synchronous", eventUrl=[event_url])
    else:
        connect = Connect(endpoint=[endpoint], randomFromNumber=True, eventType="synchronous",
                          eventUrl=[event_url])
    if hold is None:
        return _dump(*talks, connect)
    text, language, times = hold
    return _dump(*talks, connect, Talk(text=text, language=language, loop=max(1, times)))


def _dump(*actions: BaseModel) -> list[dict[str, Any]]:
    return [action.model_dump(by_alias=True, exclude_none=True, mode="json") for action in actions]


def talk_ncco(prompts: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Say each ``(text, language)`` and end the call (a refusal, a goodbye)."""
    return _dump(*(Talk(text=text, language=language) for text, language in prompts))


def menu_ncco(prompts: list[tuple[str, str]], event_url: str, *, max_digits: int = 1, timeout_s: int = 6,
              submit_on_hash: bool = False) -> list[dict[str, Any]]:
    """Say each ``(text, language)`` (a key press interrupts), then collect DTMF digits; Vonage posts them
    to ``event_url`` and plays the NCCO we answer with."""
    talks = [Talk(text=text, language=language, bargeIn=True) for text, language in prompts]
    collect = Input(type=["dtmf"], dtmf=Dtmf(maxDigits=max_digits, timeOut=timeout_s, submitOnHash=submit_on_hash),
                    eventUrl=[event_url])
    return _dump(*talks, collect)
