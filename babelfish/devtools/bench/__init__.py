"""``babelfish bench latency|quality|load|turns|threads|languages|doubletalk|glossary``: each prints a readable
table, or one JSON object with --json.

Every benchmark runs offline on real recorded speech (Debian packages it installs if missing, see
babelfish/devtools/corpus.py) through the same code a call uses."""

from __future__ import annotations

import argparse


def main(args: argparse.Namespace) -> int:
    if args.kind == "latency":
        from babelfish.devtools.bench.latency import run
    elif args.kind == "quality":
        from babelfish.devtools.bench.quality import run
    elif args.kind == "turns":
        from babelfish.devtools.bench.turns import run
    elif args.kind == "languages":
        from babelfish.devtools.bench.languages import run
    elif args.kind == "glossary":
        from babelfish.devtools.bench.glossary import run
    elif args.kind == "doubletalk":
        from babelfish.devtools.bench.doubletalk import run
    elif args.kind == "threads":
        from babelfish.devtools.bench.threads import run
    elif getattr(args, "replicas", None):  # the engines on Ray Serve, per replica count
        from babelfish.devtools.bench.replicas import run
    else:
        from babelfish.devtools.bench.load import run
    return run(args)
