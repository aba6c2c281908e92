"""Pairing callers into rooms and the prompts they hear (core/rooms.py, core/languages.py)."""

from __future__ import annotations

from babelfish.core import languages
from babelfish.core.rooms import Switchboard


def test_pairing_and_languages() -> None:
    board = Switchboard({"+447700900001": "en-US"}, ["de-DE", "en-GB"])
    a = board.answer("a", "4915100000001")
    b = board.answer("b", "4915100000002")
    c = board.answer("c", "447700900001")
    assert a.room is b.room and c.room is not a.room
    assert (a.language, b.language, c.language) == ("de-DE", "en-GB", "en-US")
    assert board.answer("a", "4915100000001") is a  # Vonage retried the webhook
    board.hang_up("b")
    board.requeue(a)  # c is waiting already: a joins c at once
    assert a.room is c.room and len(board.rooms) == 1


def test_prompts_speak_the_callers_language() -> None:
    assert languages.prompt("wait", "de-DE") == ("Bitte warten Sie, während wir Sie verbinden.", "de-DE")
    text, tag = languages.prompt("wait", "xx-YY")
    assert tag == "en-GB" and text.startswith("Please wait")
    assert languages.regional("de") == "de-DE" and languages.primary("en_GB") == "en"
