"""``babelfish bench languages``: one row per offered language, on the embedded engines, offline.

==================  ============================================================================================
column              what is measured (test half; ``--dev`` measures the dev half and chooses settings on it)
==================  ============================================================================================
recognition         WER of Whisper on real recorded sentences: Asterisk prompts (en, es, fr, it, 8 kHz), the
                    game's voice-acted Dutch lines; German has only single words (klettres: shown apart, not
                    judged, a word alone is harder than a sentence); "no recordings" elsewhere
translation         BLEU/chrF to and from English on the game's parallel lines (de es fr it nl pl ru sv cs);
                    for pt, ja, zh the server's own sentences (``core/languages.PROMPTS``) in both languages;
                    the product's prompt beside the one-line reference (same model, same text)
voice               the language's default voice (Kokoro) and espeak-ng speaking the same sentences, band-limited
                    to 8 kHz (a phone leg), recognized again: WER (CER for ja, zh), beside the real speaker's
                    WER on those sentences where one exists
first frame         en -> language: the translator's first clause, then its synthesis (median seconds), with
                    espeak-ng's synthesis of the same clause beside it
verdict             :func:`babelfish.engines.support.judge` on the row
==================  ============================================================================================

``--dev`` runs the same material's dev half to choose what the product uses (the choices are then written
into ``engines/support.py`` and ``engines/qwen.py`` by hand, with this file's JSON as the evidence): the
Kokoro style per language, the prompt per pair (examples, zero-shot; the one-line reference beside),
Whisper's beam and window per language, and each language's example turns translated back to English.
``--save`` writes the test run's rows where the server reads its verdicts (``engines/measured_languages.json``).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from babelfish.core import audio, languages
from babelfish.devtools.bench.quality_report import Progress, only_of, prepare
from babelfish.devtools.bench.scoring import bleu_chrf, word_errors
from babelfish.pipeline.synthesize import first_piece, sentences

T = TypeVar("T")

ASTERISK = ("en", "es", "fr", "it")
GAME = ("de", "es", "fr", "it", "nl", "pl", "ru", "sv", "cs")
CHARACTERS = ("ja", "zh")  # no spaces between words: scored by characters
DEV_SIZE = 50  # the dev half of every pool (fixed, so a --limit never moves a test item into it)
SIZES = {"recognition": 40, "translation": 30, "voice": 15, "latency": 6}
DEV_SIZES = {"recognition": 20, "translation": 12, "voice": 6}
PHONE_RATE = 8000


def halves(items: Sequence[T], dev: bool, n: int | None) -> list[T]:
    """The dev or the test half of ``items`` (disjoint, deterministic), at most ``n`` of it."""
    from babelfish.devtools import corpus

    dev_part, test_part = corpus.dev_test_split(items, dev_size=min(DEV_SIZE, len(items) // 3),
                                                test_size=len(items))
    chosen = dev_part if dev else test_part
    return chosen if n is None else chosen[:n]


def errors(references: Sequence[str], hypotheses: Sequence[str], language: str) -> float:
    """WER in percent; for languages written without spaces, the character error rate."""
    if language in CHARACTERS:
        references = [" ".join(r.replace(" ", "")) for r in references]
        hypotheses = [" ".join(h.replace(" ", "")) for h in hypotheses]
    return round(word_errors(references, hypotheses, language)[0], 1)


def recordings(language: str) -> list[Any]:
    """Real recorded sentences of ``language`` with their text (empty where none ship here)."""
    from babelfish.devtools import corpus

    if language in ASTERISK:
        return corpus.asterisk_prompts(min_words=4, language=language)
    if language == "nl":
        return corpus.fillets_dutch_lines()
    return []


def parallel(language: str, dev: bool) -> list[tuple[str, str]]:
    """(English, language) sentence pairs of one half: the game's lines, else (test half only) the server's
    own sentences; their dev half is empty (the example turns are the only other text, and they are in the
    prompt)."""
    from babelfish.devtools import corpus

    if language in GAME:
        return halves(corpus.sentence_pairs("en", language), dev, None)
    if dev:
        return []
    return [(texts["en"], texts[language]) for key, texts in languages.PROMPTS.items()
            if key != "menu_option" and "en" in texts and language in texts]  # each menu option names its own


def voice_sentences(language: str, dev: bool, n: int) -> list[tuple[str, Any]]:
    """Sentences for the voice, each with its real recording where one exists (the real speaker's WER on the
    same words), from the same half as everything else. Languages without game lines: the example turns
    (dev), the server's sentences (test)."""
    from babelfish.engines.gemma import EXAMPLES

    clips = recordings(language)
    if clips and language in ASTERISK:
        return [(clip.text, clip) for clip in halves(clips, dev, n)]
    if language not in GAME and dev:
        return [(line, None) for line in EXAMPLES.get(language, [])[:n]]
    lines = [b for _, b in parallel(language, dev) if language in CHARACTERS or 4 <= len(b.split()) <= 20]
    return [(line, None) for line in lines[:n]]


class LanguageBench:
    def __init__(self, engines: Any, settings: Any, *, dev: bool, limit: int | None, only: Sequence[str],
                 progress: Progress) -> None:
        self.engines, self.settings, self.dev, self.limit = engines, settings, dev, limit
        self.only = list(only) or list(languages.NAMES)
        self.progress = progress
        self.sizes = DEV_SIZES if dev else SIZES
        self._voices: dict[tuple[str, str], Any] = {}

    def size(self, part: str) -> int:
        n = self.sizes.get(part, 10)
        return n if self.limit is None else min(n, self.limit)

    def _each(self, name: str, items: Sequence[T], fn: Callable[[T], Any]) -> list[Any]:
        return self.progress.each(name, items, fn)

    # -- the stages ------------------------------------------------------------------------------------
    def recognize(self, samples: np.ndarray, rate: int, language: str) -> str:
        return str(self.engines.recognizer.transcribe_sync(samples, rate, language))

    def recognize_clip(self, clip: Any, language: str) -> str:
        samples, rate = audio.read_wav(clip.path)
        return self.recognize(samples, rate, language)

    def heard_at_phone_rate(self, spec: str, language: str, text: str) -> tuple[str, float, float]:
        """What Whisper hears of ``text`` spoken by voice ``spec`` over an 8 kHz leg; synthesis seconds; audio s."""
        voice = self.voice(spec, language)
        t0 = time.perf_counter()
        samples, rate = voice.synthesize_sync(text)
        spent = time.perf_counter() - t0
        phone = audio.resample(samples, rate, PHONE_RATE)
        return self.recognize(phone, PHONE_RATE, language), spent, samples.size / rate

    def voice(self, spec: str, language: str) -> Any:
        key = (spec, languages.primary(language))
        if key not in self._voices:
            self._voices[key] = self.engines.voices._load(spec, languages.primary(language))
        return self._voices[key]

    def translate_as(self, style: str, source: str, target: str, text: str) -> str:
        return self.translate(text, source, target, style)

    def translate(self, text: str, source: str, target: str, style: str = "product") -> str:
        """``style``: "product" (each pair's own prompt), or one of :data:`qwen.STYLES` for every pair."""
        translator = self.engines.translator
        saved = getattr(translator, "style", None)
        if style != "product":
            translator.style = style
        try:
            return str(translator.translate_sync(text, source, target))
        finally:
            if style != "product":
                translator.style = saved

    # -- one language ----------------------------------------------------------------------------------
    def recognition(self, language: str) -> dict[str, Any]:
        from babelfish.devtools import corpus

        clips = recordings(language)
        out: dict[str, Any] = {}
        if clips:
            chosen = halves(clips, self.dev, self.size("recognition"))
            hyps = self._each(f"{language} recognition", chosen, lambda c: self.recognize_clip(c, language))
            out.update(recognition_wer=errors([c.text for c in chosen], hyps, language),
                       recognition_n=len(chosen), recognition_material="asterisk prompts" if language in ASTERISK
                       else "game lines (voice-acted)")
        if language == "de":
            words = halves(corpus.klettres_words("de"), self.dev, self.size("recognition"))
            hyps = self._each("de words", words, lambda c: self.recognize_clip(c, "de"))
            out.update(single_words_wer=errors([c.text for c in words], hyps, "de"), single_words_n=len(words))
        return out

    def voice_row(self, language: str, specs: Sequence[str]) -> dict[str, Any]:
        sentences = voice_sentences(language, self.dev, self.size("voice"))
        if not sentences:
            return {}
        texts = [text for text, _ in sentences]
        out: dict[str, Any] = {"voice_n": len(texts)}
        clips = [clip for _, clip in sentences if clip is not None]
        if len(clips) == len(sentences):
            real = self._each(f"{language} real speaker", clips, lambda c: self.recognize_clip(c, language))
            out["real_speaker_wer"] = errors(texts, real, language)
        for spec in specs:
            rows = self._each(f"{language} {spec}", texts, functools.partial(self.heard_at_phone_rate, spec, language))
            key = spec.replace(":", "_")
            out[f"voice_wer_{key}"] = errors(texts, [h for h, _, _ in rows], language)
            spoken = sum(d for _, _, d in rows)
            out[f"voice_rtf_{key}"] = round(sum(s for _, s, _ in rows) / spoken, 3) if spoken else None
            out.setdefault("examples", []).append({"voice": spec, "text": texts[0], "heard": rows[0][0]})
        return out

    def translation(self, language: str, styles: Sequence[str]) -> dict[str, Any]:
        if language == "en":
            return {}
        chosen = parallel(language, self.dev)[: self.size("translation")]
        if not chosen:
            return {}
        out: dict[str, Any] = {"translation_n": len(chosen),
                               "translation_material": "game lines" if language in GAME else "server sentences"}
        for source, target, name in (("en", language, "from_english"), (language, "en", "to_english")):
            src = [a if source == "en" else b for a, b in chosen]
            ref = [b if source == "en" else a for a, b in chosen]
            for style in styles:
                hyps = self._each(f"{source}->{target} {style}", src,
                                  functools.partial(self.translate_as, style, source, target))
                bleu, chrf = bleu_chrf(hyps, ref)
                out[f"{name}_{style}"] = {"bleu": round(bleu, 1), "chrf": round(chrf, 1)}
        return out

    def first_frame(self, language: str, spec: str) -> dict[str, Any]:
        """en -> language: the first clause the translator hands on, then its synthesis by ``spec`` and by
        espeak-ng (seconds, medians over the English sentences of the test half)."""
        if language == "en":
            return {}
        english = [a for a, _ in parallel("de", self.dev) if len(a.split()) >= 5]
        english = english[: self.size("latency")]
        translator = self.engines.translator
        firsts: list[float] = []
        voiced: list[float] = []
        espeak: list[float] = []
        fallback = "espeak:cmn" if language == "zh" else f"espeak:{language}"
        for text in english:
            t0 = time.perf_counter()
            clause = next(iter(translator.clauses_sync(text, "en", language)), "")
            firsts.append(time.perf_counter() - t0)
            for voice, times in ((spec, voiced), (fallback, espeak)):
                synth = self.voice(voice, language)
                piece = first_piece(sentences(clause or text)[0], getattr(synth, "first_piece_words", 0))[0]
                t1 = time.perf_counter()
                synth.synthesize_sync(piece)  # what the listener waits for: the first piece, as speak() cuts it
                times.append(time.perf_counter() - t1)
            self.progress.step(f"{language} first frame", len(firsts), len(english))
        return {"first_clause_s": round(statistics.median(firsts), 2),
                "first_piece_synthesis_s": round(statistics.median(voiced), 2),
                "first_piece_synthesis_espeak_s": round(statistics.median(espeak), 2),
                "first_frame_s": round(statistics.median(f + v for f, v in zip(firsts, voiced, strict=True)), 2)}

    def row(self, language: str) -> dict[str, Any]:
        from babelfish.engines import support
        from babelfish.engines.phonemes import DROPPED

        spec = support.default_voice(language)
        espeak = f"espeak:{'cmn' if language == 'zh' else language}"
        specs = [spec] + ([espeak] if not spec.startswith("espeak") else [])
        if language == "en":
            specs.append("kokoro:" + support.KOKORO_STYLES.get("de", "jm_kumo"))  # Piper and Kokoro side by side
        row: dict[str, Any] = {"name": languages.name(language), "voice": spec,
                               "examples": support.has_examples(language)}
        row.update(self.recognition(language))
        row.update(self.voice_row(language, specs))
        row["voice_wer"] = row.get(f"voice_wer_{spec.replace(':', '_')}")
        row.update(self.translation(language, ("product", "one-line")))
        for name in ("from_english", "to_english"):
            if f"{name}_product" in row:
                row[f"{name}_chrf"] = row[f"{name}_product"]["chrf"]
        row.update(self.first_frame(language, spec))
        row["dropped_phonemes"] = {sym: n for (lang, sym), n in DROPPED.items() if lang == language}
        verdict = support.judge(language, row)
        row["verdict"], row["reasons"] = verdict.rating, list(verdict.reasons)
        return row

    # -- the dev half: what the product's settings were chosen from -------------------------------------
    def dev_choices(self, language: str) -> dict[str, Any]:
        from babelfish.engines.gemma import EXAMPLES
        from babelfish.engines.kokoro import STYLES

        out: dict[str, Any] = {}
        if language != "en" and not support_voice_is_espeak(language):
            sentences = [t for t, _ in voice_sentences(language, True, self.size("voice"))]
            scores = {}
            for style in STYLES:
                rows = self._each(f"{language} style {style}", sentences,
                                  functools.partial(self.heard_at_phone_rate, f"kokoro:{style}", language))
                heard = [text for text, _, _ in rows]
                scores[style] = errors(sentences, heard, language)
            out["styles_wer"] = scores
            out["style"] = min(scores, key=lambda s: (scores[s], s != "jm_kumo"))
        clips = halves(recordings(language), True, self.size("recognition"))
        if clips:
            rec = self.engines.recognizer
            saved = rec.beam_size, dict(rec.window_by_language), dict(rec.beam_by_language)
            grid: dict[str, float] = {}
            try:
                for beam in (1, 5):
                    for window in (rec.min_window_s, 30.0):
                        rec.beam_size, rec.window_by_language, rec.beam_by_language = beam, {language: window}, {}
                        hyps = self._each(f"{language} beam {beam} window {window:g}", clips,
                                          lambda c: self.recognize_clip(c, language))
                        grid[f"beam {beam}, window {window:g} s"] = errors([c.text for c in clips], hyps, language)
            finally:
                rec.beam_size, rec.window_by_language, rec.beam_by_language = saved
            out["recognizer_wer"] = grid
        if language != "en":
            trans = self.translation(language, ("examples", "zero-shot"))  # the reference is the test run's
            out["prompts"] = {k: v for k, v in trans.items() if isinstance(v, dict)}
            if language in EXAMPLES:
                back = self._each(f"{language} examples back", EXAMPLES[language],
                                  lambda t: self.translate(t, language, "en", "zero-shot"))
                out["examples_back"] = {"chrf": round(bleu_chrf(back, EXAMPLES["en"])[1], 1),
                                        "translated": back}
        return out

    def run(self, each: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Every language's row; ``each`` is given the rows so far after each language (a long run keeps
        what it measured should it be stopped)."""
        rows: dict[str, Any] = {}
        for language in self.only:
            self.progress.note(f"{languages.name(language)} ({language}) ...")
            rows[language] = self.dev_choices(language) if self.dev else self.row(language)
            self.progress.note(json.dumps({language: _brief(rows[language])}, ensure_ascii=False))
            if each is not None:
                each(rows)
        return rows


def support_voice_is_espeak(language: str) -> bool:
    from babelfish.engines import support

    return support.default_voice(language).startswith("espeak:")


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not isinstance(v, (list, dict)) or k in ("styles_wer", "reasons")}


def _cell(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(rows: dict[str, Any], dev: bool) -> str:
    if dev:
        return json.dumps(rows, indent=1, ensure_ascii=False)
    head = ("lang  verdict     ASR WER  real spk  voice WER (default / espeak)  to en chrF (ref)  "
            "from en chrF (ref)  first clause + synth (espeak) s")
    lines = [head, "-" * len(head)]
    for lang, r in rows.items():
        espeak_key = next((k for k in r if k.startswith("voice_wer_espeak")), None)
        to_en, to_ref = r.get("to_english_product", {}), r.get("to_english_one-line", {})
        fr_en, fr_ref = r.get("from_english_product", {}), r.get("from_english_one-line", {})
        asr = _cell(r.get("recognition_wer")) if "recognition_wer" in r else (
            f"words {_cell(r.get('single_words_wer'))}" if "single_words_wer" in r else "no recordings")
        lines.append(
            f"{lang:4}  {r.get('verdict', '-'):10}  {asr:>7}  {_cell(r.get('real_speaker_wer')):>8}  "
            f"{_cell(r.get('voice_wer')):>6} / {_cell(r.get(espeak_key) if espeak_key else None):>6}"
            f"{'':16}{_cell(to_en.get('chrf')):>6} ({_cell(to_ref.get('chrf'))}){'':5}"
            f"{_cell(fr_en.get('chrf')):>6} ({_cell(fr_ref.get('chrf'))}){'':6}"
            f"{_cell(r.get('first_clause_s'), 2)} + {_cell(r.get('first_piece_synthesis_s'), 2)} "
            f"({_cell(r.get('first_piece_synthesis_espeak_s'), 2)})")
        for reason in r.get("reasons", []):
            lines.append(f"      {reason}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from babelfish.devtools.bench.report import emit, machine
    from babelfish.engines import support

    unknown = [tag for tag in only_of(args) if tag not in languages.NAMES]  # before minutes of loading
    if unknown:
        raise ValueError(f"--only: not offered languages: {', '.join(unknown)} (one of {', '.join(languages.NAMES)})")
    t0 = time.perf_counter()
    limit, only, settings, engines, progress = prepare(args)
    dev = bool(getattr(args, "dev", False))
    bench = LanguageBench(engines, settings, dev=dev, limit=limit, only=only, progress=progress)
    command = "babelfish bench languages" + (" --dev" if dev else "") + (f" --limit {limit}" if limit else "") + (
        f" --only {','.join(only)}" if only else "")

    def result_of(rows: dict[str, Any]) -> dict[str, Any]:
        return {"bench": "languages", "half": "dev" if dev else "test", "command": command, "machine": machine(),
                "recognizer": settings.recognizer.model, "translator": settings.translator.model,
                "seconds": round(time.perf_counter() - t0, 1), "languages": rows}

    def keep(rows: dict[str, Any]) -> None:
        if getattr(args, "out", None):
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(result_of(rows), indent=1, ensure_ascii=False) + "\n")

    result = result_of(bench.run(keep))
    if getattr(args, "save", False):
        if dev:
            raise ValueError("--save keeps a test run's verdicts; a --dev run chooses settings, it is not saved there")
        support.MEASURED.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        progress.note(f"verdicts saved to {support.MEASURED}")
    emit(result, table(result["languages"], dev), args)
    return 0

