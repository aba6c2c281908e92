"""Resident memory of the default engines, loaded and warmed up (a translation each way, a sentence from each
default voice), with each packaged translator.

Each translator is measured in a process of its own (so one model's pages do not count for the other),
after one translation each way so that the weights' pages are actually resident:

    .venv/bin/python benchmarks/resident_memory.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def measure() -> dict[str, float | str]:
    import asyncio

    from babelfish.config.settings import load_settings
    from babelfish.devtools.bench.calls import rss_mb
    from babelfish.devtools.bench.report import machine
    from babelfish.engines.registry import load_engines

    settings = load_settings(None)
    engines = load_engines(settings)

    async def warm() -> None:
        await engines.translator.translate("Where is the nearest train station?", "en", "de")
        await engines.translator.translate("Wo ist der nächste Bahnhof?", "de", "en")
        for tag, text in (("de", "Wo ist der nächste Bahnhof?"), ("en", "Where is the nearest train station?"),
                          ("fr", "Où est la gare la plus proche ?")):  # Kokoro (two languages) and Piper
            await engines.voices.get(tag).synthesize(text)

    asyncio.run(warm())
    return {"translator": settings.translator.model, "rss_mb": round(rss_mb(), 1), "cpu": machine()["cpu"]}


if __name__ == "__main__":
    if "--one" in sys.argv:
        print(json.dumps(measure()))
        sys.exit(0)
    for model in ("qwen2.5-1.5b", "gemma-270m"):
        env = {**os.environ, "BABELFISH_TRANSLATOR__MODEL": model}
        out = subprocess.run([sys.executable, __file__, "--one"], env=env, stdout=subprocess.PIPE, text=True,
                             check=True).stdout.strip().splitlines()[-1]
        print(out)
