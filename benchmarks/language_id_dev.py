"""Choose ``languages.min_confidence`` and the prior on the DEV clips of ``babelfish.devtools.bench.language_id``
(never on the test clips that ``babelfish bench quality --only language-id`` reports).

    .venv/bin/python benchmarks/language_id_dev.py [--json out.json]

For each prior (Whisper's own; divided by its training hours) and each threshold it prints the pairwise
accuracy, the share of utterances that would be recognized as the other language when the leg is in the
wrong one (switch), and when it is in the right one (false switch), per length bucket.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from babelfish.config.settings import Settings
from babelfish.devtools import corpus
from babelfish.devtools.bench import language_id
from babelfish.devtools.bench.report import machine
from babelfish.engines.whisper import WhisperRecognizer, without_training_prior

THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 0.95)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    corpus.ensure_installed()
    settings = Settings()
    rec = WhisperRecognizer(settings.recognizer.model, settings.models_dir, cpu_threads=settings.recognizer.cpu_threads)
    rec.uniform_prior = False
    dev, _ = language_id.split()
    print(f"{len(dev)} dev clips", file=sys.stderr)
    raw = language_id.probabilities(rec.identify_sync, dev,
                                    lambda done, total: print(f"\r{done}/{total}", end="", file=sys.stderr))
    print(file=sys.stderr)
    out: dict[str, Any] = {"machine": machine(), "n": len(dev), "figures": {}}
    for prior, probs in (("whisper_prior", raw), ("uniform_prior", [without_training_prior(p) for p in raw])):
        for threshold in THRESHOLDS:
            figures = language_id.figures(dev, probs, threshold)
            summary = language_id.summary(figures)
            worst = {b: max(float(p[b]["false_switch"]) for p in figures["pairs"].values() if b in p)
                     for b in language_id.BUCKETS}
            switch = {b: round(sum(float(p[b]["switch"]) for p in figures["pairs"].values() if b in p)
                               / sum(1 for p in figures["pairs"].values() if b in p), 1) for b in language_id.BUCKETS}
            out["figures"][f"{prior}@{threshold}"] = {**summary, "worst_false_switch": worst, "mean_switch": switch}
            print(f"{prior:<14} {threshold:<5} accuracy {summary}  mean switch {switch}  worst false switch {worst}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
