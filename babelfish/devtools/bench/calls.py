"""What the latency and load benchmarks share: a real server with the real engines, fake-Vonage calls at
real-time pace, and the arithmetic of what a caller experiences."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from babelfish.core import audio
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_call import FakeCall

GERMAN_LINES = [
    "Guten Tag, hier ist das Büro von Frau Berger.",
    "Können Sie mir bitte Ihre Nummer noch einmal sagen?",
    "Ich rufe wegen der Rechnung vom letzten Monat an.",
    "Das Treffen ist am Dienstag um zehn Uhr.",
    "Vielen Dank, das hilft mir sehr.",
    "Leider ist die Leitung gerade besetzt.",
]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


def speech_end(samples: np.ndarray, rate: int, threshold_db: float = -40.0) -> float:
    """Seconds from the start of a clip to the end of its last loud 20 ms block: where the talker stops."""
    block = rate // 50
    n = samples.size // block
    if n == 0:
        return samples.size / rate
    blocks = samples[: n * block].reshape(n, block)
    level = 20 * np.log10(np.sqrt(np.mean(blocks.astype(np.float64) ** 2, axis=1)) + 1e-9)
    loud = np.flatnonzero(level > threshold_db)
    return (loud[-1] + 1) * block / rate if loud.size else samples.size / rate


def german_clips(directory: Path) -> list[tuple[np.ndarray, int, str]]:
    """German speech for the German side of a conversation, synthesized with espeak-ng: no recording of
    German sentences ships in any package reachable here (said in every report that uses it)."""
    clips = []
    for i, line in enumerate(GERMAN_LINES):
        path = directory / f"de-{i}.wav"
        if not path.exists():
            subprocess.run(["espeak-ng", "-v", "de", "-s", "150", "-w", str(path), line], check=True)
        samples, rate = audio.read_wav(path)
        clips.append((samples, rate, line))
    return clips


def scratch_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "babelfish-bench"
    path.mkdir(exist_ok=True)
    return path


@dataclass
class Measured:
    """One utterance as the listener experienced it."""

    speaker: str
    text: str
    speech_end: float  # monotonic time the talker stopped (energy-based, from the clip)
    heard_at: float | None  # first translated frame played to the listener
    underruns: int = 0
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def latency(self) -> float | None:
        return None if self.heard_at is None else self.heard_at - self.speech_end


async def speak_and_wait(speaker: FakeCall, listener: FakeCall, samples: np.ndarray, rate: int, text: str,
                         quiet_s: float = 0.8, while_speaking: bool = False,
                         feed: CaptionFeed | None = None) -> Measured:
    """One turn: speak, then wait until the translation has played out to the listener. With
    ``while_speaking`` (simultaneous interpretation) a translation heard before the speaker stopped counts,
    and the latency is negative. With ``feed``, also until the server has published the turn's record (it
    does once the translation has played): on a slow machine a translation can pause longer than
    ``quiet_s`` between its pieces, and the next turn must not start, and take that translation's rest
    for its own first words, before it is over."""
    before = len(feed.utterances(speaker.leg)) if feed is not None else 0
    turn = await speaker.say(samples, rate)
    end = turn.started + speech_end(samples, rate) / speaker.pace
    await listener.wait_heard(after=end, quiet_s=quiet_s, timeout=30)
    if feed is not None:
        await feed.wait_utterances(before + 1, timeout=30, leg=speaker.leg)
        await listener.wait_heard(after=end, quiet_s=quiet_s, timeout=30)  # its last frames play out
    heard = listener.first_heard_after(turn.started if while_speaking else end)
    return Measured(speaker=speaker.leg, text=text, speech_end=end, heard_at=heard,
                    underruns=underruns(listener, heard))


def underruns(listener: FakeCall, since: float | None) -> int:
    """Gaps inside one translation's playback: the next audio was not there when the last frame ended."""
    if since is None:
        return 0
    played = [p.at for p in listener.played if p.at >= since]
    step = audio.FRAME_MS / 1000 / listener.pace
    gaps = [b - a for a, b in zip(played, played[1:], strict=False) if b - a > step * 1.5]
    # a gap longer than 1.5 s is the pause before the next utterance, not an underrun
    return sum(1 for g in gaps if g < 1.5)


def attach_records(measured: list[Measured], feed: CaptionFeed) -> None:
    """Match server-side utterance records to the turns (by speaker, in order)."""
    by_leg: dict[str, list[dict[str, Any]]] = {}
    for record in feed.utterances():
        by_leg.setdefault(record["leg"], []).append(record)
    for m in measured:
        records = by_leg.get(m.speaker, [])
        # the record whose speech ended closest to the turn's end
        if records:
            best = min(records, key=lambda r: abs(r["ended_at"] - (m.speech_end - time.monotonic() + time.time())))
            m.record = best


def stage_summary(measured: list[Measured]) -> dict[str, float]:
    stages: dict[str, list[float]] = {}
    for m in measured:
        for key, value in m.record.get("latencies", {}).items():
            stages.setdefault(key, []).append(value)
    return {k: round(statistics.median(v), 3) for k, v in stages.items()}


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
