"""``babelfish bench load --replicas 1,2,...``: conversations held with the engines on Ray Serve.

For each replica count R, the recognizer, translator and synthesizer run as Ray Serve deployments with R
replicas each (a local Ray on this machine), a babelfish server calls them through deployment handles, and
the load benchmark's ladder runs: N simultaneous conversations, N rising until the 90th-percentile latency
passes the bound or playback underruns. Reports the largest N held per R, with the CPU used by the whole
benchmark (this process and the local Ray's processes, where the engines run) and by this process alone
(the babelfish server and the fake Vonage).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from babelfish.config.settings import Settings, load_settings
from babelfish.devtools import corpus
from babelfish.devtools.bench.calls import german_clips, progress, rss_mb, scratch_dir
from babelfish.devtools.bench.load import BOUND_S, MAX_CONVERSATIONS, level
from babelfish.devtools.bench.report import emit
from babelfish.engines.registry import load_engines

STAGES = ["recognizer", "translator", "synthesizer"]


def tree_cpu_seconds() -> float:
    """CPU seconds of this process and every process it started (the local Ray: its raylet, Serve's
    controller and the replicas), from /proc: what the benchmark costs, not what else runs on the machine."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    tree, grew = {os.getpid()}, True
    while grew:
        more = {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(stats[pid][1] for pid in tree if pid in stats)


def with_replicas(settings: Settings, replicas: int) -> Settings:
    deployments = {stage: getattr(settings.ray, stage).model_copy(update={"num_replicas": replicas, "num_cpus": 1})
                   for stage in STAGES}
    ray = settings.ray.model_copy(update={"stages": STAGES, "address": None, **deployments})
    return settings.model_copy(update={"ray": ray})


def parse_counts(text: str) -> list[int]:
    counts = sorted({int(part) for part in text.split(",") if part.strip()})
    if not counts or counts[0] < 1:
        raise ValueError("--replicas takes replica counts, e.g. 1,2,4")
    return counts


def run(args: argparse.Namespace) -> int:
    import ray

    counts = parse_counts(args.replicas)
    corpus.ensure_installed()
    base = load_settings(getattr(args, "config", None))
    english_clips = [c for c in corpus.asterisk_prompts(5) if len(c.text.split()) <= 20]
    german = german_clips(scratch_dir())
    # logical CPUs only place the replicas: every replica count fits, sharing the machine's real cores
    ray.init(num_cpus=len(STAGES) * max(counts), namespace="babelfish", log_to_driver=False,
             include_dashboard=False)
    top = args.limit or MAX_CONVERSATIONS
    results = []
    try:
        for replicas in counts:
            settings = with_replicas(base, replicas)
            progress(f"replicas {replicas}: deploying the engines on Ray Serve")
            t0 = time.monotonic()
            engines = load_engines(settings)
            deployed_s = time.monotonic() - t0
            levels, held, p90_at_max = [], 0, None
            for n in range(1, top + 1):
                progress(f"replicas {replicas}: {n} conversation(s) at once ...")
                cpu0, wall0 = tree_cpu_seconds(), time.monotonic()
                result = asyncio.run(level(settings, engines, n, english_clips, german, rss_mb()))
                result["total_cpu_percent"] = round(100 * (tree_cpu_seconds() - cpu0)
                                                    / (time.monotonic() - wall0), 1)
                # this process is the babelfish server plus the fake Vonage (an upper bound of the server's
                # own share: VAD, sockets, playback); the engines run in Ray's worker processes
                result["driver_cpu_percent"] = result.pop("cpu_percent")
                for key in ("cpu_s_per_conversation_minute", "rss_mb", "rss_mb_per_conversation"):
                    result.pop(key, None)
                levels.append(result)
                progress(f"replicas {replicas}: {n}: p90 {result['p90_s']} s, underruns {result['underruns']}, "
                         f"missed {result['missed']}")
                if result["p90_s"] > BOUND_S or result["underruns"] or result["missed"]:
                    break
                held, p90_at_max = n, result["p90_s"]
            at_max = next((lv for lv in levels if lv["conversations"] == held), None)
            results.append({"replicas": replicas, "max_conversations": held, "p90_s_at_max": p90_at_max,
                            "total_cpu_percent_at_max": at_max["total_cpu_percent"] if at_max else None,
                            "driver_cpu_percent_at_max": at_max["driver_cpu_percent"] if at_max else None,
                            "deploy_s": round(deployed_s, 1), "levels": levels})
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
    out: dict[str, Any] = {
        "mode": "ray-serve replicas", "bound_s": BOUND_S, "limit": top, "results": results,
        "config": {"stages": STAGES, "replica_num_cpus": 1, "ray_logical_cpus": len(STAGES) * max(counts),
                   "translator_batch": base.ray.translator.max_batch_size,
                   "recognizer": base.recognizer.engine, "translator": base.translator.engine,
                   "german_side": "synthesized with espeak-ng"},
    }
    emit(out, table(out), args)
    return 0


def table(result: dict[str, Any]) -> str:
    lines = ["babelfish bench load --replicas: conversations held with the engines on Ray Serve (bound: p90 <= "
             f"{BOUND_S:.0f} s, no underruns; at most {result['limit']} tried)",
             "  replicas/stage  held  p90 s at max  total CPU % at max  server+fake CPU %  levels (N: p90 s)"]
    for r in result["results"]:
        ladder = ", ".join(f"{lv['conversations']}: {lv['p90_s']}" for lv in r["levels"])
        p90 = f"{r['p90_s_at_max']:.2f}" if r["p90_s_at_max"] is not None else "-"
        cpu = f"{r['total_cpu_percent_at_max']:.0f}" if r["total_cpu_percent_at_max"] is not None else "-"
        driver = f"{r['driver_cpu_percent_at_max']:.0f}" if r["driver_cpu_percent_at_max"] is not None else "-"
        lines.append(f"  {r['replicas']:<14}  {r['max_conversations']:<4}  {p90:>12}  {cpu:>18}  {driver:>17}  "
                     f"{ladder}")
    return "\n".join(lines)
