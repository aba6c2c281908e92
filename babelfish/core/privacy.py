"""What the server may show of a caller: phone numbers masked (transcripts, logs, ``/rooms``), key presses
never (a caller may type a PIN at the keypad)."""

from __future__ import annotations


def mask_number(number: str) -> str:
    """``447700900123`` -> ``44*******123``: enough to tell callers apart, not to ring them."""
    if len(number) <= 5 or not any(ch.isdigit() for ch in number):
        return number
    return number[:2] + "*" * (len(number) - 5) + number[-3:]
