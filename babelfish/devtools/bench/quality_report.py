"""What ``babelfish bench quality`` reports: each set's figures as it finishes (on stderr), the JSON
result and the readable table."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from babelfish.devtools.bench.quality import QualityBench

T = TypeVar("T")

WER_TARGET = 5.0

DESCRIPTIONS = {
    "en-telephone-8k": "WER, real 8 kHz English phone prompts (5+ words); target <= 5 %",
    "en-telephone-8k-30s-window": "same prompts, min_window_s=30 (Whisper's own window)",
    "nl-game-lines": "WER, voice-acted Dutch game lines (recognized as nl)",
    "de-words": "WER, German single words",
    "nl-game-lines-30s-window": "the same Dutch lines, min_window_s=30",
    "nl-game-lines-prompted": "the same Dutch lines, Whisper prompted with the two lines before (recognized)",
    "de-words-30s-window": "the same German words, min_window_s=30",
    "nl-en-speech": "Dutch audio -> ASR nl -> MT en vs the game's English",
    "nl-de-speech": "Dutch audio -> ASR nl -> MT de vs the game's German",
    "en-de-text": "text MT en->de, held-out game sentence pairs",
    "de-en-text": "text MT de->en, held-out game sentence pairs",
    "en-de-asr-bleu": "en prompt -> ASR -> MT de -> espeak de -> ASR de vs the MT text",
    "nl-en-asr-bleu": "nl line -> ASR -> MT en -> Piper en -> ASR en vs the MT text",
    "en-de-dialogue": "text MT en->de, consecutive game lines, each line alone",
    "en-de-dialogue-context": "the same lines with the conversation so far as context (translator.context_lines)",
    "de-en-dialogue": "text MT de->en, consecutive game lines, each line alone",
    "de-en-dialogue-context": "the same lines with the conversation so far as context",
    "de-voice-espeak-de-8k": "German voice intelligibility: espeak-ng de -> 8 kHz -> ASR de, WER vs the text",
    "de-voice-mbrola-de6-8k": "German voice intelligibility: MBROLA de6 (make voices-nonfree), 8 kHz",
    "de-voice-mbrola-de7-8k": "German voice intelligibility: MBROLA de7 (make voices-nonfree), 8 kHz",
}


@dataclass
class SetResult:
    name: str
    n: int
    seconds: float
    wer: float | None = None
    bleu: float | None = None
    chrf: float | None = None
    accuracy: float | None = None
    per_item: float | None = None  # mean seconds per item (recognizer time for recognition sets)
    rtf: float | None = None  # recognizer time / audio duration
    examples: list[dict[str, str]] = field(default_factory=list)


class Progress:
    """``en-telephone-8k 37/210`` on stderr: rewritten in place on a terminal, every tenth otherwise."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def step(self, name: str, done: int, total: int) -> None:
        if self.tty:
            end = "\n" if done >= total else ""
            print(f"\r{name} {done}/{total}", end=end, file=self.stream, flush=True)
        elif done == total or done % max(1, total // 10) == 0:
            print(f"{name} {done}/{total}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def each(self, name: str, items: Sequence[T], fn: Callable[[T], Any]) -> list[Any]:
        """``fn`` of every item, in order, counting them off under ``name``."""
        out = []
        for i, item in enumerate(items, 1):
            out.append(fn(item))
            self.step(name, i, len(items))
        return out


def only_of(args: Any) -> list[str]:
    """``--only a,b`` -> ``["a", "b"]`` (empty: everything)."""
    return [part.strip() for part in (getattr(args, "only", None) or "").split(",") if part.strip()]


def prepare(args: Any) -> tuple[int | None, list[str], Any, Any, Progress]:
    """What ``bench quality`` and ``bench languages`` start with: ``--limit`` checked, ``--only`` split, the
    corpus packages installed, the settings read and the engines loaded (progress on stderr)."""
    from babelfish.config.settings import load_settings
    from babelfish.devtools import corpus
    from babelfish.engines.registry import load_engines

    limit = getattr(args, "limit", None)
    if limit is not None and limit < 1:
        raise ValueError("--limit must be at least 1")
    only = only_of(args)
    corpus.ensure_installed()
    settings = load_settings(getattr(args, "config", None))
    progress = Progress()
    progress.note("loading engines ...")
    return limit, only, settings, load_engines(settings), progress


def config(bench: QualityBench) -> dict[str, Any]:
    rec, tr = bench.engines.recognizer, bench.engines.translator
    cfg = bench.settings.recognizer
    recognizer = {"engine": getattr(rec, "name", cfg.engine), "model": cfg.model,
                  "model_path": str(getattr(rec, "model_path", "")), "min_window_s": getattr(
                      rec, "min_window_s", cfg.min_window_s), "beam_size": cfg.beam_size,
                  "compute_type": getattr(rec, "compute_type", cfg.compute_type),
                  "cpu_threads": getattr(rec, "threads", cfg.whisper_threads), "device": getattr(rec, "device", None)}
    translator: dict[str, Any] = {"engine": getattr(tr, "name", bench.settings.translator.engine)}
    if getattr(tr, "config", None) is not None:
        translator["prompt"] = repr(tr.config)
    if getattr(tr, "model_path", None) is not None:
        translator["model_path"] = str(tr.model_path)
    voices = {lang: bench.engines.voices.spec(lang) for lang in ("en", "de")}
    return {"recognizer": recognizer, "translator": translator, "voices": voices, "limit": bench.limit,
            "sizes": dict(bench.sizes), "seed": bench.seed,
            "round_trip_rate": bench.settings.sample_rate}

def result(bench: QualityBench) -> dict[str, Any]:
    def figures(attr: str, digits: int = 2) -> dict[str, float]:
        return {name: round(getattr(r, attr), digits) for name, r in bench.results.items()
                if getattr(r, attr) is not None}

    return {
        "wer": figures("wer"),
        "bleu": figures("bleu"),
        "chrf": figures("chrf"),
        "accuracy": figures("accuracy"),
        "n": {name: r.n for name, r in bench.results.items()},
        "seconds": figures("seconds", 1),
        "seconds_per_item": figures("per_item", 3),
        "rtf": figures("rtf", 3),
        "config": config(bench),
        "descriptions": {name: DESCRIPTIONS.get(name, "") for name in bench.results},
        "examples": {name: r.examples for name, r in bench.results.items()},
        **({"language_id": bench.language_id} if bench.language_id is not None else {}),
    }

def table(bench: QualityBench, total_s: float) -> str:
    cfg = config(bench)
    rec, tr = cfg["recognizer"], cfg["translator"]
    head = (f"babelfish bench quality: Whisper {rec['model']} ({rec['compute_type']}, beam {rec['beam_size']}, "
            f"min_window_s {rec['min_window_s']:g}), translator {tr['engine']}, voices "
            f"{cfg['voices']['en']} / {cfg['voices']['de']}" + (f", limit {bench.limit}" if bench.limit else ""))

    def fmt(value: float | None, width: int) -> str:
        return f"{value:{width}.2f}" if value is not None else f"{'-':>{width}}"

    lines = [head, ""]
    if bench.results:
        lines.append(f"{'set':<28} {'n':>4} {'WER %':>7} {'BLEU':>6} {'chrF':>6} {'s/item':>7} "
                     f"{'total s':>8}  what")
    for name, r in bench.results.items():
        what = DESCRIPTIONS.get(name, "")
        if r.accuracy is not None:
            what += f"; exact words {r.accuracy:.1f} %"
        if r.rtf is not None:
            what += f"; {r.rtf:.2f}x real time"
        lines.append(f"{name:<28} {r.n:>4} {fmt(r.wer, 7)} {fmt(r.bleu, 6)} {fmt(r.chrf, 6)} "
                     f"{fmt(r.per_item, 7)} {r.seconds:8.1f}  {what}")
    headline = bench.results.get("en-telephone-8k")
    lines.append("")
    if headline is not None and headline.wer is not None:
        verdict = "meets" if headline.wer <= WER_TARGET else "misses"
        lines.append(f"headline: en-telephone-8k WER {headline.wer:.2f} % {verdict} the {WER_TARGET:g} % target")
    if bench.language_id is not None:
        from babelfish.devtools.bench import language_id

        ids = bench.language_id
        lines += ["", f"language-id, {ids['n']} test clips, {ids['seconds_per_item']:.3f} s each (both priors)"]
        for name in ("uniform_prior", "whisper_prior"):
            summary = ", ".join(f"{b} words {ids[name][f'accuracy_{b}']:.1f} % (worst pair "
                                f"{ids[name][f'worst_{b}']:.1f})" for b in language_id.BUCKETS
                                if f"accuracy_{b}" in ids[name])
            lines.append(f"{name}: {summary}")
        if "overhead" in ids:
            o = ids["overhead"]
            lines.append(f"cost: recognition p50 {o['recognize_ms_p50']:.1f} ms, with identification "
                         f"{o['identify_ms_p50']:.1f} ms, per-utterance difference p50 "
                         f"{o['overhead_ms_p50']:.1f} ms "
                         f"(n={o['n']})")
        lines += [language_id.table(ids["uniform_prior"]), ""]
    lines.append(f"total {total_s:.0f} s. s/item: the recognizer's seconds per utterance for WER sets, wall "
                 "seconds per item otherwise; work shared between sets is counted once, in the first set")
    return "\n".join(lines)
