"""The Vonage websocket protocol: text events, binary 20 ms L16 frames, and the commands we may send."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from babelfish.core import audio

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN = 1013  # refused for now (server busy or restarting); the caller may call again

CONNECTED = "websocket:connected"
DTMF = "websocket:dtmf"
CLEARED = "websocket:cleared"
NOTIFY = "websocket:notify"

_RATE = re.compile(r"rate=(\d+)")


class ProtocolError(ValueError):
    """A websocket message that breaks the protocol; the reason goes into the close frame."""


@dataclass
class Event:
    """A text message from Vonage. ``fields`` holds everything else it carried (e.g. flattened headers)."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def digit(self) -> str | None:
        if self.name != DTMF:
            return None
        nested = self.fields.get("dtmf")
        if isinstance(nested, dict):
            value = nested.get("digit") or nested.get("digits")
        else:
            value = self.fields.get("digit") or self.fields.get("digits")
        return str(value) if value is not None else None


def parse_event(text: str) -> Event:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"text message is not JSON: {exc.msg}") from None
    except RecursionError:
        raise ProtocolError("text message is nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise ProtocolError("text message has no 'event' field")
    return Event(name=data.pop("event"), fields=data)


def content_rate(content_type: str | None, default: int) -> int:
    """``"audio/l16;rate=16000"`` -> 16000."""
    if not content_type:
        return default
    match = _RATE.search(content_type)
    if not match:
        raise ProtocolError(f"unsupported content-type {content_type!r}")
    rate = int(match.group(1))
    if rate not in audio.SUPPORTED_RATES:
        raise ProtocolError(f"unsupported sample rate {rate}")
    return rate


def clear_command() -> str:
    return json.dumps({"action": "clear"})


def connected_message(content_type: str, headers: dict[str, str]) -> str:
    """What Vonage sends first: the event, the content type, and the NCCO's headers flattened."""
    return json.dumps({**headers, "event": CONNECTED, "content-type": content_type})
