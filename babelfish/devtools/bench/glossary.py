"""``babelfish bench glossary``: do the operator's terms and names come out right, with the glossary and
without it, in text and in speech?

The sentences are the hand-written glossary test set (babelfish/devtools/glossary_set.json,
docs/glossary-test-set.md): short clinic, support-line and public-office phone sentences in English and
German, each with 1-3 of its 41 entries. Both directions, en->de and de->en, through the code a call uses
(:func:`babelfish.pipeline.understand.ask` and :class:`~babelfish.pipeline.understand.Understanding`):

- **text**: the sentence as written, translated with each way of telling the translator
  (``glossary.translator``: off, prompt, inline, both);
- **speech**: the sentence spoken by the source language's voice (Kokoro), at 8 kHz as a phone line
  carries it, recognized (with the glossary: Whisper's prompt biased towards its spellings and near misses
  corrected) and translated; without the glossary and with the configured setting.

Scored: **term accuracy** (the share of the sentences' entries whose required rendering is in the output, by
the set's own rule, :func:`babelfish.devtools.glossary_set.mentions`), in speech also in what was recognized;
BLEU and chrF against the set's reference translations. ``--dev`` runs the dev split (where the setting was
chosen); the default, the held-out test split, is the one to quote.

- **recorded** (test runs): real recorded English telephone prompts (Asterisk, 8 kHz) that contain a phone
  system's words, with a phone-system operator's glossary for them (:data:`PHONE_TERMS`, written before any
  run and never tuned on: ``extension`` must be ``Durchwahl``, not the translator's ``Erweiterung``),
  recognized and translated into German as in a call. There is no German reference for these recordings, so
  only term accuracy; a German rendering counts where it begins a word (``Durchwahlnummer``: German makes
  compounds of it).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from babelfish.config.settings import Settings, load_settings
from babelfish.core import audio
from babelfish.core.glossary import Glossary, Term, contains
from babelfish.core.rooms import Leg, Room
from babelfish.devtools import corpus, glossary_set
from babelfish.devtools.bench.calls import progress
from babelfish.devtools.bench.report import emit, machine, with_setting
from babelfish.devtools.bench.scoring import bleu_chrf
from babelfish.devtools.glossary_set import GlossarySet, Sentence
from babelfish.engines.registry import load_engines
from babelfish.pipeline.identify import LanguageFollower
from babelfish.pipeline.protocols import Engines
from babelfish.pipeline.understand import Understanding, Understood, ask

DIRECTIONS = (("en", "de"), ("de", "en"))
# A phone-system operator's glossary for the recorded prompts (en -> de): the operator's German words, several of
# them not the translator's own choice.
PHONE_TERMS = (("extension", "Durchwahl"), ("password", "Kennwort"), ("pound key", "Rautetaste"),
               ("mailbox", "Sprachbox"), ("voicemail", "Sprachbox"), ("greeting", "Ansage"),
               ("directory", "Telefonverzeichnis"), ("conference", "Telefonkonferenz"))
STYLES = ("off", "prompt", "inline", "both", "marked")
PHONE_RATE = 8000


def entries(data: GlossarySet) -> Glossary:
    """The test set's entries as the operator would type them into the glossary."""
    return Glossary(Term.name(t.rendering("en")) if t.is_name else Term.pair("en", t.rendering("en"), "de",
                                                                                t.rendering("de"))
                    for t in data.terms)


class Book:
    """One glossary for every room (the bench's room has no code)."""

    def __init__(self, glossary: Glossary) -> None:
        self.current = glossary

    def glossary(self, room_code: str | None) -> Glossary:
        return self.current


@dataclass
class Score:
    """Term hits and translations of one variant in one direction."""

    terms: int = 0
    found: int = 0
    recognized: int = 0  # speech: entries whose source spelling is in what was recognized
    hypotheses: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    misses: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, data: GlossarySet, sentence: Sentence, source: str, target: str, output: str,
            heard: str | None = None) -> None:
        for term in data.terms_of(sentence):
            self.terms += 1
            if heard is not None and glossary_set.mentions(term.rendering(source), heard):
                self.recognized += 1
            if glossary_set.mentions(term.rendering(target), output):
                self.found += 1
            else:
                self.misses.append({"sentence": sentence.id, "required": term.rendering(target), "output": output,
                                    **({"heard": heard} if heard is not None else {})})
        self.hypotheses.append(output)
        self.references.append(sentence.text(target))

    def summary(self, speech: bool) -> dict[str, Any]:
        bleu, chrf = bleu_chrf(self.hypotheses, self.references) if self.hypotheses else (0.0, 0.0)
        out: dict[str, Any] = {"sentences": len(self.hypotheses), "terms": self.terms,
                               "term_accuracy": round(100 * self.found / max(1, self.terms), 1),
                               "bleu": round(bleu, 1), "chrf": round(chrf, 1),
                               "seconds_per_sentence": round(self.seconds / max(1, len(self.hypotheses)), 2),
                               "misses": self.misses}
        if speech:
            out["recognized_term_accuracy"] = round(100 * self.recognized / max(1, self.terms), 1)
        return out


def _understanding(engines: Engines, settings: Settings, glossary: Glossary, source: str,
                   target: str) -> Understanding:
    """A leg speaking ``source`` in a room with one ``target`` listener: what a call builds."""
    leg, listener = Leg(id="speaker", caller="bench", language=source), Leg(id="listener", caller="bench",
                                                                              language=target)
    room = Room(id="bench")
    for one in (leg, listener):
        room.legs.append(one)
        one.room = room
    return Understanding(leg, engines, settings, LanguageFollower(settings.languages), Book(glossary))


def styled(settings: Settings, style: str) -> Settings:
    """``settings`` with the glossary told to the translator by ``style`` (off: no glossary at any stage)."""
    settings = with_setting(settings, f"glossary.translator={style}")
    return with_setting(settings, f"glossary.recognizer={'false' if style == 'off' else 'true'}")


async def text_variant(engines: Engines, settings: Settings, data: GlossarySet, sentences: list[Sentence],
                       glossary: Glossary, source: str, target: str) -> Score:
    score = Score()
    assert engines.translator is not None
    for sentence in sentences:
        said = sentence.text(source)
        asked = ask(glossary, said, source, target, settings.glossary, engines.translator)
        t0 = time.perf_counter()
        output = await engines.translator.translate(asked.text, source, target, (), **asked.kwargs)
        score.seconds += time.perf_counter() - t0
        score.add(data, sentence, source, target, asked.checked(output, target, Understood()))
    return score


def spoken(engines: Engines, sentences: list[Sentence], language: str, rate: int = PHONE_RATE) -> list[np.ndarray]:
    """Each sentence in ``language``'s voice, as a phone line carries it (8 kHz), or a wideband caller."""
    voice = engines.voices.get(language)
    out = []
    for sentence in sentences:
        samples, sample_rate = voice.synthesize_sync(sentence.text(language))  # type: ignore[attr-defined]
        out.append(audio.resample(np.asarray(samples, dtype=np.float32), sample_rate, rate))
    return out


async def speech_variant(engines: Engines, settings: Settings, data: GlossarySet, sentences: list[Sentence],
                         clips: list[np.ndarray], glossary: Glossary, source: str, target: str,
                         rate: int = PHONE_RATE) -> Score:
    score = Score()
    understanding = _understanding(engines, settings, glossary, source, target)
    for sentence, clip in zip(sentences, clips, strict=True):
        t0 = time.perf_counter()
        understood = await understanding(clip, rate, [target])
        if understood.writing is not None:
            await understood.writing
        score.seconds += time.perf_counter() - t0
        output = understood.translations.get(target) or (
            understood.clauses[target].text if target in understood.clauses else "")
        score.add(data, sentence, source, target, output, heard=understood.text)
    return score


def begins_word(rendering: str, text: str) -> bool:
    """``rendering`` at the start of a word of ``text``, any letters after it (a German compound)."""
    return re.search(rf"(?<!\w){re.escape(rendering)}", text, re.IGNORECASE) is not None


def recorded_items(limit: int | None) -> tuple[Glossary, list[tuple[corpus.Clip, list[tuple[str, str]]]]]:
    """The operator's phone glossary and each recorded prompt that contains one of its terms."""
    glossary = Glossary(Term.pair("en", en, "de", de) for en, de in PHONE_TERMS)
    items = []
    for clip in corpus.asterisk_prompts(5):
        found = [(r.said, r.required) for r in glossary.renderings(clip.text, "en", "de")]
        if found:
            items.append((clip, found))
    return glossary, items[:limit]


async def recorded_variant(engines: Engines, settings: Settings, glossary: Glossary,
                           items: list[tuple[corpus.Clip, list[tuple[str, str]]]]) -> dict[str, Any]:
    understanding = _understanding(engines, settings, glossary, "en", "de")
    terms = found = recognized = 0
    misses = []
    for clip, needed in items:
        samples, rate = audio.read_wav(clip.path)
        understood = await understanding(samples, rate, ["de"])
        if understood.writing is not None:
            await understood.writing
        output = understood.translations.get("de") or (
            understood.clauses["de"].text if "de" in understood.clauses else "")
        for said, required in needed:
            terms += 1
            recognized += contains(understood.text, said)
            if begins_word(required, output):
                found += 1
            else:
                misses.append({"prompt": clip.path.stem, "required": required, "heard": understood.text,
                               "output": output})
    return {"prompts": len(items), "terms": terms, "term_accuracy": round(100 * found / max(1, terms), 1),
            "recognized_term_accuracy": round(100 * recognized / max(1, terms), 1), "misses": misses}


async def measure(settings: Settings, engines: Engines, split: str, styles: list[str], speech_styles: list[str],
                  recorded_styles: list[str], limit: int | None,
                  directions: tuple[tuple[str, str], ...] = DIRECTIONS, rate: int = PHONE_RATE) -> dict[str, Any]:
    data = glossary_set.load()
    glossary = entries(data)
    sentences = data.sentences(split)[:limit]  # type: ignore[arg-type]
    result: dict[str, Any] = {"split": split, "sentences": len(sentences), "entries": len(glossary),
                              "speech_rate": rate, "text": {}, "speech": {}}
    for source, target in directions:
        direction = f"{source}-{target}"
        result["text"][direction] = {}
        for style in styles:
            progress(f"text {direction}, glossary.translator={style}: {len(sentences)} sentences")
            score = await text_variant(engines, styled(settings, style), data, sentences, glossary, source, target)
            result["text"][direction][style] = score.summary(speech=False)
        if not speech_styles:
            continue
        progress(f"speech {direction}: synthesizing {len(sentences)} sentences")
        clips = spoken(engines, sentences, source, rate)
        result["speech"][direction] = {}
        for style in speech_styles:
            progress(f"speech {direction}, glossary.translator={style}")
            score = await speech_variant(engines, styled(settings, style), data, sentences, clips, glossary,
                                         source, target, rate)
            result["speech"][direction][style] = score.summary(speech=True)
    if recorded_styles:
        phone, items = recorded_items(limit)
        result["recorded"] = {}
        for style in recorded_styles:
            progress(f"recorded en-de: {len(items)} real prompts, glossary.translator={style}")
            result["recorded"][style] = await recorded_variant(engines, styled(settings, style), phone, items)
    return result


def table(result: dict[str, Any]) -> str:
    lines = [f"glossary bench: {result['split']} split, {result['sentences']} sentences a direction, "
             f"{result['entries']} entries ({result['config']['translator']}); speech at "
             f"{result.get('speech_rate', PHONE_RATE)} Hz", "",
             "| input | direction | glossary.translator | term accuracy % | recognized terms % | BLEU | chrF "
             "| s/sentence |",
             "|---|---|---|---|---|---|---|---|"]
    for kind in ("text", "speech"):
        for direction, styles in result[kind].items():
            for style, s in styles.items():
                lines.append(f"| {kind} | {direction} | {style} | {s['term_accuracy']} | "
                             f"{s.get('recognized_term_accuracy', '')} | {s['bleu']} | {s['chrf']} | "
                             f"{s['seconds_per_sentence']} |")
    for style, r in result.get("recorded", {}).items():
        lines.append(f"| recorded ({r['prompts']} real prompts, {r['terms']} terms) | en-de | {style} | "
                     f"{r['term_accuracy']} | {r['recognized_term_accuracy']} | - | - | - |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(getattr(args, "config", None))
    split = "dev" if args.dev else "test"
    chosen = settings.glossary.translator
    # text, speech and (test runs) recorded, or those named: --only text,speech,recorded; style names or a
    # direction among them (--only text,inline,both,en-de) measure those alone
    only = {part.strip() for part in (args.only or "text,speech,recorded").split(",")}
    # dev: every way of telling the translator, to choose one; test: without the glossary and the chosen one
    styles: list[str] = list(STYLES) if args.dev else list(dict.fromkeys(["off", chosen]))
    if only & set(STYLES):
        styles = [s for s in styles if s in only]
    without_and_chosen: list[str] = list(dict.fromkeys(["off", chosen]))
    progress("loading engines")
    engines = load_engines(settings)
    result = asyncio.run(measure(
        settings, engines, split, styles if "text" in only else [],
        without_and_chosen if "speech" in only else [],
        without_and_chosen if "recorded" in only and split == "test" else [], args.limit,
        tuple(d for d in DIRECTIONS if not only & {"en-de", "de-en"} or f"{d[0]}-{d[1]}" in only),
        getattr(args, "speech_rate", PHONE_RATE)))
    result["config"] = {"translator": settings.translator.model, "recognizer": settings.recognizer.model,
                        "glossary.translator": chosen, "context": "none (each sentence alone)"}
    result["machine"] = machine()
    emit(result, table(result), args)
    return 0
