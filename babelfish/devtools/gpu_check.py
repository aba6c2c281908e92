"""``scripts/gpu-check.sh``: prove the GPU path on a machine with an NVIDIA GPU, engine by engine.

Each engine is loaded twice, on the CPU and on CUDA, and given the same input: the recognizer a recorded
telephone prompt (Asterisk core sounds, as the tests use), the translators that prompt's reference text
(English -> German). After one untimed warm-up run each (CUDA context, kernels, the translator's cached
instructions), the two devices take turns, ``--repeat`` runs each, so a busy moment hits both alike. The
median times and the speed-up over the CPU are printed as JSON and as a table. Without a usable GPU it stops
at once, exit status 2, saying what is missing; ``--cpu-only`` runs the CPU half alone (tests, and a machine
without a GPU).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from babelfish.config import hardware
from babelfish.config.hardware import Resolved

NO_GPU = 2
SOURCE, TARGET = "en-US", "de-DE"


def gpu_problems(translator: str, opus_mt: Path | None) -> list[str]:
    """What keeps the engines off the GPU here (empty: nothing)."""
    problems = []
    if hardware.cuda_devices() == 0:
        problems.append("CTranslate2 (faster-whisper, OPUS-MT) finds no CUDA device: is the NVIDIA driver loaded "
                        "(nvidia-smi)? is cuBLAS for CUDA 12 on the library path (see scripts/gpu-check.sh)?")
    if translator != "none" and not hardware.llama_offloads():
        problems.append("llama-cpp-python cannot offload to a GPU: reinstall it built with CMAKE_ARGS=-DGGML_CUDA=on "
                        "(scripts/gpu-check.sh says how), or pass --translator none")
    return problems


def measure(build: Callable[[Resolved], Any], run: Callable[[Any], str], devices: Sequence[Resolved],
            repeat: int) -> dict[str, Any]:
    """One engine on each device: its description, output and median seconds per run, and the speed-up."""
    engines = {device: build(device) for device in devices}
    outputs = {device: run(engine) for device, engine in engines.items()}  # warm-up, untimed
    seconds: dict[str, list[float]] = {device: [] for device in devices}
    for _ in range(repeat):
        for device, engine in engines.items():
            t0 = time.perf_counter()
            run(engine)
            seconds[device].append(time.perf_counter() - t0)
    result: dict[str, Any] = {
        device: {"engine": engines[device].describe(), "output": outputs[device],
                 "seconds": round(statistics.median(seconds[device]), 4)} for device in devices}
    cpu, cuda = result["cpu"]["seconds"], result.get("cuda", {}).get("seconds")
    result["speedup"] = round(cpu / cuda, 2) if cuda else None
    del engines
    gc.collect()
    return result


def check(args: argparse.Namespace) -> dict[str, Any]:
    from babelfish.core import audio
    from babelfish.devtools import corpus
    from babelfish.engines.whisper import WhisperRecognizer

    devices: list[Resolved] = ["cpu"] if args.cpu_only else ["cpu", "cuda"]
    models_dir = args.models_dir
    corpus.ensure_installed(["asterisk-core-sounds-en-wav", "asterisk-core-sounds-en"])
    clip = corpus.asterisk_prompts(min_words=8)[0]
    samples, rate = audio.read_wav(clip.path)
    result: dict[str, Any] = {
        "devices": devices, "cuda_devices": hardware.cuda_devices(), "llama_offloads": hardware.llama_offloads(),
        "cores": hardware.cores(), "repeat": args.repeat,
        "input": {"clip": clip.path.name, "seconds": round(samples.size / rate, 2), "rate": rate, "text": clip.text},
        "engines": {}}
    result["engines"]["recognizer"] = measure(
        lambda device: WhisperRecognizer(args.recognizer, models_dir, device=device),
        lambda engine: engine.recognize_sync(samples, rate, SOURCE).text, devices, args.repeat)
    if args.translator != "none":
        from babelfish.engines.gemma import GemmaTranslator
        from babelfish.engines.qwen import QwenTranslator

        llama = GemmaTranslator if args.translator == "gemma-270m" else QwenTranslator
        result["engines"]["translator"] = measure(
            lambda device: llama(models_dir, device=device),
            lambda engine: engine.translate_sync(clip.text, SOURCE, TARGET), devices, args.repeat)
    if args.opus_mt is not None:
        from babelfish.engines.ctranslate2_mt import CTranslate2Translator

        pair = f"{SOURCE[:2]}-{TARGET[:2]}"
        result["engines"]["opus-mt"] = measure(
            lambda device: CTranslate2Translator({pair: str(args.opus_mt)}, models_dir, device=device),
            lambda engine: engine.translate_sync(clip.text, SOURCE, TARGET), devices, args.repeat)
    return result


def table(result: dict[str, Any]) -> str:
    """The result as lines a person reads: per engine the seconds on each device and the speed-up."""
    clip = result["input"]
    lines = [f"input: {clip['clip']} ({clip['seconds']} s at {clip['rate']} Hz): {clip['text']!r}",
             f"{'engine':<11} {'device':<6} {'seconds':>8} {'speed-up':>9}  loaded as / output"]
    for name, engine in result["engines"].items():
        for device in result["devices"]:
            run = engine[device]
            speedup = f"{engine['speedup']}x" if device == "cuda" and engine["speedup"] else ""
            lines.append(f"{name:<11} {device:<6} {run['seconds']:>8.3f} {speedup:>9}  {run['engine']}")
            lines.append(f"{'':<38}{run['output']!r}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    from babelfish.config.settings import Settings

    p = argparse.ArgumentParser(prog="scripts/gpu-check.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu-only", action="store_true", help="run the CPU half only (no GPU needed)")
    p.add_argument("--recognizer", default="base", help="recognizer.model (default: base, the packaged one)")
    p.add_argument("--translator", choices=["qwen2.5-1.5b", "gemma-270m", "none"], default="qwen2.5-1.5b",
                   help="the llama.cpp translator (default: qwen2.5-1.5b)")
    p.add_argument("--opus-mt", type=Path, help="also an OPUS-MT en-de CTranslate2 model directory "
                   "(babelfish models fetch opus-mt-en-de)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per device (default: 5)")
    p.add_argument("--models-dir", type=Path, default=Settings().models_dir, help="where models are assembled")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.repeat < 1:
        parser().error("--repeat must be 1 or more")
    if not args.cpu_only:
        problems = gpu_problems(args.translator, args.opus_mt)
        if problems:
            print("gpu-check: no GPU path on this machine (--cpu-only runs the CPU half):", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            return NO_GPU
    result = check(args)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    print(table(result))
    silent = [f"{name} on {device}" for name, engine in result["engines"].items() for device in result["devices"]
              if not engine[device]["output"].strip()]
    if silent:
        print(f"gpu-check: no output from {', '.join(silent)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
