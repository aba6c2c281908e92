"""Long turns for ``babelfish bench latency``, and SimulEval's latency measures computed from what the
listener actually heard.

A long turn is several real recorded telephone prompts (Asterisk, 8 kHz) said one after the other with a
natural pause of 150-400 ms between them (seeded), 8 to 30 s in all: someone explaining something.

From the listener's side of the call (the frames the fake Vonage played to them) and the translated text:

- **StartOffset**: start of the source speech -> first translated frame heard.
- **EndOffset**: end of the source speech -> end of the translated speech heard.
- **LAAL** (length-adaptive average lagging, Papi et al. 2022, as SimulEval computes it for text):
  ``1/tau * sum_{i<=tau} (d_i - (i - 1) * |X| / max(|Y|, |Y*|))``, where ``|X|`` is the source duration,
  ``|Y|`` the words of the translation heard, ``|Y*|`` those of the reference translation, and ``tau`` the
  first word heard after the source ended. ``d_i``, the moment word ``i`` was heard, is read off the audio:
  the translation's words are spread evenly over the frames of translated speech that played (a synthetic
  voice speaks at an even rate), so the measure is computation-aware: every delay is wall-clock time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from babelfish.core import audio
from babelfish.devtools import corpus
from babelfish.devtools.bench.calls import speech_end
from babelfish.devtools.playout import Played

PAUSES_MS = (150, 400)
LENGTH_S = (8.0, 30.0)
RATE = 8000
VOICED_DBFS = -45.0  # a played frame at or above this level is translated speech, not line silence


@dataclass
class LongTurn:
    samples: np.ndarray  # at RATE
    text: str  # what the prompts say (their transcripts), in order
    prompts: int
    speech_start: float  # seconds from the start of ``samples`` to the first loud frame
    speech_end: float  # and to the last

    @property
    def duration(self) -> float:
        return self.speech_end - self.speech_start


def speech_start(samples: np.ndarray, rate: int, threshold_db: float = -40.0) -> float:
    """Seconds from the start of a clip to its first loud 20 ms block."""
    return samples.size / rate - speech_end(samples[::-1].copy(), rate, threshold_db)


def long_turns(clips: list[corpus.Clip], n: int, seed: int = 0) -> list[LongTurn]:
    """``n`` turns of 8-30 s, each a run of consecutive ``clips`` joined with a seeded pause between them."""
    rng = random.Random(seed)
    turns: list[LongTurn] = []
    i = 0
    while len(turns) < n and i < len(clips):
        target = rng.uniform(*LENGTH_S)
        parts: list[np.ndarray] = []
        texts: list[str] = []
        length = 0.0
        while i < len(clips) and length < target:
            samples, _ = audio.read_wav(clips[i].path, RATE)
            if parts:
                pause = np.zeros(RATE * rng.randint(*PAUSES_MS) // 1000, dtype=np.float32)
                parts.append(pause)
                length += pause.size / RATE
            parts.append(samples)
            texts.append(clips[i].text.strip())
            length += samples.size / RATE
            i += 1
        if length < LENGTH_S[0]:
            break
        joined = np.concatenate(parts)
        turns.append(LongTurn(joined, " ".join(texts), len(texts), speech_start(joined, RATE),
                              speech_end(joined, RATE)))
    return turns


def voiced_times(played: list[Played], since: float) -> list[float]:
    """Start times of the translated-speech frames played from ``since`` on."""
    times = []
    for p in played:
        if p.at < since:
            continue
        pcm = audio.pcm_to_float(p.frame)
        rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0
        if 20 * np.log10(rms + 1e-9) >= VOICED_DBFS:
            times.append(p.at)
    return times


def laal(delays: list[float], source_s: float, reference_words: int) -> float | None:
    """LAAL of word delays ``delays`` (seconds from the start of the source) for a source of ``source_s``."""
    if not delays:
        return None
    rate = source_s / max(len(delays), reference_words, 1)
    tau = next((i + 1 for i, d in enumerate(delays) if d >= source_s), len(delays))
    return float(sum(delays[i] - i * rate for i in range(tau)) / tau)


def offsets(frames: list[float], step: float, words: int, start: float, end: float,
            reference_words: int) -> dict[str, float | None]:
    """StartOffset, EndOffset and LAAL of one turn heard: ``frames`` the start times of its translated
    frames (``step`` seconds each), ``words`` in its translation; source speech from ``start`` to ``end``."""
    if not frames or not words:
        return {"start_offset_s": None, "end_offset_s": None, "laal_s": None}
    delays = [frames[min(len(frames) - 1, int(i * len(frames) / words))] - start for i in range(words)]
    return {"start_offset_s": frames[0] - start, "end_offset_s": frames[-1] + step - end,
            "laal_s": laal(delays, end - start, reference_words)}
