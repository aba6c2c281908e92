"""Stage tests without a server, as Pipecat's ``run_test`` does for its pipelines: the legs of one room,
each a real :class:`LegSession` (real Silero segmenter, echo canceller, fan-out and playback) on engines
given by the test, with the playback writing into an in-memory ear instead of a socket. Frames go in
through :meth:`Room.say`, at a chosen pace; out come the typed caption events and, per leg, when each frame
it heard started playing."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from babelfish.config.settings import Settings
from babelfish.core import audio
from babelfish.core.events import CaptionHub, Event, UtteranceDone
from babelfish.core.rooms import Leg
from babelfish.core.rooms import Room as RoomState
from babelfish.core.utterance import Utterance
from babelfish.pipeline.playback import Playback
from babelfish.pipeline.protocols import Engines
from babelfish.pipeline.stream import LegSession


@dataclass
class Ear:
    """What one leg's far end received: audio frames (with when each starts playing) and commands."""

    frames: list[float] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)  # the frames themselves, in the order received
    commands: list[dict[str, Any]] = field(default_factory=list)

    def after(self, t: float) -> list[float]:
        return [at for at in self.frames if at >= t]


class Room:
    def __init__(self, settings: Settings, engines: Engines, languages: tuple[str, ...] = ("de-DE", "en-GB"),
                 rate: int = 16000) -> None:
        self.settings, self.engines, self.rate = settings, engines, rate
        self.hub = CaptionHub()
        self.events: list[Event] = []
        self.hub.listen(self.events.append)
        self.room = RoomState(id="room-1")
        self.legs: list[Leg] = []
        self.ears: dict[str, Ear] = {}
        for i, language in enumerate(languages):
            leg = Leg(id=f"leg-{i}", caller=f"caller-{i}", language=language, room=self.room)
            self.room.legs.append(leg)
            self.legs.append(leg)
            self.ears[leg.id] = Ear()

    def __getitem__(self, i: int) -> LegSession:
        session = self.legs[i].session
        assert session is not None
        return session

    async def __aenter__(self) -> Room:
        lead = self.settings.playback_lead_ms / 1000
        for leg in self.legs:
            ear = self.ears[leg.id]

            async def send_audio(frame: bytes, ear: Ear = ear) -> None:
                ear.frames.append(time.monotonic() + lead)  # about when the far end plays it
                ear.audio.append(frame)

            async def send_clear(ear: Ear = ear) -> None:
                ear.commands.append({"action": "clear"})

            playback = Playback(send_audio, send_clear, self.rate, lead_s=lead,
                                max_items=self.settings.turns.max_pending)
            leg.session = LegSession(leg, self.engines, self.hub, self.settings, self.rate, playback)
            leg.session.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(leg.session.close(drain_s=5) for leg in self.legs if leg.session is not None))

    async def say(self, i: int, samples: np.ndarray, rate: int, pace: float = 4.0,
                  then_silence_s: float = 1.0) -> float:
        """Leg ``i`` speaks ``samples`` (then is silent a moment), in 20 ms frames at ``pace`` times real
        time, as its socket would deliver them; returns when its first frame went in (monotonic)."""
        pcm = audio.float_to_pcm(audio.resample(samples, rate, self.rate))
        pcm += b"\x00" * int(then_silence_s * self.rate) * 2
        size = audio.frame_bytes(self.rate)
        started = time.monotonic()
        for n, i_byte in enumerate(range(0, len(pcm) - size + 1, size)):
            self[i].feed(pcm[i_byte : i_byte + size])
            delay = started + (n + 1) * audio.FRAME_MS / 1000 / pace - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        return started

    def utterances(self) -> list[Utterance]:
        return [e.record for e in self.events if isinstance(e, UtteranceDone)]

    async def wait_utterances(self, n: int, timeout: float = 20) -> list[Utterance]:
        async with asyncio.timeout(timeout):
            while len(self.utterances()) < n:
                await asyncio.sleep(0.02)
        return self.utterances()
