"""``babelfish bench quality``: recognition WER, translation BLEU/chrF and round-trip ASR-BLEU, offline.

Everything runs on the embedded default engines (``load_engines``), loaded once, on real recorded speech
and real translations from Debian packages (``babelfish.devtools.corpus``, installed if missing):

=========================== ==============================================================================
set                         what is measured
=========================== ==============================================================================
en-telephone-8k             WER, English 8 kHz telephone prompts with 5+ words (asterisk), all of them
en-telephone-8k-30s-window  the same prompts with ``min_window_s=30`` (Whisper's own 30 s window)
nl-game-lines               WER, voice-acted Dutch game lines (fillets-ng), a fixed random subset
de-words                    WER (and exact-match accuracy), German single words (klettres)
nl-en-speech, nl-de-speech  BLEU/chrF, Dutch line audio -> recognize nl -> translate, against the game's
                            own English / German text of the line
en-de-text, de-en-text      BLEU/chrF, text translation of the held-out test split of the game's en/de
                            sentence pairs (``dev_test_split`` defaults: the dev set used to tune the
                            prompt is excluded)
en-de-asr-bleu              English prompt -> recognize -> translate to de -> German voice -> recognize de,
                            BLEU/chrF of that against the German translation text (is the speech we play
                            intelligible?)
nl-en-asr-bleu              Dutch line -> recognize -> translate to en -> English voice -> recognize en,
                            against the English translation text
nl-game-lines-30s-window,   the Dutch lines and German words again with Whisper's own 30 s window
de-words-30s-window
nl-game-lines-prompted      the Dutch lines with Whisper's prompt set to what was recognized of the two
                            lines before each in its level (as a room's recent lines would be)
en-de-dialogue(-context),   consecutive game lines (held out from the prompt's dev set), each translated
de-en-dialogue(-context)    alone, then with the conversation so far as context (``Room.context``)
language-id                 which of two languages an utterance is in, for every pair of en, es, fr, it
                            (Asterisk prompts), nl (game lines) and de (words), per length bucket, with
                            the confusion matrix (``babelfish.devtools.bench.language_id``); Whisper's own prior and
                            the uniform prior the server uses, side by side
de-voice-<voice>-8k         German voice intelligibility: German test sentences synthesized by every German
                            voice installed (espeak-ng, MBROLA de6/de7), band-limited to 8 kHz,
                            recognized; WER against the text
=========================== ==============================================================================

``--only text,dialogue,...`` runs the sets whose names contain one of the parts (and the recognition sets
they need).

WER normalisation (reference and hypothesis alike): Unicode NFKC and case folding; annotations in the
asterisk transcripts such as ``(note: does not say "2")`` dropped; ``#``/``*`` as "pound"/"star" and ``&``
as "and" (English); thousands separators dropped and ``28.8`` read "28 point 8"; apostrophes removed
(``don't`` = ``dont``); every other punctuation character, hyphens included, becomes a space; number words
become digits: zero..twenty (en), null..zwölf with ``eins`` (de), nul..twaalf with ``één`` (nl); the bare
``een``/``ein`` are articles and stay words. BLEU and chrF are sacrebleu's corpus scores on the raw text.

Timing: ``seconds`` is the wall time a set added. Work shared between sets is done once and counted where
it is first done: the recognition of the nl speech-translation sets is in nl-game-lines, the English
recognition of en-de-asr-bleu in en-telephone-8k, the translations of nl-en-asr-bleu in nl-en-speech.
``seconds_per_item`` for the recognition sets is the recognizer's own mean time per utterance.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from babelfish.core import audio
from babelfish.devtools.bench import quality_report
from babelfish.devtools.bench.quality_report import Progress, SetResult
from babelfish.devtools.bench.scoring import bleu_chrf, normalize, word_errors

T = TypeVar("T")

# Default items per set (None: all). A full run with these takes about 13 minutes on 2 otherwise idle
# cores, and about twice that when another process competes for them (llama.cpp suffers most).
DEFAULT_SIZES = {
    "en-telephone-8k": None,  # all (~210): the headline figure
    "en-telephone-8k-30s-window": None,
    "nl-game-lines": 300,  # also the items of nl-en-speech and nl-de-speech
    "de-words": None,  # all (34)
    "en-de-text": 200,  # the whole test split of dev_test_split's defaults
    "de-en-text": 200,
    "en-de-asr-bleu": 100,
    "language-id": 60,  # test clips per language and length bucket (fewer where a bucket has fewer)
    "language-id-overhead": 30,  # English prompts timed with and without identification
    "nl-en-asr-bleu": 100,
    "dialogue": 36,  # consecutive game lines per direction, each with and without context
    "de-voice": 25,  # German sentences per voice
}
SEED = 0
def pick(items: Sequence[T], n: int | None, seed: int = SEED) -> list[T]:
    """A deterministic subset of ``n`` items (all when ``n`` is None or large enough), in their order."""
    if n is None or n >= len(items):
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), max(0, n)))
    return [items[i] for i in keep]


# --- the run ---------------------------------------------------------------------------------------


class QualityBench:
    def __init__(self, engines: Any, settings: Any, limit: int | None, progress: Progress | None = None,
                 only: Sequence[str] | None = None) -> None:
        self.engines = engines
        self.only = list(only) if only else None
        self.settings = settings
        self.limit = limit
        self.progress = progress or Progress()
        self.results: dict[str, SetResult] = {}
        self._asr: dict[tuple[str, str, float, str], tuple[str, float, float]] = {}  # -> (text, seconds, duration)
        self._mt: dict[tuple[str, str, str], str] = {}
        self.language_id: dict[str, Any] | None = None
        self.sizes, self.seed = DEFAULT_SIZES, SEED

    def wants(self, *names: str) -> bool:
        """Whether any of these sets is asked for (``--only``: names or parts of names)."""
        return self.only is None or any(part in name for name in names for part in self.only)

    def size(self, name: str, default: int | None = None) -> int | None:
        n = DEFAULT_SIZES.get(name, default)
        if self.limit is not None:
            n = self.limit if n is None else min(n, self.limit)
        return n

    # -- engine calls, cached so that sets sharing a stage do it once --------------------------------
    def recognize(self, path: Path, language: str, prompt: str = "") -> tuple[str, float, float]:
        rec = self.engines.recognizer
        window = rec.window_s(language) if hasattr(rec, "window_s") else 0.0
        key = (str(path), language, float(window), prompt)
        if key not in self._asr:
            samples, rate = audio.read_wav(path)
            t0 = time.perf_counter()
            text = rec.transcribe_sync(samples, rate, language, prompt) if prompt else rec.transcribe_sync(
                samples, rate, language)
            self._asr[key] = (text, time.perf_counter() - t0, samples.size / rate)
        return self._asr[key]

    @contextlib.contextmanager
    def whisper_window(self, seconds: float) -> Iterator[None]:
        """Every language recognized with this window for a while (Whisper's own: 30)."""
        rec = self.engines.recognizer
        saved = rec.min_window_s, dict(getattr(rec, "window_by_language", {}))
        rec.min_window_s, rec.window_by_language = seconds, {}
        try:
            yield
        finally:
            rec.min_window_s, rec.window_by_language = saved

    def recognize_samples(self, samples: np.ndarray, rate: int, language: str) -> str:
        return self.engines.recognizer.transcribe_sync(samples, rate, language)

    def translate(self, text: str, source: str, target: str) -> str:
        key = (text, source, target)
        if key not in self._mt:
            self._mt[key] = self.engines.translator.translate_sync(text, source, target) if text.strip() else ""
        return self._mt[key]

    def speak(self, text: str, language: str) -> tuple[np.ndarray, int]:
        """The translation as the listener's phone leg carries it (the leg's sample rate)."""
        if not text.strip():
            return np.zeros(0, dtype=np.float32), self.settings.sample_rate
        samples, rate = self.engines.voices.get(language).synthesize_sync(text)
        return audio.resample(samples, rate, self.settings.sample_rate), self.settings.sample_rate

    def _loop(self, name: str, items: Sequence[T], fn: Callable[[T], Any]) -> list[Any]:
        return self.progress.each(name, items, fn)

    def _done(self, result: SetResult) -> None:
        self.results[result.name] = result
        figures = [f"{k} {v:.2f}" for k, v in (("WER", result.wer), ("BLEU", result.bleu), ("chrF", result.chrf),
                                                ("acc", result.accuracy)) if v is not None]
        self.progress.note(f"{result.name}: {', '.join(figures)} ({result.n} items, {result.seconds:.0f} s)")

    # -- sets ---------------------------------------------------------------------------------------
    def wer_set(self, name: str, clips: Sequence[Any], language: str, *, accuracy: bool = False) -> list[str]:
        t0 = time.perf_counter()
        rows = self._loop(name, clips, lambda clip: self.recognize(clip.path, language))
        hyps = [text for text, _, _ in rows]
        refs = [clip.text for clip in clips]
        wer, n = word_errors(refs, hyps, language)
        asr_s = sum(s for _, s, _ in rows)
        duration = sum(d for _, _, d in rows)
        result = SetResult(name, n, time.perf_counter() - t0, wer=wer, per_item=asr_s / max(1, len(rows)),
                           rtf=asr_s / duration if duration else None,
                           examples=[{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps, strict=True))[:3]])
        if accuracy:
            hits = sum(normalize(r, language) == normalize(h, language) for r, h in zip(refs, hyps, strict=True))
            result.accuracy = 100.0 * hits / max(1, len(refs))
        self._done(result)
        return hyps

    def translation_set(self, name: str, sources: Sequence[str], references: Sequence[str], source: str,
                        target: str) -> list[str]:
        t0 = time.perf_counter()
        hyps = self._loop(name, list(sources), lambda text: self.translate(text, source, target))
        bleu, chrf = bleu_chrf(hyps, references)
        seconds = time.perf_counter() - t0
        self._done(SetResult(name, len(hyps), seconds, bleu=bleu, chrf=chrf, per_item=seconds / max(1, len(hyps)),
                             examples=[{"src": s, "ref": r, "hyp": h}
                                       for s, r, h in list(zip(sources, references, hyps, strict=True))[:3]]))
        return hyps

    def round_trip_set(self, name: str, sources: Sequence[str], source: str, target: str) -> None:
        """``sources``: recognized text; translate, speak in ``target``, recognize that, score vs the MT text."""
        t0 = time.perf_counter()

        def one(text: str) -> tuple[str, str]:
            translation = self.translate(text, source, target)
            samples, rate = self.speak(translation, target)
            return translation, self.recognize_samples(samples, rate, target) if samples.size else ""

        rows = self._loop(name, list(sources), one)
        refs = [t for t, _ in rows]
        hyps = [h for _, h in rows]
        bleu, chrf = bleu_chrf(hyps, refs)
        seconds = time.perf_counter() - t0
        self._done(SetResult(name, len(rows), seconds, bleu=bleu, chrf=chrf, per_item=seconds / max(1, len(rows)),
                             examples=[{"ref": r, "hyp": h} for r, h in rows[:3]]))

    def dialogue_sets(self, source: str, target: str, tuned: set[tuple[str, str]]) -> None:
        """Consecutive lines translated alone, then with the conversation so far, as a call would (the
        context holds the translator's own earlier translations, through ``Room.context``)."""
        from babelfish.core.rooms import Room
        from babelfish.devtools import corpus

        runs = [run[:6] for run in corpus.dialogue_runs("en", "de", min_length=6)
                if not tuned & set(run[:6])]
        size = self.size("dialogue") or 36
        runs = pick(runs, -(-size // 6))
        if source == "de":
            runs = [[(b, a) for a, b in run] for run in runs]
        runs[-1] = runs[-1][: size - 6 * (len(runs) - 1)]  # exactly ``size`` lines
        name = f"{source}-{target}-dialogue"
        lines = [pair for run in runs for pair in run]
        self.translation_set(name, [a for a, _ in lines], [b for _, b in lines], source, target)
        n = self.settings.translator.context_lines or 4
        translate = getattr(self.engines.translator, "translate_sync", None)
        t0 = time.perf_counter()
        hyps: list[str] = []
        for run in runs:
            room = Room(id="bench")
            for text, _ in run:
                out = translate(text, source, target, room.context(source, target, n)) if translate else ""
                room.remember(source, text, {target: out})
                hyps.append(out)
                self.progress.step(name + "-context", len(hyps), len(lines))
        bleu, chrf = bleu_chrf(hyps, [b for _, b in lines])
        seconds = time.perf_counter() - t0
        examples = [{"src": a, "ref": b, "hyp": h} for (a, b), h in zip(lines, hyps, strict=True)][:3]
        self._done(SetResult(name + "-context", len(hyps), seconds, bleu=bleu, chrf=chrf,
                             per_item=seconds / max(1, len(hyps)), examples=examples))

    def prompted_set(self, lines: Sequence[Any], every_line: Sequence[Any]) -> None:
        """The Dutch lines again, each with Whisper's prompt set to what was recognized of the two lines
        before it in its level (same scene and topic, as a room's recent lines would be)."""
        n = self.settings.recognizer.context_lines or 2
        order = [clip.path for clip in every_line]
        index = {path: i for i, path in enumerate(order)}

        def one(clip: Any) -> str:
            i = index[clip.path]
            before = [order[j] for j in range(max(0, i - n), i) if order[j].parent == clip.path.parent]
            prompt = " ".join(self.recognize(path, "nl")[0] for path in before)
            return self.recognize(clip.path, "nl", prompt)[0]

        t0 = time.perf_counter()
        hyps = self._loop("nl-game-lines-prompted", list(lines), one)
        refs = [clip.text for clip in lines]
        wer, count = word_errors(refs, hyps, "nl")
        examples = [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps, strict=True))[:3]]
        self._done(SetResult("nl-game-lines-prompted", count, time.perf_counter() - t0, wer=wer, examples=examples))

    def voice_sets(self, sentences: Sequence[str]) -> None:
        """Every German voice this machine has, band-limited to 8 kHz as a narrowband phone line carries it,
        recognized (the hardest rate a leg can have; wideband legs hear it better)."""
        from babelfish.engines.voices import mbrola_installed

        specs = ["espeak:de"] + [f"mbrola:{v}" for v in ("de6", "de7") if mbrola_installed(v)]
        for spec in specs:
            voice = self.engines.voices._load(spec)
            name = "de-voice-" + spec.replace(":", "-") + "-8k"

            def one(text: str, voice: Any = voice) -> str:
                samples, rate = voice.synthesize_sync(text)
                return self.recognize_samples(audio.resample(samples, rate, 8000), 8000, "de")

            t0 = time.perf_counter()
            hyps = self._loop(name, list(sentences), one)
            wer, n = word_errors(sentences, hyps, "de")
            examples = [{"ref": r, "hyp": h} for r, h in list(zip(sentences, hyps, strict=True))[:3]]
            self._done(SetResult(name, n, time.perf_counter() - t0, wer=wer, examples=examples))

    def run(self) -> None:
        from babelfish.devtools import corpus

        rec = self.engines.recognizer
        prompts = pick(corpus.asterisk_prompts(min_words=5), self.size("en-telephone-8k"))
        english = (self.wer_set("en-telephone-8k", prompts, "en")
                   if self.wants("en-telephone-8k", "en-de-asr-bleu") else [])

        window = getattr(rec, "min_window_s", None)
        if window is not None and self.wants("en-telephone-8k-30s-window"):
            with self.whisper_window(30.0):
                self.wer_set("en-telephone-8k-30s-window", pick(prompts, self.size("en-telephone-8k-30s-window")),
                             "en")

        # Dutch lines whose en/de text is in the translation dev set (prompt tuning) are left out.
        dev, _ = corpus.dev_test_split(corpus.sentence_pairs("en", "de"))
        tuned = set(dev)
        lines = [c for c in corpus.fillets_dutch_lines()
                 if "en" in c.translations and "de" in c.translations
                 and (c.translations["en"], c.translations["de"]) not in tuned]
        lines = pick(lines, self.size("nl-game-lines"))
        dutch = (self.wer_set("nl-game-lines", lines, "nl")
                 if self.wants("nl-game-lines", "nl-en-speech", "nl-de-speech", "nl-en-asr-bleu") else [])
        words = pick(corpus.klettres_words("de"), self.size("de-words"))
        if self.wants("de-words"):
            self.wer_set("de-words", words, "de", accuracy=True)
        if window is not None:  # the same Dutch and German recordings with Whisper's own 30 s window
            with self.whisper_window(30.0):
                if self.wants("nl-game-lines-30s-window"):
                    self.wer_set("nl-game-lines-30s-window", lines, "nl")
                if self.wants("de-words-30s-window"):
                    self.wer_set("de-words-30s-window", words, "de", accuracy=True)
            if self.wants("nl-game-lines-prompted"):
                self.prompted_set(lines, corpus.fillets_dutch_lines())

        if self.wants("nl-en-speech", "nl-en-asr-bleu"):
            self.translation_set("nl-en-speech", dutch, [c.translations["en"] for c in lines], "nl", "en")
        if self.wants("nl-de-speech"):
            self.translation_set("nl-de-speech", dutch, [c.translations["de"] for c in lines], "nl", "de")

        _, test = corpus.dev_test_split(corpus.sentence_pairs("en", "de"))
        test = pick(test, self.size("en-de-text"))
        if self.wants("en-de-text"):
            self.translation_set("en-de-text", [en for en, _ in test], [de for _, de in test], "en", "de")
        test = pick(test, self.size("de-en-text"))
        if self.wants("de-en-text"):
            self.translation_set("de-en-text", [de for _, de in test], [en for en, _ in test], "de", "en")

        if self.wants("en-de-asr-bleu"):
            by_path = dict(zip((c.path for c in prompts), english, strict=True))
            trip = pick(prompts, self.size("en-de-asr-bleu"))
            self.round_trip_set("en-de-asr-bleu", [by_path[c.path] for c in trip], "en", "de")
        if self.wants("nl-en-asr-bleu"):  # the translations to English are nl-en-speech's (cached)
            self.round_trip_set("nl-en-asr-bleu", pick(dutch, self.size("nl-en-asr-bleu")), "nl", "en")

        if self.wants("en-de-dialogue"):
            self.dialogue_sets("en", "de", tuned)
        if self.wants("de-en-dialogue"):
            self.dialogue_sets("de", "en", tuned)
        if self.wants("de-voice"):
            self.voice_sets([de for _, de in pick(test, self.size("de-voice")) if len(de.split()) >= 3])
        if self.wants("language-id"):
            self.language_id_set()

    def language_id_set(self) -> None:
        """Language identification on the test clips, with Whisper's prior and without (one pass)."""
        from babelfish.devtools import corpus
        from babelfish.devtools.bench import language_id
        from babelfish.engines.whisper import without_training_prior

        rec = self.engines.recognizer
        if not hasattr(rec, "identify_sync"):
            self.progress.note(f"language-id skipped: {getattr(rec, 'name', rec)!r} does not identify languages")
            return
        t0 = time.perf_counter()
        _, test = language_id.split(test_per_bucket=self.size("language-id") or 60)
        uniform, rec.uniform_prior = rec.uniform_prior, False
        try:
            raw = language_id.probabilities(rec.identify_sync, test,
                                            lambda done, total: self.progress.step("language-id", done, total))
        finally:
            rec.uniform_prior = uniform
        threshold = self.settings.languages.min_confidence
        out: dict[str, Any] = {"n": len(test), "seconds_per_item": round((time.perf_counter() - t0) / len(test), 3)}
        for name, probs in (("uniform_prior", [without_training_prior(p) for p in raw]), ("whisper_prior", raw)):
            figures = language_id.figures(test, probs, threshold)
            figures.update(language_id.summary(figures))
            out[name] = figures
        if hasattr(rec, "recognize_sync"):  # the cost on the hot path, on English prompts of 5+ words
            self.progress.note("language-id: timing recognition with and without identification ...")
            timed = pick(corpus.asterisk_prompts(5), self.size("language-id-overhead"))
            out["overhead"] = language_id.overhead(rec.recognize_sync, timed, ["en-GB", "de-DE"])
        self.language_id = out

def run(args: argparse.Namespace) -> int:
    from babelfish.devtools.bench.report import emit

    t0 = time.perf_counter()
    limit, only, settings, engines, progress = quality_report.prepare(args)
    bench = QualityBench(engines, settings, limit, progress, only or None)
    bench.run()
    total = time.perf_counter() - t0
    result = quality_report.result(bench)
    result["total_seconds"] = round(total, 1)
    emit(result, quality_report.table(bench, total), args)
    return 0
