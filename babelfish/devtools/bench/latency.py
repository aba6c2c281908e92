"""``babelfish bench latency``: how long after I stop talking does the other side hear the translation?

A real server with the embedded engines, two callers through the fake Vonage at real-time pace. The English
caller speaks real recorded telephone prompts (Asterisk, 8 kHz, five or more words), one per turn; the
German caller listens. Per utterance: from the end of speech (where the recording's energy ends) to the
first translated frame played to the listener, and the server's own stage latencies.

Each interpretation mode is measured side by side in one run (``--mode both``, the default): simultaneous
first (the top-level figures), then consecutive (``consecutive``), on the same short turns and on long turns
of 8-30 s (``long_turns``: StartOffset, EndOffset, LAAL and chrF, see :mod:`.long_turns`). The false
cut-offs of each end-of-turn rule come from ``bench turns``' test split, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from babelfish.config.settings import Settings, load_settings
from babelfish.core import audio
from babelfish.core.utterance import Failure
from babelfish.devtools import corpus
from babelfish.devtools.bench import long_turns
from babelfish.devtools.bench.calls import Measured, attach_records, percentile, progress, speak_and_wait, stage_summary
from babelfish.devtools.bench.long_turns import LongTurn
from babelfish.devtools.bench.report import emit, with_setting
from babelfish.devtools.bench.scoring import bleu_chrf
from babelfish.devtools.bench.turns import run_split
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_call import FakeCall
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.engines.registry import load_engines
from babelfish.engines.voices import Voices
from babelfish.pipeline.protocols import Engines
from babelfish.pipeline.segment import Segmenter, SileroDetector
from babelfish.server.operator import ensure_token
from babelfish.server.serving import background

DEFAULT_UTTERANCES = 30
DEFAULT_LONG_TURNS = 8
UNHEARD = {str(Failure.PLAYBACK_DROPPED), str(Failure.PLAYBACK_CLEARED), str(Failure.PLAYBACK_HUNG_UP)}


def pick_clips(n: int) -> list[corpus.Clip]:
    clips = [c for c in corpus.asterisk_prompts(5) if len(c.text.split()) <= 30]  # phone turns, not speeches
    step = max(1, len(clips) // n)
    return clips[::step][:n]


@dataclass
class LongHeard:
    """One long turn as the listener heard it."""

    turn: LongTurn
    frames: list[float]  # start times of the translated frames heard
    step: float  # seconds per frame
    start: float  # monotonic time the source speech started
    end: float  # and ended
    records: list[dict[str, Any]] = field(default_factory=list)  # the server's utterances of the turn

    @property
    def source_text(self) -> str:
        return " ".join(r.get("source_text") or "" for r in self.records).strip()

    @property
    def heard_records(self) -> list[dict[str, Any]]:
        """The utterances whose translation played (not dropped as too late, nor cleared)."""
        return [r for r in self.records if r.get("failure") not in UNHEARD]

    @property
    def translation(self) -> str:
        """What the listener heard, as text."""
        return " ".join(next(iter(r.get("translations", {}).values()), "") or ""
                        for r in self.heard_records).strip()


async def speak_long(english: FakeCall, german: FakeCall, turn: LongTurn) -> LongHeard:
    sent = await english.say(turn.samples, long_turns.RATE)
    start = sent.started + turn.speech_start / english.pace
    end = sent.started + turn.speech_end / english.pace
    await german.wait_heard(after=end, quiet_s=4.0, timeout=90)  # clauses may come seconds apart
    return LongHeard(turn, long_turns.voiced_times(german.played, start), german.playout.step, start, end)


def attach_long(heard: list[LongHeard], feed: CaptionFeed, leg: str) -> None:
    """The utterances (clauses) of each long turn: those of ``leg`` said between its start and its end."""
    offset = time.time() - time.monotonic()
    for h in heard:
        h.records = sorted((r for r in feed.utterances() if r["leg"] == leg
                            and h.start + offset - 1.0 <= r["started_at"] <= h.end + offset + 0.5),
                           key=lambda r: r["started_at"])


@dataclass
class Said:
    """One short turn: its audio and its text."""

    samples: np.ndarray
    rate: int
    text: str


def english_turns(clips: list[corpus.Clip]) -> list[Said]:
    return [Said(*audio.read_wav(c.path), c.text) for c in clips]


def german_turns(settings: Settings, n: int) -> list[Said]:
    """Short German turns for the other direction: no recorded German sentences ship in a registry package,
    so held-out German game lines (the test half of the quality bench's pairs, 5-20 words) are spoken by the
    German voice the settings give (Kokoro by default), once for every variant of the run."""
    _dev, test = corpus.dev_test_split(corpus.sentence_pairs("de", "en"))
    lines = [de for de, _en in test if 5 <= len(de.split()) <= 20][:n]
    voice = Voices(settings.synthesizer.voices, settings.models_dir).get("de-DE")
    progress(f"de -> en: speaking {len(lines)} German lines with {type(voice).__name__}")
    turns = []
    for line in lines:
        samples, rate = voice.synthesize_sync(line)  # type: ignore[attr-defined]
        samples = audio.resample(samples.astype(np.float32), rate, 16000)  # a wideband line, as a browser's
        pad = np.zeros(int(0.3 * 16000), dtype=np.float32)  # a breath before and after, as a caller's line
        turns.append(Said(np.concatenate([pad, samples, pad]), 16000, line))
    return turns


async def measure(settings: Settings, engines: Engines, turns: list[Said],
                  long: Sequence[LongTurn] = (), direction: str = "en-de") -> tuple[list[Measured], list[LongHeard]]:
    settings = settings.model_copy(update={"numbers": {"447700900001": "en-GB", "4915100000002": "de-DE"}})
    measured: list[Measured] = []
    heard: list[LongHeard] = []
    simultaneous = settings.interpretation.simultaneous
    settings, token = ensure_token(settings)
    async with background(settings, engines) as url:
        feed = CaptionFeed(url, token=token)
        await feed.start()
        async with FakeVonage(url) as vonage:
            english = await vonage.dial("447700900001")
            german = await vonage.dial("4915100000002")
            await english.wait_heard(after=0, quiet_s=0.5, timeout=15)  # "someone has joined" plays out
            await asyncio.sleep(1.0)
            speaker, listener = (german, english) if direction == "de-en" else (english, german)
            for i, said in enumerate(turns, 1):
                if direction == "alternate":  # English first, then the German reply, and so on
                    speaker, listener = (english, german) if i % 2 else (german, english)
                m = await speak_and_wait(speaker, listener, said.samples, said.rate, said.text,
                                         while_speaking=simultaneous, feed=feed)
                measured.append(m)
                lat = f"{m.latency:.2f} s" if m.latency is not None else "nothing heard"
                progress(f"latency {direction} {i}/{len(turns)}: {lat}  {said.text[:60]}")
            await feed.wait_utterances(len(turns), timeout=30)
            attach_records(measured, feed)
            for i, turn in enumerate(long, 1):
                h = await speak_long(english, german, turn)
                heard.append(h)
                first = f"{h.frames[0] - h.start:.2f} s" if h.frames else "nothing heard"
                progress(f"long turn {i}/{len(long)} ({turn.duration:.1f} s, {turn.prompts} prompts): first "
                         f"translated frame {first} after its start")
            await asyncio.sleep(1.0)  # the last records reach the feed
            attach_long(heard, feed, english.leg)
        await feed.stop()
    return measured, heard


def stage_rtf(engines: Engines, settings: Settings, turns: list[Said], measured: list[Measured],
              listener: str = "de-DE") -> dict:
    """Real-time factor of each stage: processing seconds per second of audio it handled."""
    rtf: dict[str, float] = {}
    total_audio = 0.0
    vad_time = 0.0
    for turn in turns[:10]:
        samples, rate = turn.samples, turn.rate
        seg = Segmenter(SileroDetector(rate), rate, settings.segmenter)
        t0 = time.perf_counter()
        step = audio.frame_bytes(rate) // 2
        for i in range(0, samples.size, step):
            seg.push(samples[i : i + step], i / rate)
        vad_time += time.perf_counter() - t0
        total_audio += samples.size / rate
    rtf["segment"] = vad_time / total_audio
    durations = []
    for m, turn in zip(measured, turns, strict=False):
        if m.record.get("latencies", {}).get("recognize"):
            durations.append((m.record["latencies"]["recognize"], turn.samples.size / turn.rate))
    if durations:
        rtf["recognize"] = sum(t for t, _ in durations) / sum(d for _, d in durations)
    translate = [(m.record["latencies"].get("translate", 0.0), m.record) for m in measured if m.record]
    if translate:
        # translation has no audio of its own: seconds per second of the speech it translated
        spoken = sum(r["ended_at"] - r["started_at"] for _, r in translate)
        rtf["translate"] = sum(t for t, _ in translate) / max(spoken, 1e-6)
    voice = engines.voices.get(listener)
    texts = [t for m in measured for t in m.record.get("translations", {}).values() if t][:10]
    synth_time = synth_audio = 0.0
    for text in texts:
        t0 = time.perf_counter()
        samples, rate = voice.synthesize_sync(text)  # type: ignore[attr-defined]
        synth_time += time.perf_counter() - t0
        synth_audio += samples.size / rate
    if synth_audio:
        rtf["synthesize"] = synth_time / synth_audio
    return {k: round(v, 4) for k, v in rtf.items()}


def translator_label(settings: Settings) -> str:
    cfg = settings.translator
    if cfg.engine != "llama":
        return cfg.engine
    return f"{cfg.model} ({cfg.llama_threads} thread{'s' if cfg.llama_threads > 1 else ''})"


def summarize(measured: list[Measured], settings: Settings, rtf: dict[str, float],
              direction: str = "en-de") -> dict[str, Any]:
    listener = "en-GB" if direction == "de-en" else "de-DE"
    voices = Voices(settings.synthesizer.voices, settings.models_dir)
    voice = voices.spec(listener)
    said = (f"de-DE (held-out game lines, {voices.spec('de-DE')} voice) -> en-GB ({voice})" if direction == "de-en"
            else "en-GB and de-DE in turn, one conversation" if direction == "alternate"
            else f"en-GB (recorded 8 kHz prompts) -> de-DE ({voice})")
    latencies = [m.latency for m in measured if m.latency is not None]
    server = [m.record["latencies"]["first_frame"] for m in measured
              if m.record.get("latencies", {}).get("first_frame") is not None]
    return {
        "n": len(latencies),
        "missed": len(measured) - len(latencies),
        "p50_s": round(percentile(latencies, 50), 3),
        "p90_s": round(percentile(latencies, 90), 3),
        "max_s": round(max(latencies), 3) if latencies else None,
        "mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "stages": stage_summary(measured),
        "server_first_frame_p50_s": round(percentile(server, 50), 3),
        "underruns": sum(m.underruns for m in measured),
        "rtf": rtf,
        "config": {"end_of_turn_ms": settings.segmenter.end_of_turn_ms,
                   "min_window_s": settings.recognizer.min_window_s,
                   "recognizer": settings.recognizer.model, "translator": translator_label(settings),
                   "direction": said,
                   "playback_lead_ms": settings.playback_lead_ms},
        "utterances": [{"text": m.text, "latency_s": None if m.latency is None else round(m.latency, 3),
                        "stages": m.record.get("latencies", {}),
                        "source_text": m.record.get("source_text"),
                        "translation": next(iter(m.record.get("translations", {}).values()), None)}
                       for m in measured],
    }


BREAKDOWN = (("end_of_turn", "end of turn"), ("recognize", "recognize"),
             ("translate_restore", "pair's state restored"), ("translate_prompt_tokens", "prompt tokens evaluated"),
             ("translate_first_token", "prompt + first token"), ("translate_first_clause_tokens",
                                                                  "tokens to the first clause"),
             ("translate_to_first_clause", "first token -> first clause"),
             ("translate_first_clause", "first clause translated"), ("synthesize", "first piece synthesized"),
             ("first_frame", "end of speech -> first frame (server)"))


def breakdown_table(result: dict[str, Any]) -> str:
    """The first clause of each utterance, step by step (medians): each direction, and each variant."""
    runs = [("en->de", result.get("config", {}).get("translator", ""), result["stages"])]
    for key, label in (("de_en", "de->en"), ("alternating", "in turn")):
        if key in result:
            runs.append((label, result["config"]["translator"], result[key]["stages"]))
    for c in result.get("compare", []):
        runs.append(("en->de", c["setting"], c["stages"]))
        for key, label in (("de_en", "de->en"), ("alternating", "in turn")):
            if key in c:
                runs.append((label, c["setting"], c[key]["stages"]))
    lines = ["", "  the first clause, step by step (medians; s, or tokens):",
             "    " + f"{'step':<38}" + "".join(f"{d + ' ' + v[:18]:>28}" for d, v, _ in runs)]
    for key, label in BREAKDOWN:
        cells = "".join(f"{s[key]:>28.3f}" if key in s else f"{'-':>28}" for _, _, s in runs)
        lines.append(f"    {label:<38}{cells}")
    return "\n".join(lines)


def table(result: dict[str, Any]) -> str:
    s = result["stages"]
    lines = [
        "babelfish bench latency: end of speech -> first translated frame heard (real-time calls, fake Vonage)",
        f"  utterances {result['n']} (missed {result['missed']}), {result['config']['direction']}",
        f"  p50 {result['p50_s']:.2f} s   p90 {result['p90_s']:.2f} s   max {result['max_s']:.2f} s   "
        f"underruns {result['underruns']}",
        "  stage medians (s):  " + "  ".join(f"{k} {v:.3f}" for k, v in s.items()),
        "  real-time factors:  " + "  ".join(f"{k} {v:.3f}" for k, v in result["rtf"].items()),
        f"  config: end_of_turn_ms {result['config']['end_of_turn_ms']}, "
        f"min_window_s {result['config']['min_window_s']}",
    ]
    return "\n".join(lines)


def compared(base: dict[str, Any], other: dict[str, Any], setting: str) -> dict[str, Any]:
    """A variant's figures beside the base run's, with their ratios (variant / base)."""
    def ratio(key: str) -> float | None:
        return round(other[key] / base[key], 3) if base.get(key) and other.get(key) is not None else None

    return {"setting": setting, "n": other["n"], "missed": other["missed"], "p50_s": other["p50_s"],
            "p90_s": other["p90_s"], "ratio_p50": ratio("p50_s"), "ratio_p90": ratio("p90_s"),
            "underruns": other.get("underruns"), "stages": other["stages"], "config": other["config"],
            "utterances": other["utterances"],
            **({"long_turns": other["long_turns"]} if "long_turns" in other else {})}


def compare_table(result: dict[str, Any]) -> str:
    base = f"base: {result['config']['translator']}"
    def recognize(stages: dict[str, float]) -> str:
        return f"{stages['recognize']:.3f}" if "recognize" in stages else "-"

    lines = ["", "  side by side (same clips, same run; ratio = variant / base; recognize: that stage's p50 s):",
             f"    {'variant':<34} {'p50 s':>7} {'p90 s':>7} {'ratio p50':>10} {'ratio p90':>10} {'recognize':>10}",
             f"    {base:<34} {result['p50_s']:>7.2f} {result['p90_s']:>7.2f} {'':>10} {'':>10} "
             f"{recognize(result['stages']):>10}"]
    if "de_en" in result:
        lines[-1] = lines[-1].replace(f"    {base:<34}", f"    {'en->de ' + base:<34}")
    for key, label in (("de_en", "de->en "), ("alternating", "in turn ")):
        if key in result:
            back = result[key]
            lines.append(f"    {label + base:<34} {back['p50_s']:>7.2f} {back['p90_s']:>7.2f} {'':>10} {'':>10} "
                         f"{recognize(back['stages']):>10}")
    for c in result["compare"]:
        for label, row in (("en->de ", c), ("de->en ", c.get("de_en")), ("in turn ", c.get("alternating"))):
            if row is None:
                continue
            r50, r90 = (f"{r:.2f}" if r else "-" for r in (row["ratio_p50"], row["ratio_p90"]))
            name = (label if "de_en" in c else "") + c["setting"]
            lines.append(f"    {name:<34} {row['p50_s']:>7.2f} {row['p90_s']:>7.2f} {r50:>10} {r90:>10} "
                         f"{recognize(row['stages']):>10}")
        if "long_turns" in c:
            lt = c["long_turns"]
            lines.append(f"      long turns: StartOffset p50 {lt['start_offset_s']['p50']} s, EndOffset p50 "
                         f"{lt['end_offset_s']['p50']} s, LAAL p50 {lt['laal_s']['p50']} s, chrF {lt['chrf']} "
                         f"(against its own translator's reference), {lt['not_heard']} of {lt['utterances']} not heard")
    return "\n".join(lines)


def measure_with(settings: Settings, turns: list[Said], label: str, long: Sequence[LongTurn] = (),
                 other: list[Said] | None = None, alternate: bool = False) -> dict[str, Any]:
    """One variant: the English turns (and ``long``) en -> de, then, with ``other``, German turns de -> en on
    the same engines (``result["de_en"]``), and with ``alternate`` both in one conversation, an English turn
    and a German reply in turn, as people talk (``result["alternating"]``: where the prepared context pays,
    translator.prepare_context)."""
    progress(f"{label}: loading engines; {len(turns)} utterances and {len(long)} long turns at real-time pace")
    engines = load_engines(settings)
    measured, heard = asyncio.run(measure(settings, engines, turns, long))
    result = summarize(measured, settings, stage_rtf(engines, settings, turns, measured))
    result["mode"] = settings.interpretation.mode
    if long:
        references = asyncio.run(reference_translations(engines, long))
        result["long_turns"] = long_summary(heard, references)
    if other:
        back, _ = asyncio.run(measure(settings, engines, other, direction="de-en"))
        result["de_en"] = summarize(back, settings, stage_rtf(engines, settings, other, back, "en-GB"), "de-en")
    if other and alternate:
        both = [said for pair in zip(turns, other, strict=False) for said in pair]
        talk, _ = asyncio.run(measure(settings, engines, both, direction="alternate"))
        result["alternating"] = summarize(talk, settings, {}, "alternate")
    return result


async def reference_translations(engines: Engines, long: Sequence[LongTurn]) -> list[str]:
    """Each long turn's transcript translated whole by the same translator: the reference translation
    (no human German translation of these recordings exists here; see benchmarks/README.md)."""
    assert engines.translator is not None
    return [await engines.translator.translate(turn.text, "en-GB", "de-DE") for turn in long]


def long_summary(heard: list[LongHeard], references: list[str]) -> dict[str, Any]:
    rows = []
    for h, reference in zip(heard, references, strict=True):
        words = len(h.translation.split())
        stages = {k: round(statistics.median(v), 3) for k in ("recognize", "translate", "translate_first_clause")
                  if (v := [r["latencies"][k] for r in h.records if k in r.get("latencies", {})])}
        row: dict[str, Any] = {"duration_s": round(h.turn.duration, 2), "prompts": h.turn.prompts,
                               "utterances": len(h.records), "not_heard": len(h.records) - len(h.heard_records),
                               "stages": stages, "source_text": h.source_text,
                               "translation": h.translation, "reference": reference}
        measures = long_turns.offsets(h.frames, h.step, words, h.start, h.end, len(reference.split()))
        row.update({k: None if v is None else round(v, 3) for k, v in measures.items()})
        rows.append(row)

    def p(key: str) -> dict[str, float | None]:
        values = [r[key] for r in rows if r[key] is not None]
        return {"p50": round(percentile(values, 50), 3) if values else None,
                "p90": round(percentile(values, 90), 3) if values else None}

    heard_rows = [r for r in rows if r["translation"]]
    chrf = bleu_chrf([r["translation"] for r in heard_rows], [r["reference"] for r in heard_rows])[1] \
        if heard_rows else None
    return {"n": len(rows), "missed": len(rows) - len(heard_rows),
            "utterances": sum(r["utterances"] for r in rows), "not_heard": sum(r["not_heard"] for r in rows),
            "start_offset_s": p("start_offset_s"),
            "end_offset_s": p("end_offset_s"), "laal_s": p("laal_s"),
            "chrf": None if chrf is None else round(chrf, 1), "turns": rows}


def side_by_side(result: dict[str, Any], consecutive: dict[str, Any]) -> None:
    """The consecutive run's figures in the simultaneous result, with ratios and chrF on the same turns."""
    def ratio(key: str) -> float | None:
        return round(result[key] / consecutive[key], 3) if consecutive.get(key) and result.get(key) else None

    result["consecutive"] = {k: consecutive[k] for k in ("n", "missed", "p50_s", "p90_s", "stages")}
    result["ratio_p50"], result["ratio_p90"] = ratio("p50_s"), ratio("p90_s")
    if "long_turns" in result and "long_turns" in consecutive:
        ours, theirs = result["long_turns"], consecutive["long_turns"]
        result["consecutive"]["long_turns"] = {k: v for k, v in theirs.items() if k != "turns"}
        pairs = [(a["translation"], b["translation"], a["reference"])
                 for a, b in zip(ours["turns"], theirs["turns"], strict=True) if a["translation"] and b["translation"]]
        if pairs:
            ours["chrf"] = round(bleu_chrf([a for a, _, _ in pairs], [r for _, _, r in pairs])[1], 1)
            ours["chrf_consecutive"] = round(bleu_chrf([b for _, b, _ in pairs], [r for _, _, r in pairs])[1], 1)
            ours["chrf_vs_consecutive"] = round(bleu_chrf([a for a, _, _ in pairs], [b for _, b, _ in pairs])[1], 1)
            ours["chrf_turns"] = len(pairs)
        for a, b in zip(ours["turns"], theirs["turns"], strict=True):
            a["consecutive"] = {k: b[k] for k in ("start_offset_s", "end_offset_s", "laal_s", "translation")}


def run(args: argparse.Namespace) -> int:
    corpus.ensure_installed()
    settings = load_settings(getattr(args, "config", None))
    clips = pick_clips(args.limit or DEFAULT_UTTERANCES)
    n_long = DEFAULT_LONG_TURNS if getattr(args, "long", None) is None else args.long
    split = "dev" if getattr(args, "dev", False) else "test"
    long = long_turns.long_turns(long_pool(clips, split), n_long)
    mode = getattr(args, "mode", "both")
    modes = ["simultaneous", "consecutive"] if mode == "both" else [mode]
    in_mode = [with_setting(settings, f"interpretation.mode={m}") for m in modes]
    turns = english_turns(clips)
    direction = getattr(args, "direction", "both")
    other = german_turns(settings, len(clips)) if direction in ("both", "all") else None
    alternate = direction == "all"
    result = measure_with(in_mode[0], turns, modes[0], long, other, alternate)
    result["long_turns_split"] = split
    if len(modes) == 2:
        side_by_side(result, measure_with(in_mode[1], turns, modes[1], long))
    variants = [(assignment, with_setting(in_mode[0], assignment)) for assignment in getattr(args, "compare", [])]
    if variants:
        result["compare"] = []
        for assignment, changed in variants:
            variant = measure_with(changed, turns, assignment, long, other, alternate)
            entry = compared(result, variant, assignment)
            for key in ("de_en", "alternating"):
                if key in result and key in variant:
                    entry[key] = compared(result[key], variant[key], assignment)
            result["compare"].append(entry)
    progress("false cut-offs: bench turns' test split")
    result["false_cutoffs"] = run_split()["false_cutoffs"]
    emit(result, table(result) + breakdown_table(result) + mode_table(result)
         + (compare_table(result) if variants else ""), args)
    return 0 if result["n"] else 1


def long_pool(short: list[corpus.Clip], split: str = "test") -> list[corpus.Clip]:
    """The prompts long turns are made of: those not spoken as short turns, in two halves by a seeded draw
    (``dev`` to choose settings on, ``test`` to quote), each in name order."""
    taken = {c.path for c in short}
    pool = [c for c in corpus.asterisk_prompts(5) if c.path not in taken and len(c.text.split()) <= 30]
    order = list(range(len(pool)))
    random.Random(0).shuffle(order)
    half = set(order[: len(order) // 2])
    return [c for i, c in enumerate(pool) if (i in half) == (split == "dev")]


def mode_table(result: dict[str, Any]) -> str:
    lines = [""]
    c = result.get("consecutive")
    if c is not None:
        r50, r90 = (f"{r:.2f}" if r else "-" for r in (result["ratio_p50"], result["ratio_p90"]))
        lines += ["  short turns, end of speech -> first translated frame (s), by interpretation mode:",
                  f"    {'mode':<14} {'p50':>6} {'p90':>6}",
                  f"    {result['mode']:<14} {result['p50_s']:>6.2f} {result['p90_s']:>6.2f}",
                  f"    {'consecutive':<14} {c['p50_s']:>6.2f} {c['p90_s']:>6.2f}",
                  f"    ratio p50 {r50}, ratio p90 {r90} ({result['mode']} / consecutive)"]
    long = result.get("long_turns")
    if long:
        def cell(d: dict[str, Any] | None, key: str) -> str:
            v = (d or {}).get(key) or {}
            return f"{v.get('p50'):>5.2f} /{v.get('p90'):>5.2f}" if v.get("p50") is not None else f"{'-':>12}"

        theirs = (c or {}).get("long_turns")
        lines += [f"  long turns ({long['n']}, 8-30 s), p50 / p90 in s:",
                  f"    {'mode':<14} {'StartOffset':>12} {'EndOffset':>12} {'LAAL':>12} {'chrF':>6}",
                  f"    {result['mode']:<14} {cell(long, 'start_offset_s')} {cell(long, 'end_offset_s')} "
                  f"{cell(long, 'laal_s')} {long.get('chrf') or '-':>6}  "
                  f"({long['not_heard']} of {long['utterances']} utterances not heard: too late, or cleared)"]
        if theirs:
            lines.append(f"    {'consecutive':<14} {cell(theirs, 'start_offset_s')} {cell(theirs, 'end_offset_s')} "
                         f"{cell(theirs, 'laal_s')} {long.get('chrf_consecutive') or '-':>6}  "
                         f"({theirs['not_heard']} of {theirs['utterances']} not heard)")
        lines.append("    chrF against each turn's transcript translated whole by the same translator"
                     f"; simultaneous vs consecutive: {long.get('chrf_vs_consecutive', '-')}")
    if "false_cutoffs" in result:
        lines.append("  false cut-offs (bench turns, test split): " + ", ".join(
            f"{rule} {100 * share:.1f} %" for rule, share in result["false_cutoffs"].items()))
    return "\n".join(lines)



