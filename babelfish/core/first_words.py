"""The first words a listener waits for go first.

On a machine with few cores, a voice synthesizing the opening of a translation (what its listener is waiting
for) and a translator writing the rest of a translation (whose listener already has its first clause) share
the cores, and the voice is late by what the translator took. So while a first piece is being synthesized,
translators past their first clause wait, a bounded time per translation (``translator.yield_to_voice_s``);
a translator still writing its first clause never waits. Within one process (engines on Ray Serve run in
their own).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class FirstWords:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._speaking = 0  # first pieces being synthesized
        self._free = threading.Event()
        self._free.set()

    @contextmanager
    def synthesizing(self) -> Iterator[None]:
        """Around the synthesis of a first piece (entered on the event loop; nothing here blocks)."""
        with self._lock:
            self._speaking += 1
            self._free.clear()
        try:
            yield
        finally:
            with self._lock:
                self._speaking -= 1
                if not self._speaking:
                    self._free.set()

    @property
    def speaking(self) -> bool:
        """A first piece is being synthesized now."""
        return not self._free.is_set()

    def give_way(self, up_to_s: float) -> float:
        """Called by a translator between tokens (in its worker thread): wait while a first piece is being
        synthesized, at most ``up_to_s``; returns the seconds waited."""
        if up_to_s <= 0 or self._free.is_set():
            return 0.0
        started = time.monotonic()
        self._free.wait(up_to_s)
        return time.monotonic() - started


FIRST_WORDS = FirstWords()  # one per process: the voices and translators share its cores
