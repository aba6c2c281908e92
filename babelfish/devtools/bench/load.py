"""``babelfish bench load``: how many simultaneous conversations does one server hold?

N conversations at once (two legs each, English and German, speakers alternating as people do), N rising
from 1, until the 90th-percentile latency (end of speech -> first translated frame) passes the bound (4 s)
or an utterance is not heard at all. Reports the largest N that held, with CPU and resident memory per
conversation, and the playback underruns of each level (gaps inside a translation: a voice that
synthesizes slower than it speaks on a loaded machine), with the largest N that held without any. The
English side speaks real recorded telephone prompts; the German side held-out German game lines in the
German voice (Kokoro; no German sentence recordings ship in a registry package), as ``bench latency``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from babelfish.config.settings import Settings, load_settings
from babelfish.core import audio
from babelfish.devtools import corpus
from babelfish.devtools.bench.calls import (
    Measured,
    attach_records,
    cpu_seconds,
    percentile,
    progress,
    rss_mb,
    speak_and_wait,
)
from babelfish.devtools.bench.latency import german_turns, translator_label
from babelfish.devtools.bench.report import emit, with_setting
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_call import FakeCall
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.engines.registry import load_engines
from babelfish.pipeline.protocols import Engines
from babelfish.server.operator import ensure_token
from babelfish.server.serving import background

BOUND_S = 4.0  # issue 28: conversations held within p90 <= 4 s
TURNS_PER_LEG = 3
MAX_CONVERSATIONS = 12


async def conversation(pair: tuple[FakeCall, FakeCall], index: int, english_clips: list, german: list,
                       start_delay: float, feed: CaptionFeed) -> list[Measured]:
    english, german_leg = pair
    await asyncio.sleep(start_delay)  # conversations start staggered, as real calls do
    measured = []
    for turn in range(TURNS_PER_LEG):
        clip = english_clips[(index * TURNS_PER_LEG + turn) % len(english_clips)]
        samples, rate = audio.read_wav(clip.path)
        measured.append(await speak_and_wait(english, german_leg, samples, rate, clip.text, feed=feed))
        samples, rate, text = german[(index + turn) % len(german)]
        measured.append(await speak_and_wait(german_leg, english, samples, rate, text, feed=feed))
    await english.hang_up()
    await german_leg.hang_up()
    return measured


async def level(settings: Settings, engines: Engines, n: int, english_clips: list, german: list,
                baseline_rss: float) -> dict[str, Any]:
    numbers = {}
    for i in range(n):
        numbers[f"4477009{i:05d}"] = "en-GB"
        numbers[f"4915109{i:05d}"] = "de-DE"
    settings = settings.model_copy(update={"numbers": numbers})
    settings, token = ensure_token(settings)
    async with background(settings, engines) as url:
        feed = CaptionFeed(url, token=token)
        await feed.start()
        cpu0 = cpu_seconds()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        peak_rss = rss_mb()

        async def sample_rss() -> None:
            nonlocal peak_rss
            while True:
                peak_rss = max(peak_rss, rss_mb())
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample_rss())
        async with FakeVonage(url) as vonage:
            # dial pair by pair: the server pairs the next two callers, as the original did
            pairs = [(await vonage.dial(f"4477009{i:05d}"), await vonage.dial(f"4915109{i:05d}")) for i in range(n)]
            # whoever waited hears "someone has joined": let it play out before anyone speaks
            await asyncio.gather(*(first.wait_heard(after=0, quiet_s=0.5, timeout=15) for first, _ in pairs))
            results = await asyncio.gather(*(conversation(pairs[i], i, english_clips, german, 1.5 * i / n, feed)
                                             for i in range(n)))
        sampler.cancel()
        wall = loop.time() - t0
        cpu = cpu_seconds() - cpu0
        await feed.stop()
    measured = [m for r in results for m in r]
    attach_records(measured, feed)
    latencies = [m.latency for m in measured if m.latency is not None]
    missed = len(measured) - len(latencies)
    return {
        "conversations": n,
        "utterances": len(measured),
        "missed": missed,
        "p50_s": round(percentile(latencies, 50), 3),
        "p90_s": round(percentile(latencies, 90), 3),
        "underruns": sum(m.underruns for m in measured),
        "cpu_percent": round(100 * cpu / wall, 1),
        "cpu_s_per_conversation_minute": round(cpu / n / (wall / 60), 2),
        "rss_mb": round(peak_rss, 1),
        "rss_mb_per_conversation": round((peak_rss - baseline_rss) / n, 1),
        "wall_s": round(wall, 1),
    }


def table(result: dict[str, Any]) -> str:
    lines = ["babelfish bench load: simultaneous conversations on one server (bound: p90 <= "
             f"{BOUND_S:.0f} s, every utterance heard)",
             "  N   p50 s   p90 s  missed  underruns  CPU %   RSS MB  MB/conv"]
    for lv in result["levels"]:
        lines.append(f"  {lv['conversations']:<3} {lv['p50_s']:6.2f}  {lv['p90_s']:6.2f}  {lv['missed']:6}  "
                     f"{lv['underruns']:9}  {lv['cpu_percent']:5.0f}  {lv['rss_mb']:7.0f}  "
                     f"{lv['rss_mb_per_conversation']:7.1f}")
    lines.append(f"  held: {result['max_conversations']} conversations (p90 {result['p90_s_at_max']} s; "
                 f"without an underrun: {result['max_conversations_no_underruns']}); "
                 f"models alone {result['rss_mb_models']:.0f} MB resident")
    return "\n".join(lines)


def ladder(settings: Settings, top: int) -> dict[str, Any]:
    """N = 1, 2, ... conversations at once until the bound breaks (or ``top``)."""
    english_clips = [c for c in corpus.asterisk_prompts(5) if len(c.text.split()) <= 20]
    german = [(t.samples, t.rate, t.text) for t in german_turns(settings, 12)]
    progress("loading engines")
    engines = load_engines(settings)
    baseline = rss_mb()
    levels = []
    held, p90_at_max, smooth = 0, None, 0
    for n in range(1, top + 1):
        progress(f"load: {n} conversation(s) at once ...")
        result = asyncio.run(level(settings, engines, n, english_clips, german, baseline))
        levels.append(result)
        progress(f"load: {n}: p90 {result['p90_s']} s, underruns {result['underruns']}, missed {result['missed']}")
        if result["p90_s"] > BOUND_S or result["missed"]:
            break
        held, p90_at_max = n, result["p90_s"]
        smooth = smooth + 1 if smooth == n - 1 and result["underruns"] == 0 else smooth
    at_max = next((lv for lv in levels if lv["conversations"] == held), None)
    return {
        "max_conversations": held,
        "max_conversations_no_underruns": smooth,
        "p90_s_at_max": p90_at_max,
        "rss_mb": at_max["rss_mb"] if at_max else round(rss_mb(), 1),
        "rss_mb_models": round(baseline, 1),
        "rss_mb_per_conversation": at_max["rss_mb_per_conversation"] if at_max else None,
        "cpu_percent_at_max": at_max["cpu_percent"] if at_max else None,
        "bound_s": BOUND_S,
        "turns_per_leg": TURNS_PER_LEG,
        "levels": levels,
        "config": {"end_of_turn_ms": settings.segmenter.end_of_turn_ms,
                   "min_window_s": settings.recognizer.min_window_s,
                   "translator": translator_label(settings),
                   "german_side": "held-out German game lines in the German voice (settings.synthesizer)"},
    }


def in_fresh_process(assignment: str, top: int) -> dict[str, Any]:
    """The ladder with one setting changed, in a process of its own: its resident memory is its own
    models', not theirs plus the base run's."""
    import json
    import os
    import subprocess
    import sys

    path, _, value = assignment.partition("=")
    section, _, key = path.strip().partition(".")
    env = {**os.environ, f"BABELFISH_{section.upper()}__{key.upper()}": value.strip()}
    proc = subprocess.run([sys.executable, "-m", "babelfish.cli", "bench", "load", "--limit", str(top), "--json"],
                          env=env, stdout=subprocess.PIPE, check=True, text=True)
    return {"setting": assignment, **json.loads(proc.stdout.strip().splitlines()[-1])}


def compare_table(out: dict[str, Any]) -> str:
    lines = ["", "  side by side (each in a process of its own):",
             f"    {'variant':<34} {'held':>5} {'p90 s at max':>13} {'models MB':>10} {'RSS MB at max':>14}"]
    for label, r in [(f"base: {out['config']['translator']}", out)] + [(c["setting"], c) for c in out["compare"]]:
        p90 = f"{r['p90_s_at_max']:.2f}" if r["p90_s_at_max"] is not None else "-"
        lines.append(f"    {label:<34} {r['max_conversations']:>5} {p90:>13} {r['rss_mb_models']:>10.0f} "
                     f"{r['rss_mb']:>14.0f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    corpus.ensure_installed()
    settings = load_settings(getattr(args, "config", None))
    top = args.limit or MAX_CONVERSATIONS
    variants = getattr(args, "compare", [])
    for assignment in variants:
        with_setting(settings, assignment)  # a wrong setting fails now, not after the base run
    out = ladder(settings, top)
    if variants:
        out["compare"] = [in_fresh_process(assignment, top) for assignment in variants]
    emit(out, table(out) + (compare_table(out) if variants else ""), args)
    return 0
