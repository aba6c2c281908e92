"""Language identification on real recorded speech at 8 kHz: accuracy per pair and length, confusion matrix.

Clips: the Asterisk telephone prompts in English, Spanish, French and Italian (one professional speaker
per language), the voice-acted Dutch game lines (fillets-ng, several actors) and the German single words
(klettres). Each language's clips are split by length bucket (words in the reference text: 1, 2-4, 5+)
into a dev part (``dev_per_bucket``: used to choose ``languages.min_confidence``) and a disjoint test part
(``test_per_bucket``: the reported figures); the split is ``corpus.dev_test_split`` with a fixed seed.

For one clip the recognizer's language probabilities are computed once, on the window it would decode
from. A clip in language L counts as right for the pair {L, M} when L's share of the two is larger;
``switch`` is what the call does with it: the leg is set to M and the clip is decoded as L when L's share
reaches ``min_confidence`` (right), or left in M (kept); ``false_switch`` is the share of clips, with the
leg already in L, that would be decoded as M. The confusion matrix is over all the languages at once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from babelfish.core import audio
from babelfish.devtools import corpus
from babelfish.pipeline.recognize import among

LANGUAGES = ("en", "es", "fr", "it", "nl", "de")
BUCKETS = ("1", "2-4", "5+")


def bucket(text: str) -> str:
    words = len(text.split())
    return "1" if words <= 1 else "2-4" if words <= 4 else "5+"


def clips(language: str) -> list[corpus.Clip]:
    if language == "nl":
        return corpus.fillets_dutch_lines()
    if language == "de":
        return corpus.klettres_words("de")
    return corpus.asterisk_prompts(min_words=1, language=language)


def split(dev_per_bucket: int = 20, test_per_bucket: int = 60) -> tuple[list[corpus.Clip], list[corpus.Clip]]:
    """Disjoint dev and test clips, per language and length bucket."""
    dev: list[corpus.Clip] = []
    test: list[corpus.Clip] = []
    for language in LANGUAGES:
        every = clips(language)
        for name in BUCKETS:
            in_bucket = [c for c in every if bucket(c.text) == name]
            d, t = corpus.dev_test_split(in_bucket, dev_size=min(dev_per_bucket, len(in_bucket) // 4),
                                         test_size=test_per_bucket)
            dev += d
            test += t
    return dev, test


def probabilities(identify: Callable[[np.ndarray, int, str], dict[str, float]], items: Sequence[corpus.Clip],
                  progress: Callable[[int, int], None] | None = None) -> list[dict[str, float]]:
    """The recognizer's language probabilities for each clip (8 kHz, as on the phone)."""
    out = []
    for i, clip in enumerate(items):
        samples, _ = audio.read_wav(clip.path, 8000)
        out.append(identify(samples, 8000, clip.language))
        if progress is not None:
            progress(i + 1, len(items))
    return out


def share(probs: dict[str, float], language: str, others: Sequence[str]) -> float:
    """``language``'s share among it and ``others``, as the server computes it (``recognize.among``)."""
    return among(probs, [language, *others], language, 1.0).probabilities.get(language, 0.0)


def figures(items: Sequence[corpus.Clip], probs: Sequence[dict[str, float]], min_confidence: float,
            languages: Sequence[str] = LANGUAGES) -> dict[str, Any]:
    """Pairwise accuracy, switches and false switches per length bucket, and the confusion matrix."""
    present = [lang for lang in languages if any(c.language == lang for c in items)]
    pairs: dict[str, dict[str, dict[str, float | int]]] = {}
    for a, b in itertools.combinations(present, 2):
        per_bucket: dict[str, dict[str, float | int]] = {}
        for name in BUCKETS:
            chosen = [(c, p) for c, p in zip(items, probs, strict=True)
                      if c.language in (a, b) and bucket(c.text) == name]
            if not chosen:
                continue
            other = {a: b, b: a}
            shares = [share(p, c.language, [other[c.language]]) for c, p in chosen]
            wrong_way = [share(p, other[c.language], [c.language]) for c, p in chosen]
            per_bucket[name] = {
                "n": len(chosen),
                "accuracy": round(100 * sum(s > 0.5 for s in shares) / len(chosen), 1),
                "switch": round(100 * sum(s >= min_confidence for s in shares) / len(chosen), 1),
                "false_switch": round(100 * sum(s >= min_confidence for s in wrong_way) / len(chosen), 1),
            }
        pairs[f"{a}-{b}"] = per_bucket
    confusion = {lang: dict.fromkeys(present, 0) for lang in present}
    for clip, p in zip(items, probs, strict=True):
        best = max(present, key=lambda lang: p.get(lang, 0.0))
        confusion[clip.language][best] += 1
    return {"min_confidence": min_confidence, "pairs": pairs, "confusion": confusion}


def summary(result: dict[str, Any]) -> dict[str, float]:
    """Accuracy per bucket over all pairs (each pair's clips weighted by their number), and the worst pair."""
    out: dict[str, float] = {}
    for name in BUCKETS:
        cells = [b[name] for b in result["pairs"].values() if name in b]
        n = sum(int(c["n"]) for c in cells)
        if n:
            out[f"accuracy_{name}"] = round(sum(float(c["accuracy"]) * int(c["n"]) for c in cells) / n, 1)
            out[f"worst_{name}"] = min(float(c["accuracy"]) for c in cells)
    return out


def table(result: dict[str, Any]) -> str:
    lines = [f"language identification (min_confidence {result['min_confidence']}): accuracy % / switch % / "
             "false switch %, per pair and words per utterance"]
    lines.append(f"{'pair':<7}" + "".join(f"{name + ' words':>24}" for name in BUCKETS))
    for pair, per_bucket in result["pairs"].items():
        cells = []
        for name in BUCKETS:
            c = per_bucket.get(name)
            cells.append(f"{'-':>24}" if c is None else
                         f"{c['accuracy']:>7.1f} {c['switch']:>5.1f} {c['false_switch']:>4.1f} (n={c['n']:>3})")
        lines.append(f"{pair:<7}" + "".join(cells))
    present = list(result["confusion"])
    lines.append("confusion (rows: spoken, columns: identified among all): " + " ".join(f"{x:>4}" for x in present))
    for lang, row in result["confusion"].items():
        lines.append(f"{'':>52}{lang:>3} " + " ".join(f"{row[x]:>4}" for x in present))
    return "\n".join(lines)


def overhead(recognize: Callable[..., Any], items: Sequence[corpus.Clip], candidates: Sequence[str],
             repeats: int = 2) -> dict[str, float]:
    """What identification adds to one recognition: each clip recognized with and without ``candidates``,
    alternately (so the machine's drift hits both), ``repeats`` times; medians of the times and of the
    per-clip difference, in milliseconds."""
    plain: list[float] = []
    identified: list[float] = []
    for _ in range(repeats):
        for clip in items:
            samples, _ = audio.read_wav(clip.path, 8000)
            language = clip.language
            for out, cands in ((plain, ()), (identified, candidates)):
                t0 = time.perf_counter()
                recognize(samples, 8000, language, "", cands, 0.9)
                out.append(time.perf_counter() - t0)
    diffs = [b - a for a, b in zip(plain, identified, strict=True)]
    return {"n": len(plain), "recognize_ms_p50": round(1000 * float(np.median(plain)), 1),
            "identify_ms_p50": round(1000 * float(np.median(identified)), 1),
            "overhead_ms_p50": round(1000 * float(np.median(diffs)), 1)}
