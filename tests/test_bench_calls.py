"""The benches' turn-taking (babelfish/devtools/bench/calls.py): a turn is over once the server published its
record, not at the first quiet moment, so a translation that pauses between its pieces on a slow machine is
not taken for the next turn's first words."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from babelfish.devtools.bench.calls import speak_and_wait
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_call import Turn


class Listener:
    """Hears a translation in two pieces with a 1 s gap between them (longer than the bench's quiet 0.8 s)."""

    def __init__(self) -> None:
        self.heard: list[float] = []
        self.played: list[Any] = []  # frames, for the bench's underrun count (none here)
        self.pace = 1.0

    async def wait_heard(self, after: float, quiet_s: float, timeout: float) -> None:
        while not self.heard or time.monotonic() - self.heard[-1] < quiet_s:
            await asyncio.sleep(0.01)

    def first_heard_after(self, t: float) -> float | None:
        return next((at for at in self.heard if at >= t), None)


class Speaker:
    leg = "speaker"

    def __init__(self, listener: Listener, feed: CaptionFeed) -> None:
        self.listener, self.feed, self.pace = listener, feed, 1.0
        self.task: asyncio.Task[None] | None = None

    async def say(self, samples: np.ndarray, rate: int) -> Turn:
        started = time.monotonic()

        async def translate() -> None:
            for gap in (0.1, 1.0):  # the first piece, then the rest after a pause
                await asyncio.sleep(gap)
                self.listener.heard.append(time.monotonic())
            # published once it has played
            self.feed.events.append({"type": "utterance", "record": {"leg": self.leg}})

        self.task = asyncio.create_task(translate())
        return Turn(samples, started, started)


async def test_a_turn_ends_when_its_record_is_published_not_at_a_pause_inside_its_translation() -> None:
    silence = np.zeros(800, dtype=np.float32)
    for feed in (None, CaptionFeed("http://babelfish.invalid")):  # its events filled in as the server would
        listener = Listener()
        speaker = Speaker(listener, feed or CaptionFeed("http://babelfish.invalid"))
        await speak_and_wait(speaker, listener, silence, 8000, "hello", feed=feed)  # type: ignore[arg-type]
        if feed is None:  # paced by quiet alone: returns in the pause, before the translation is over
            assert len(listener.heard) == 1
            assert speaker.task is not None
            await speaker.task
        else:
            assert len(listener.heard) == 2 and feed.utterances(speaker.leg)
