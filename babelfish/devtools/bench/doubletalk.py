"""``babelfish bench doubletalk``: both callers talk at once, for minutes, on one server: does any utterance
wait for ever, and how late are the ones that are heard?

Two callers through the fake Vonage at real-time pace, on the embedded engines: one speaks the recorded
English telephone prompts, the other the recorded French ones (Asterisk, real speech in both languages),
back to back with a short breath, both at the same time, for ``--limit`` seconds (default 120). Before
that, in the same run, the English caller speaks alone, one turn at a time: the single-speaker figures the
double talk is compared with. Barge-in is off (both talk over each other on purpose: with it on, every
translation would be cleared by the listener's own speech, which is what barge-in is for).

Every utterance of the double talk ends in one of: heard (its translation played: its server-side end of
speech -> first frame is the latency), skipped (shown to the listener as late, backlog or failed), or
timed out (the translator's whole limit, 30 s, ran out: what bounded waiting must prevent).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from babelfish.config.settings import Settings, load_settings
from babelfish.core import audio
from babelfish.devtools import corpus
from babelfish.devtools.bench.calls import percentile, progress, rss_mb, speak_and_wait
from babelfish.devtools.bench.report import emit, machine, with_setting
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_call import FakeCall
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.engines.registry import load_engines
from babelfish.pipeline.protocols import Engines
from babelfish.server.operator import ensure_token
from babelfish.server.serving import background

ENGLISH, FRENCH = "447700900001", "33612345678"
DEFAULT_SECONDS = 120
SINGLE_TURNS = 10


def clips(language: str) -> list[tuple[Any, int, str]]:
    return [(*audio.read_wav(c.path), c.text) for c in corpus.asterisk_prompts(4, language, max_words=20)]


async def talk(call: FakeCall, turns: list[tuple[Any, int, str]], until: float, breath_s: float = 0.4) -> int:
    """Say ``turns`` one after another (round and round) until ``until``; how many were said."""
    said = 0
    while time.monotonic() < until:
        samples, rate, _text = turns[said % len(turns)]
        await call.say(samples, rate)
        said += 1
        await asyncio.sleep(breath_s)
    return said


async def measure(settings: Settings, engines: Engines, seconds: float) -> dict[str, Any]:
    settings = settings.model_copy(update={"numbers": {ENGLISH: "en-GB", FRENCH: "fr-FR"}})
    settings, token = ensure_token(settings)
    english_turns, french_turns = clips("en"), clips("fr")
    async with background(settings, engines) as url:
        feed = CaptionFeed(url, token=token)
        await feed.start()
        async with FakeVonage(url) as vonage:
            english = await vonage.dial(ENGLISH)
            french = await vonage.dial(FRENCH)
            await english.wait_heard(after=0, quiet_s=0.5, timeout=15)
            await asyncio.sleep(1.0)
            for i, (samples, rate, text) in enumerate(english_turns[:SINGLE_TURNS], 1):
                m = await speak_and_wait(english, french, samples, rate, text)
                progress(f"alone {i}/{SINGLE_TURNS}: " + (f"{m.latency:.2f} s" if m.latency else "nothing heard"))
            await asyncio.sleep(2.0)
            single = {r["id"] for r in feed.utterances()}
            progress(f"double talk: both callers for {seconds:g} s")
            started = time.time()
            until = time.monotonic() + seconds
            said = await asyncio.gather(talk(english, english_turns[SINGLE_TURNS:], until),
                                        talk(french, french_turns, until))
            progress("double talk over: waiting for the last translations")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(120):
                    while len(feed.utterances()) < len(single) + 1 or time.time() - last_event(feed) < 5.0:
                        await asyncio.sleep(0.5)
        await feed.stop()
    records = feed.utterances()
    alone = [r for r in records if r["id"] in single]
    both = [r for r in records if r["id"] not in single and r["started_at"] >= started - 1]
    skipped = {e["utterance"]: e["reason"] for e in feed.events if e["type"] == "skipped"}
    return summarize(alone, both, skipped, list(said))


def last_event(feed: CaptionFeed) -> float:
    return max((e.get("time", 0.0) for e in feed.events), default=0.0)


def summarize(alone: list[dict[str, Any]], both: list[dict[str, Any]], skipped: dict[str, str],
              said: list[int]) -> dict[str, Any]:
    def first_frames(records: list[dict[str, Any]]) -> list[float]:
        return [r["latencies"]["first_frame"] for r in records if "first_frame" in r.get("latencies", {})]

    heard = [r for r in both if "first_frame" in r.get("latencies", {})]
    timed_out = [r for r in both if "timed out after" in (r.get("error") or "")]
    shown = [r for r in both if r["id"] in skipped and r not in heard]
    unaccounted = [r for r in both if r not in heard and r["id"] not in skipped and r.get("source_text")]
    single, double = first_frames(alone), first_frames(heard)
    single_p90 = percentile(single, 90) if single else None
    double_p90 = percentile(double, 90) if double else None
    reasons: dict[str, int] = {}
    for r in shown:
        reasons[skipped[r["id"]]] = reasons.get(skipped[r["id"]], 0) + 1
    return {
        "single": {"n": len(single), "p50_s": round(percentile(single, 50), 3) if single else None,
                   "p90_s": None if single_p90 is None else round(single_p90, 3)},
        "double_talk": {
            "turns_said": {"en": said[0], "fr": said[1]}, "utterances": len(both), "heard": len(heard),
            "skipped": len(shown), "skipped_by_reason": reasons, "timed_out": len(timed_out),
            "unaccounted": len(unaccounted),
            "p50_s": round(percentile(double, 50), 3) if double else None,
            "p90_s": None if double_p90 is None else round(double_p90, 3),
            "ratio_p90": round(double_p90 / single_p90, 3) if double_p90 and single_p90 else None,
            "transcript_kept": sum(1 for r in both if r.get("source_text")),
        },
        "rss_mb": round(rss_mb()),
    }


def table(result: dict[str, Any]) -> str:
    s, d = result["single"], result["double_talk"]

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    return "\n".join([
        "babelfish bench doubletalk: both callers talking at once (recorded en and fr prompts, real time)",
        f"  {result['config']['translator']}, {result['config']['seconds']:g} s of double talk, barge-in off",
        f"  alone:       {s['n']} utterances, end of speech -> first frame p50 {f(s['p50_s'])} s, "
        f"p90 {f(s['p90_s'])} s",
        f"  double talk: {d['utterances']} utterances ({d['turns_said']['en']} en + {d['turns_said']['fr']} fr turns)"
        f": heard {d['heard']}, shown as skipped {d['skipped']} {d['skipped_by_reason']}, timed out "
        f"{d['timed_out']}, unaccounted {d['unaccounted']}",
        f"               heard ones p50 {f(d['p50_s'])} s, p90 {f(d['p90_s'])} s: {f(d['ratio_p90'])}x the p90 alone; "
        f"words kept in the transcript for {d['transcript_kept']} of {d['utterances']}",
        f"  RSS {result['rss_mb']} MB",
    ])


def run(args: argparse.Namespace) -> int:
    corpus.ensure_installed()
    settings = with_setting(load_settings(getattr(args, "config", None)), "turns.barge_in=false")
    seconds = float(args.limit or DEFAULT_SECONDS)
    progress("loading engines")
    engines = load_engines(settings)
    result = asyncio.run(measure(settings, engines, seconds))
    result["config"] = {"translator": f"{settings.translator.model}", "seconds": seconds, "barge_in": False,
                        "stale_after_s": settings.turns.stale_after_s,
                        "translate_timeout_s": settings.limits.translate_timeout_s}
    result["machine"] = machine()
    emit(result, table(result), args)
    return 0 if result["double_talk"]["timed_out"] == 0 else 1
