"""Reading credentials a stranger may have made up (cookies, join links, socket tokens, bearer tokens): their
fields only when the whole value is printable ASCII of the expected shape, and comparisons in constant time
that never raise. ``hmac.compare_digest`` raises on non-ASCII text, ``"²".isdigit()`` is true but ``int("²")``
fails, and a lone surrogate cannot be encoded: each was a 500 for anyone who sent one."""

from __future__ import annotations

import hmac


def fields(value: object, count: int, max_length: int = 256) -> list[str] | None:
    """``value``'s ``count`` dot-separated fields, or None unless it is printable ASCII of that shape."""
    if not isinstance(value, str) or not value or len(value) > max_length or not value.isascii():
        return None
    if not value.isprintable():
        return None
    parts = value.split(".")
    return parts if len(parts) == count else None


def number(text: str) -> int | None:
    """``"1765000000"`` -> the number; None for anything but ASCII digits (``"²"`` included)."""
    return int(text) if text.isascii() and text.isdigit() else None


def same(given: object, expected: str) -> bool:
    """Whether ``given`` is ``expected``, compared in constant time; False (never an error) for anything else."""
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))
