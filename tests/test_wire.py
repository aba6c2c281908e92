"""Vonage's websocket events and webhook bodies (telephony/wire.py, telephony/vonage.py)."""

from __future__ import annotations

import json

import pytest

from babelfish.telephony import vonage, wire


def test_wire_events() -> None:
    event = wire.parse_event(json.dumps({"event": "websocket:dtmf", "digit": "5", "duration": 260}))
    assert event.digit == "5"
    nested = wire.parse_event(json.dumps({"event": "websocket:dtmf", "dtmf": {"digit": "#"}}))
    assert nested.digit == "#"
    connected = wire.parse_event(wire.connected_message("audio/l16;rate=8000", {"leg": "x"}))
    assert connected.name == wire.CONNECTED and connected.fields["leg"] == "x"
    assert wire.content_rate(connected.fields["content-type"], 16000) == 8000
    for bad in ("nope", "[]", json.dumps({"event": 3})):
        with pytest.raises(wire.ProtocolError):
            wire.parse_event(bad)
    with pytest.raises(wire.ProtocolError):
        wire.content_rate("audio/l16;rate=44100", 16000)


def test_answer_request_validation() -> None:
    ok = vonage.parse(vonage.AnswerRequest, {"from": "+4915100000001", "to": "447700900000", "uuid": "u-1",
                                             "conversation_uuid": "CON-1", "extra": "ignored"})
    assert ok.from_ == "4915100000001"
    with pytest.raises(vonage.WebhookError, match="conversation_uuid"):
        vonage.parse(vonage.AnswerRequest, {"from": "1", "to": "2", "uuid": "u"})
    assert vonage.websocket_uri("https://example.org/", "abc") == "wss://example.org/socket?leg=abc"
