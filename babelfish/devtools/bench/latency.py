"""``babelfish bench latency``: how long after I stop talking does the other side hear the translation?

A real server with the embedded engines, two callers through the fake Vonage at real-time pace. The English
caller speaks real recorded telephone prompts (Asterisk, 8 kHz, five or more words), one per turn; the
German caller listens. Per utterance: from the end of speech (where the recording's energy ends) to the
first translated frame played to the listener, and the server's own stage latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from babelfish.config.settings import Settings, load_settings
from babelfish.core import audio
from babelfish.devtools import corpus
from babelfish.devtools.bench.calls import Measured, attach_records, percentile, progress, speak_and_wait, stage_summary
from babelfish.devtools.bench.report import emit, with_setting
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.engines.registry import load_engines
from babelfish.engines.voices import Voices
from babelfish.pipeline.protocols import Engines
from babelfish.pipeline.segment import Segmenter, SileroDetector
from babelfish.server.operator import ensure_token
from babelfish.server.serving import background

DEFAULT_UTTERANCES = 30


def pick_clips(n: int) -> list[corpus.Clip]:
    clips = [c for c in corpus.asterisk_prompts(5) if len(c.text.split()) <= 30]  # phone turns, not speeches
    step = max(1, len(clips) // n)
    return clips[::step][:n]


async def measure(settings: Settings, engines: Engines, clips: list[corpus.Clip]) -> list[Measured]:
    settings = settings.model_copy(update={"numbers": {"447700900001": "en-GB", "4915100000002": "de-DE"}})
    measured: list[Measured] = []
    settings, token = ensure_token(settings)
    async with background(settings, engines) as url:
        feed = CaptionFeed(url, token=token)
        await feed.start()
        async with FakeVonage(url) as vonage:
            english = await vonage.dial("447700900001")
            german = await vonage.dial("4915100000002")
            await english.wait_heard(after=0, quiet_s=0.5, timeout=15)  # "someone has joined" plays out
            await asyncio.sleep(1.0)
            for i, clip in enumerate(clips, 1):
                samples, rate = audio.read_wav(clip.path)
                m = await speak_and_wait(english, german, samples, rate, clip.text)
                measured.append(m)
                lat = f"{m.latency:.2f} s" if m.latency is not None else "nothing heard"
                progress(f"latency {i}/{len(clips)}: {lat}  {clip.text[:60]}")
            await feed.wait_utterances(len(clips), timeout=30)
            attach_records(measured, feed)
        await feed.stop()
    return measured


def stage_rtf(engines: Engines, settings: Settings, clips: list[corpus.Clip], measured: list[Measured]) -> dict:
    """Real-time factor of each stage: processing seconds per second of audio it handled."""
    rtf: dict[str, float] = {}
    total_audio = 0.0
    vad_time = 0.0
    for clip in clips[:10]:
        samples, rate = audio.read_wav(clip.path)
        seg = Segmenter(SileroDetector(rate), rate, settings.segmenter)
        t0 = time.perf_counter()
        step = audio.frame_bytes(rate) // 2
        for i in range(0, samples.size, step):
            seg.push(samples[i : i + step], i / rate)
        vad_time += time.perf_counter() - t0
        total_audio += samples.size / rate
    rtf["segment"] = vad_time / total_audio
    durations = []
    for m, clip in zip(measured, clips, strict=False):
        if m.record.get("latencies", {}).get("recognize"):
            samples, rate = audio.read_wav(clip.path)
            durations.append((m.record["latencies"]["recognize"], samples.size / rate))
    if durations:
        rtf["recognize"] = sum(t for t, _ in durations) / sum(d for _, d in durations)
    translate = [(m.record["latencies"].get("translate", 0.0), m.record) for m in measured if m.record]
    if translate:
        # translation has no audio of its own: seconds per second of the speech it translated
        spoken = sum(r["ended_at"] - r["started_at"] for _, r in translate)
        rtf["translate"] = sum(t for t, _ in translate) / max(spoken, 1e-6)
    voice = engines.voices.get("de-DE")
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


def summarize(measured: list[Measured], settings: Settings, rtf: dict[str, float]) -> dict[str, Any]:
    voice = Voices(settings.synthesizer.voices, settings.models_dir).spec("de-DE")
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
                   "direction": f"en-GB (recorded 8 kHz prompts) -> de-DE ({voice})",
                   "playback_lead_ms": settings.playback_lead_ms},
        "utterances": [{"text": m.text, "latency_s": None if m.latency is None else round(m.latency, 3),
                        "stages": m.record.get("latencies", {}),
                        "source_text": m.record.get("source_text"),
                        "translation": next(iter(m.record.get("translations", {}).values()), None)}
                       for m in measured],
    }


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
            "stages": other["stages"], "config": other["config"], "utterances": other["utterances"]}


def compare_table(result: dict[str, Any]) -> str:
    base = f"base: {result['config']['translator']}"
    def recognize(stages: dict[str, float]) -> str:
        return f"{stages['recognize']:.3f}" if "recognize" in stages else "-"

    lines = ["", "  side by side (same clips, same run; ratio = variant / base; recognize: that stage's p50 s):",
             f"    {'variant':<34} {'p50 s':>7} {'p90 s':>7} {'ratio p50':>10} {'ratio p90':>10} {'recognize':>10}",
             f"    {base:<34} {result['p50_s']:>7.2f} {result['p90_s']:>7.2f} {'':>10} {'':>10} "
             f"{recognize(result['stages']):>10}"]
    for c in result["compare"]:
        r50, r90 = (f"{r:.2f}" if r else "-" for r in (c["ratio_p50"], c["ratio_p90"]))
        lines.append(f"    {c['setting']:<34} {c['p50_s']:>7.2f} {c['p90_s']:>7.2f} {r50:>10} {r90:>10} "
                     f"{recognize(c['stages']):>10}")
    return "\n".join(lines)


def measure_with(settings: Settings, clips: list[corpus.Clip], label: str) -> dict[str, Any]:
    progress(f"{label}: loading engines; {len(clips)} utterances at real-time pace")
    engines = load_engines(settings)
    measured = asyncio.run(measure(settings, engines, clips))
    return summarize(measured, settings, stage_rtf(engines, settings, clips, measured))


def run(args: argparse.Namespace) -> int:
    corpus.ensure_installed()
    settings = load_settings(getattr(args, "config", None))
    clips = pick_clips(args.limit or DEFAULT_UTTERANCES)
    variants = [(assignment, with_setting(settings, assignment)) for assignment in getattr(args, "compare", [])]
    result = measure_with(settings, clips, "base")
    if variants:
        result["compare"] = [compared(result, measure_with(changed, clips, assignment), assignment)
                             for assignment, changed in variants]
    emit(result, table(result) + (compare_table(result) if variants else ""), args)
    return 0 if result["n"] else 1



