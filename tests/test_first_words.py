"""babelfish/core/first_words.py: a translator past its first clause waits while a voice synthesizes first
words, never longer than it may; nobody waits when no voice does."""

from __future__ import annotations

import threading
import time

from babelfish.core.first_words import FirstWords


def test_a_translator_waits_while_first_words_are_synthesized_and_no_longer() -> None:
    gate = FirstWords()
    assert gate.give_way(1.0) == 0.0 and not gate.speaking  # nobody speaks: no wait at all
    waited: list[float] = []
    with gate.synthesizing():
        with gate.synthesizing():  # two listeners' first words at once
            assert gate.speaking
            thread = threading.Thread(target=lambda: waited.append(gate.give_way(5.0)))
            thread.start()
            time.sleep(0.2)
        assert gate.speaking  # one is still being synthesized
        time.sleep(0.2)
    thread.join(2.0)
    assert not gate.speaking and 0.35 <= waited[0] < 2.0  # released when the last first piece was written
    with gate.synthesizing():
        assert 0.1 <= gate.give_way(0.1) < 1.0  # the translation's budget bounds the wait
    assert gate.give_way(0.0) == 0.0
