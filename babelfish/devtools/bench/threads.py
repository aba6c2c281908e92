"""``babelfish bench threads``: recognition and translation at the same time, under each OpenMP wait policy.

In a call the two engines overlap: one caller is recognized while the other's words are translated, and in
simultaneous mode the next clause is recognized while the last is translated. Whisper (CTranslate2) and
llama.cpp each bring an OpenMP runtime, and by default their threads spin between operations, holding the
cores the other engine needs. babelfish sets ``OMP_WAIT_POLICY=PASSIVE`` (``babelfish/__init__.py``); this
bench shows why. For each policy, in a process of its own (the runtimes read the policy once, when they
load): translate held-out game sentences alone, recognize a real telephone prompt alone, then translate the
same sentences while recognition runs back to back beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from babelfish.devtools.bench.report import emit

POLICIES = ("unset", "ACTIVE", "PASSIVE")  # unset: the OpenMP runtimes' own default (spin a while, then sleep)
SENTENCES = 8


async def _measure(n: int) -> dict[str, Any]:
    from babelfish.config.settings import load_settings
    from babelfish.core import audio
    from babelfish.devtools import corpus
    from babelfish.engines.factories import load_recognizer, load_translator

    settings = load_settings()
    recognizer, translator = load_recognizer(settings), load_translator(settings)
    clip = corpus.asterisk_prompts(min_words=8)[0]
    samples, rate = audio.read_wav(clip.path)
    _, test = corpus.dev_test_split(corpus.sentence_pairs("en", "de"), dev_size=50, test_size=200, seed=0)
    sentences = [en for en, _ in test[:n]]

    async def translate_all() -> float:
        t0 = time.perf_counter()
        for text in sentences:
            await translator.translate(text, "en", "de")
        return time.perf_counter() - t0

    await translator.translate("Hello.", "en", "de")  # warm: the prompt prefix is cached from here on
    await recognizer.transcribe(samples, rate, "en-GB")
    translate_alone = await translate_all()
    t0 = time.perf_counter()
    for _ in range(4):
        await recognizer.transcribe(samples, rate, "en-GB")
    recognize_alone = (time.perf_counter() - t0) / 4

    together: list[float] = []
    done = False

    async def recognize_meanwhile() -> None:
        while not done:
            t = time.perf_counter()
            await recognizer.transcribe(samples, rate, "en-GB")
            together.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    beside = asyncio.create_task(recognize_meanwhile())
    translate_together = await translate_all()
    done = True
    await beside
    wall = time.perf_counter() - t0
    recognize_together = sum(together) / len(together)
    # the overlapped run's work, priced at the engines' lone speeds, per second of its wall time: 1.0 is no
    # better than running them one after the other, 2.0 is two cores fully used
    work = translate_alone + len(together) * recognize_alone
    return {"translate_alone_s": round(translate_alone, 2), "recognize_alone_s": round(recognize_alone, 3),
            "translate_together_s": round(translate_together, 2),
            "recognize_together_s": round(recognize_together, 3), "recognitions_together": len(together),
            "translate_slowdown": round(translate_together / translate_alone, 2),
            "recognize_slowdown": round(recognize_together / recognize_alone, 2),
            "throughput": round(work / wall, 2),
            "sentences": n, "clip": clip.path.stem}


def _child(policy: str, n: int) -> dict[str, Any]:
    # "unset": an empty value, which babelfish/__init__.py leaves alone and the runtimes ignore (with a warning)
    env = {**os.environ, "OMP_WAIT_POLICY": "" if policy == "unset" else policy}
    proc = subprocess.run([sys.executable, "-m", "babelfish.devtools.bench.threads", str(n)], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench threads ({policy}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> int:
    n = args.limit or SENTENCES
    result: dict[str, Any] = {"policies": {}, "default": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    for policy in POLICIES:
        print(f"OMP_WAIT_POLICY={policy}: {n} sentences alone, then beside recognition…", file=sys.stderr,
              flush=True)
        result["policies"][policy] = _child(policy, n)
    rows = ["| OMP_WAIT_POLICY | translate alone | with recognition beside | slowdown | recognize alone | "
            "beside translation | slowdown | work per second |", "|---|---|---|---|---|---|---|---|"]
    for policy, r in result["policies"].items():
        rows.append(f"| {policy} | {r['translate_alone_s']:.1f} s | {r['translate_together_s']:.1f} s | "
                    f"{r['translate_slowdown']:.2f}x | {r['recognize_alone_s']:.2f} s | "
                    f"{r['recognize_together_s']:.2f} s | {r['recognize_slowdown']:.2f}x | {r['throughput']:.2f} |")
    emit(result, "\n".join(rows), args)
    return 0


if __name__ == "__main__":  # one policy's measurement, in a process of its own (see _child)
    print(json.dumps(asyncio.run(_measure(int(sys.argv[1])))))
