"""``babelfish bench turns``: where does the end-of-turn decision cut a turn with a pause inside a sentence?

Real recorded telephone prompts (Asterisk, 8 kHz), each one sentence (no sentence punctuation before its
end), are opened at their quietest point between 30 % and 70 % of their length, most likely a gap between
two words, and a pause of 150-900 ms is put there: a speaker hesitating mid-sentence. Each turn, followed by
1.5 s of silence, goes through the real segmenter (Silero VAD) under each end-of-turn rule:

- ``silence``: the turn ends after ``segmenter.end_of_turn_ms`` of silence (500 ms by default);
- ``smart-turn``: after ``smart_turn_after_ms`` (200 ms) Pipecat's Smart Turn v3.2 says whether the turn is
  complete; complete ends it at once, incomplete waits ``smart_turn_incomplete_ms`` (1000 ms).

A **false cut-off** is a turn the rule split in two at the pause. Also reported: how long after the end of
speech each rule decided that the turn was over (``end_of_turn_s``, on the turns it did not split), and the
cost of one Smart Turn call. The prompts are split in two halves by a seeded draw, ``dev`` and ``test``:
``segmenter.smart_turn_threshold`` (0.95) was chosen on ``dev`` (``--dev-sweep`` prints what it was chosen
from); ``test`` is the figure to quote. Runs in about a minute on 2 cores; no server, no other engines.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from babelfish.config.pipeline import SegmenterSettings
from babelfish.config.settings import load_settings
from babelfish.core import audio
from babelfish.devtools import corpus
from babelfish.devtools.bench.report import emit
from babelfish.pipeline.segment import Segmenter, SileroDetector, Speech, TurnModel

RULES = ("silence", "smart-turn")
PAUSES_MS = (150, 900)
RATE = 8000
SEED = 0


@dataclass
class PausedTurn:
    name: str
    text: str
    samples: np.ndarray  # at RATE, with the pause inside and the silence after
    pause_ms: int
    split: float  # where the pause is (seconds from the start)


def one_sentence(text: str) -> bool:
    return not re.search(r"[.?!;]\s+\S", text.strip())


def paused_turns(clips: list[corpus.Clip], seed: int = SEED) -> list[PausedTurn]:
    rng = random.Random(seed)
    turns = []
    for clip in clips:
        samples, rate = audio.read_wav(clip.path, RATE)
        frame = RATE // 50
        energy = np.array([np.sqrt(np.mean(samples[i : i + frame] ** 2) + 1e-12)
                           for i in range(0, samples.size - frame, frame)])
        lo, hi = int(0.3 * energy.size), int(0.7 * energy.size)
        if hi - lo < 3:
            continue
        cut = (lo + int(np.argmin(energy[lo:hi]))) * frame
        pause_ms = rng.randint(*PAUSES_MS)
        gap = np.zeros(RATE * pause_ms // 1000, dtype=np.float32)
        after = np.zeros(int(1.5 * RATE), dtype=np.float32)
        turns.append(PausedTurn(clip.path.stem, clip.text, np.concatenate([samples[:cut], gap, samples[cut:], after]),
                                pause_ms, cut / RATE))
    return turns


def segment(turn: PausedTurn, settings: SegmenterSettings, model: TurnModel | None) -> list[Speech]:
    segmenter = Segmenter(SileroDetector(RATE), RATE, settings, turn_model=model)
    step = audio.frame_bytes(RATE) // 2
    events = []
    for i in range(0, turn.samples.size - step + 1, step):
        events += segmenter.push(turn.samples[i : i + step], (i + step) / RATE)
    return [e for e in events if isinstance(e, Speech)]


class TimedModel:
    def __init__(self, model: TurnModel) -> None:
        self.model = model
        self.seconds: list[float] = []

    def complete(self, samples: np.ndarray, rate: int) -> float:
        t0 = time.perf_counter()
        try:
            return self.model.complete(samples, rate)
        finally:
            self.seconds.append(time.perf_counter() - t0)


def false_cutoffs(turns: list[PausedTurn], base: SegmenterSettings, model: TurnModel) -> dict[str, Any]:
    """Per rule: the share of ``turns`` split at their pause, and the end-of-turn delay on the others."""
    out: dict[str, Any] = {}
    for rule in RULES:
        settings = base.model_copy(update={"end_of_turn": rule, "speculate_ms": 0})
        split, delays, short, long_ = 0, [], [0, 0], [0, 0]
        for turn in turns:
            speeches = segment(turn, settings, model)
            bucket = short if turn.pause_ms < 500 else long_
            bucket[1] += 1
            if len(speeches) > 1:
                split += 1
                bucket[0] += 1
            elif speeches:
                delays.append(speeches[-1].detected_at - speeches[-1].ended_at)
        out[rule] = {"n": len(turns), "false_cutoffs": round(split / max(1, len(turns)), 3),
                     "false_cutoffs_pause_under_500ms": round(short[0] / max(1, short[1]), 3),
                     "false_cutoffs_pause_500ms_or_more": round(long_[0] / max(1, long_[1]), 3),
                     "end_of_turn_s": {"p50": round(statistics.median(delays), 3) if delays else None,
                                       "p90": round(float(np.percentile(delays, 90)), 3) if delays else None}}
    return out


def splits() -> dict[str, list[corpus.Clip]]:
    """The one-sentence prompts in two halves by a seeded draw, each in name order: dev and test."""
    clips = [c for c in corpus.asterisk_prompts(8) if one_sentence(c.text)]
    order = list(range(len(clips)))
    random.Random(SEED).shuffle(order)
    half = len(order) // 2
    return {"dev": [clips[i] for i in sorted(order[:half])], "test": [clips[i] for i in sorted(order[half:])]}


def run_split(limit: int | None = None) -> dict[str, Any]:
    from babelfish.engines.smart_turn import SmartTurn

    model = TimedModel(SmartTurn())
    base = load_settings().segmenter
    result: dict[str, Any] = {"config": {"end_of_turn_ms": base.end_of_turn_ms,
                                         "smart_turn_after_ms": base.smart_turn_after_ms,
                                         "smart_turn_threshold": base.smart_turn_threshold,
                                         "smart_turn_incomplete_ms": base.smart_turn_incomplete_ms,
                                         "pauses_ms": list(PAUSES_MS), "rate": RATE, "seed": SEED}}
    for name, clips in splits().items():
        result[name] = false_cutoffs(paused_turns(clips[:limit]), base, model)
    result["false_cutoffs"] = {rule: result["test"][rule]["false_cutoffs"] for rule in RULES}
    result["smart_turn_ms"] = {"p50": round(1000 * statistics.median(model.seconds), 1),
                               "p90": round(1000 * float(np.percentile(model.seconds, 90)), 1)}
    return result


def table(result: dict[str, Any]) -> str:
    lines = ["babelfish bench turns: one-sentence prompts with a pause inside (150-900 ms), real Silero VAD",
             f"{'split':<5} {'rule':<11} {'n':>4} {'false cut-offs':>15} {'pause<500ms':>12} {'>=500ms':>8} "
             f"{'end of turn p50':>16} {'p90':>6}"]
    for split in ("dev", "test"):
        for rule in RULES:
            r = result[split][rule]
            eot = r["end_of_turn_s"]
            lines.append(f"{split:<5} {rule:<11} {r['n']:>4} {100 * r['false_cutoffs']:>14.1f}% "
                         f"{100 * r['false_cutoffs_pause_under_500ms']:>11.1f}% "
                         f"{100 * r['false_cutoffs_pause_500ms_or_more']:>7.1f}% "
                         f"{eot['p50'] if eot['p50'] is not None else '-':>15}s {eot['p90'] or '-':>5}s")
    lines.append(f"Smart Turn call: p50 {result['smart_turn_ms']['p50']} ms, p90 {result['smart_turn_ms']['p90']} ms"
                 " (one thread); quote the test split (the threshold was chosen on dev)")
    return "\n".join(lines)


def dev_sweep() -> dict[str, Any]:
    """Smart Turn's settings on the dev split only: the table the default threshold was chosen from."""
    from babelfish.engines.smart_turn import SmartTurn

    turns = paused_turns(splits()["dev"])
    base, model = load_settings().segmenter, SmartTurn()
    rows = []
    for after in (200, 300, 400):
        for threshold in (0.5, 0.7, 0.85, 0.95, 0.98):
            settings = base.model_copy(update={"smart_turn_after_ms": after, "smart_turn_threshold": threshold})
            r = false_cutoffs(turns, settings, model)["smart-turn"]
            rows.append({"smart_turn_after_ms": after, "smart_turn_threshold": threshold,
                         "false_cutoffs": r["false_cutoffs"], "end_of_turn_s": r["end_of_turn_s"]})
    return {"dev_sweep": rows, "n": len(turns)}


def run(args: argparse.Namespace) -> int:
    limit = getattr(args, "limit", None)
    if getattr(args, "dev_sweep", False):
        result = dev_sweep()
        emit(result, "\n".join(f"after {r['smart_turn_after_ms']} ms, threshold {r['smart_turn_threshold']}: "
                               f"false cut-offs {100 * r['false_cutoffs']:.1f} %, end of turn p50 "
                               f"{r['end_of_turn_s']['p50']} s" for r in result["dev_sweep"]), args)
        return 0
    result = run_split(limit)
    emit(result, table(result), args)
    return 0
