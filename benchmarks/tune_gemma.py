"""Tune and measure the Gemma-3-270M translator on real sentence pairs (docs/translation.md).

Sentence pairs: the English/German lines of the Fish Fillets NG game scripts (``babelfish.devtools.corpus``),
split once into a dev set (tuning) and a held-out test set (reported, never tuned on). Both directions
are scored with sacrebleu (BLEU, chrF). Latency is the wall time of ``translate_sync`` per sentence
with the few-shot prefix cached, i.e. what a call sees.

    .venv/bin/python benchmarks/tune_gemma.py                  # all dev variants, then test
    .venv/bin/python benchmarks/tune_gemma.py --only baseline,final --test-only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import sacrebleu

from babelfish.devtools import corpus
from babelfish.engines import gemma
from babelfish.engines.gemma import GemmaTranslator, PromptConfig

GAME_LANGUAGES = ["en", "de", "fr", "es", "it", "nl"]


@dataclass(frozen=True)
class Variant:
    name: str
    config: PromptConfig
    note: str


def register_example_sets(exclude: set[str]) -> None:
    """Example tables to compare with the hand-written phone lines.

    ``original``: the three pairs the engine had before tuning (formal "Sie").
    ``game``: eight game lines in every language, none from dev or test, 5-12 words, spread over the
    corpus by a fixed stride so that the choice is deterministic and not cherry-picked.
    """
    gemma.EXAMPLE_SETS["original"] = {
        "en": ["Hello, can you hear me?", "I will call you back tomorrow morning.",
               "Where is the nearest train station?"],
        "de": ["Hallo, können Sie mich hören?", "Ich rufe Sie morgen früh zurück.",
               "Wo ist der nächste Bahnhof?"],
    }
    rows = [row for row in corpus.parallel_lines(GAME_LANGUAGES)
            if not exclude & set(row.values()) and 5 <= len(row["en"].split()) <= 12
            and "..." not in row["en"]]
    step = max(1, len(rows) // 8)
    picked = rows[step // 2:: step][:8]
    gemma.EXAMPLE_SETS["game"] = {lang: [row[lang] for row in picked] for lang in GAME_LANGUAGES}


# Every field spelled out, so that the variants keep their meaning if the engine's defaults change.
BASE = PromptConfig(shots=3, labels="name", header=True, blank_lines=True, repeat_penalty=1.0,
                    max_ratio=3.0, guard=False, split_sentences=False, examples="phone")
ORIGINAL = PromptConfig(shots=3, examples="original", guard=False, max_ratio=1000.0)


def variants() -> list[Variant]:
    """Tried in this order; each step keeps the best of the one before (see docs/translation.md)."""
    final = gemma.PromptConfig()  # the engine's defaults are the final choice
    p8 = replace(BASE, shots=8)  # the best of the example steps, base of the format/decoding steps
    return [
        Variant("baseline", ORIGINAL, "engine before tuning: 3 formal phone pairs, header, names"),
        Variant("phone3", replace(BASE, shots=3, guard=False), "3 new phone pairs (informal du)"),
        Variant("phone5", replace(BASE, shots=5, guard=False), "5 phone pairs"),
        Variant("phone8", replace(BASE, shots=8, guard=False), "8 phone pairs"),
        Variant("game3", replace(BASE, shots=3, examples="game", guard=False), "3 game-dialogue pairs"),
        Variant("game5", replace(BASE, shots=5, examples="game", guard=False), "5 game-dialogue pairs"),
        Variant("game8", replace(BASE, shots=8, examples="game", guard=False), "8 game-dialogue pairs"),
        Variant("no-header", replace(p8, header=False, guard=False), "8 phone pairs, no header line"),
        Variant("codes", replace(p8, labels="code", guard=False), "8 phone pairs, 'en:'/'de:' labels"),
        Variant("no-blank", replace(p8, blank_lines=False, guard=False), "8 phone pairs, no blank lines"),
        Variant("rep1.1", replace(p8, repeat_penalty=1.1, guard=False), "8 phone pairs, repeat penalty 1.1"),
        Variant("rep1.3", replace(p8, repeat_penalty=1.3, guard=False), "8 phone pairs, repeat penalty 1.3"),
        Variant("guard", replace(p8, guard=True), "8 phone pairs + empty/copy/loop guard"),
        Variant("whole-lines", replace(final, split_sentences=False),
                "8 phone pairs, no header, penalty 1.1, guard; whole lines"),
        Variant("final", final, "engine defaults: the same, one sentence at a time"),
    ]


@dataclass
class Score:
    bleu: float
    chrf: float
    empty: int
    copies: int
    latency: list[float]


def evaluate(tr: GemmaTranslator, config: PromptConfig, pairs: list[tuple[str, str]],
             source: str, target: str) -> Score:
    tr.config = config
    tr.translate_sync("Hello.", source, target)  # warm this pair's prefix (a call does that once)
    hyps, refs, times = [], [], []
    for src, ref in pairs:
        start = time.perf_counter()
        hyp = tr.translate_sync(src, source, target)
        times.append(time.perf_counter() - start)
        hyps.append(hyp)
        refs.append(ref)
    bleu = sacrebleu.corpus_bleu(hyps, [refs]).score
    chrf = sacrebleu.corpus_chrf(hyps, [refs]).score
    empty = sum(1 for h in hyps if not h.strip())
    copies = sum(1 for (s, _), h in zip(pairs, hyps, strict=True) if gemma.is_copy(s, h))
    return Score(bleu, chrf, empty, copies, times)


def run(tr: GemmaTranslator, variant: Variant, split: str, en_de: list[tuple[str, str]]) -> None:
    de_en = [(de, en) for en, de in en_de]
    a = evaluate(tr, variant.config, en_de, "en", "de")
    b = evaluate(tr, variant.config, de_en, "de", "en")
    lat = a.latency + b.latency
    print(f"| {split} | {variant.name} | {a.bleu:5.1f} | {a.chrf:5.1f} | {b.bleu:5.1f} | {b.chrf:5.1f} "
          f"| {a.empty + b.empty} | {a.copies + b.copies} | {statistics.mean(lat):.3f} "
          f"| {sorted(lat)[int(0.9 * len(lat))]:.3f} | {variant.note} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev-size", type=int, default=50)
    parser.add_argument("--test-size", type=int, default=200)
    parser.add_argument("--only", help="comma-separated variant names (default: all)")
    parser.add_argument("--test-only", action="store_true", help="skip dev, score baseline+final on test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models-dir", type=Path, default=Path(tempfile.gettempdir()) / "babelfish-models")
    args = parser.parse_args(argv)

    corpus.ensure_installed(["fillets-ng-data"])
    pairs = corpus.sentence_pairs("en", "de")
    dev, test = corpus.dev_test_split(pairs, dev_size=args.dev_size, test_size=args.test_size, seed=0)
    register_example_sets({text for pair in dev + test for text in pair})
    chosen = variants()
    if args.only:
        names = set(args.only.split(","))
        chosen = [v for v in chosen if v.name in names]
    print(f"{len(pairs)} en/de pairs; dev {len(dev)}, test {len(test)} (seed 0); "
          f"each direction scored separately", flush=True)
    tr = GemmaTranslator(args.models_dir, threads=args.threads)
    print("| split | variant | en→de BLEU | en→de chrF | de→en BLEU | de→en chrF | empty | copies "
          "| mean s | p90 s | what |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    if not args.test_only:
        for variant in chosen:
            run(tr, variant, f"dev {len(dev)}", dev)
    finals = [v for v in variants() if v.name in ("baseline", "final")]
    for variant in finals if (args.test_only or not args.only) else []:
        run(tr, variant, f"test {len(test)}", test)
    return 0


if __name__ == "__main__":
    sys.exit(main())
