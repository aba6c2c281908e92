"""Vonage's playback buffer for one call, as the fake caller hears it: frames play one after another at 20 ms
each (faster at ``pace`` > 1), up to about 60 s queued (beyond that a frame is dropped, as Vonage does);
``clear`` drops what has not played yet; a ``notify`` is due once the audio queued before it has played."""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from babelfish.core import audio

log = logging.getLogger(__name__)

VONAGE_BUFFER_FRAMES = 3072  # about 60 s; Vonage drops audio beyond this


@dataclass
class Played:
    at: float  # monotonic time the frame starts playing to the caller
    frame: bytes


class Playout:
    def __init__(self, pace: float = 1.0) -> None:
        self.pace = pace
        self.played: list[Played] = []  # everything that played (or is scheduled to play) to the caller
        self.received_frames = 0
        self.cleared = 0
        self._starts: list[float] = []  # their start times, for bisecting
        self._clock = 0.0  # when the last queued frame ends
        self._notifies: list[tuple[float, dict[str, Any]]] = []

    @property
    def step(self) -> float:
        """Seconds one frame plays for."""
        return audio.FRAME_MS / 1000 / self.pace

    def start(self, at: float) -> None:
        self._clock = at

    def play(self, frame: bytes, now: float) -> None:
        queued = sum(1 for p in self.played[-VONAGE_BUFFER_FRAMES - 1 :] if p.at > now)
        if queued >= VONAGE_BUFFER_FRAMES:
            log.warning("playback buffer full: frame dropped")
            return
        self.received_frames += 1
        start = max(now, self._clock)
        self._clock = start + self.step
        self.played.append(Played(start, frame))
        self._starts.append(start)

    def clear(self, now: float) -> None:
        """Drop what has not started playing."""
        self.played = [p for p in self.played if p.at <= now]
        self._starts = [p.at for p in self.played]
        self._clock = now
        self.cleared += 1

    def notify(self, payload: dict[str, Any]) -> None:
        """Answer ``payload`` once what is queued now has played."""
        self._notifies.append((self._clock, payload))

    def due_notifies(self, now: float) -> list[dict[str, Any]]:
        due = [payload for at, payload in self._notifies if at <= now]
        self._notifies = [n for n in self._notifies if n[0] > now]
        return due

    def echo(self, n: int, at: float, delay_s: float) -> np.ndarray:
        """The ``n`` samples that played ``delay_s`` (at pace 1) before ``at``, sample-accurately on the
        playback timeline: what a speakerphone's microphone picks up."""
        step = self.step
        t = at - delay_s / self.pace
        lo = bisect.bisect_right(self._starts, t - step) - 1
        echo = np.zeros(n, dtype=np.float32)
        for p in self.played[max(lo, 0) :]:
            if p.at >= t + step:
                break
            offset = int(round((p.at - t) / step * n))
            samples = audio.pcm_to_float(p.frame)
            a, b = max(0, offset), min(n, offset + n)
            if b > a:
                echo[a:b] += samples[a - offset : b - offset]
        return echo

    def first_after(self, t: float) -> float | None:
        """Start time of the first frame played at or after ``t``."""
        for p in self.played:
            if p.at >= t:
                return p.at
        return None

    def heard(self, since: float, rate: int) -> np.ndarray:
        """What the caller heard from ``since`` on (silence where nothing played)."""
        if not self.played:
            return np.zeros(0, dtype=np.float32)
        per_frame = audio.frame_bytes(rate) // 2
        step = self.step
        end = max(p.at for p in self.played) - since + step
        out = np.zeros(int(end / step + 1) * per_frame, dtype=np.float32)
        for p in self.played:
            i = int(round((p.at - since) / step)) * per_frame
            out[i : i + per_frame] = audio.pcm_to_float(p.frame)[: out.size - i]
        return out
