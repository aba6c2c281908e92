"""The operator's glossary: terms that must come out in a given rendering, and names that must never be
translated. Server-wide entries apply to every room; an entry with a room code only to that room.

A **term** is a pair of renderings in two languages (``copay`` / ``Zuzahlung``) and applies both ways; a
**name** (``Dr. Okonkwo``, ``FlexiPay Plus``) is kept as written in every language. This module holds what
every stage asks of them:

- the recognizer: :meth:`Glossary.recognition_hint` (the spellings to bias Whisper towards) and
  :meth:`Glossary.correct` (a near miss in what was recognized, ``Zell norm``, written as the glossary has it);
- the translator: :meth:`Glossary.renderings` (what this sentence must contain, for the prompt) and
  :meth:`Glossary.inline` (the source with each term already in its required rendering);
- the output check: :meth:`Glossary.missing` and :meth:`Glossary.repair` (a term the model left in the
  source language, replaced by its rendering).

Matching is by words, case-insensitively, and allows a short inflection after a term (``Zuzahlungen``,
``copays``, ``Vorgangs``): what German and English add to the end of a word. A small number matches its
digits or its word (``3 working days`` is found in ``three working days``, ``drei Werktagen`` in ``3
Werktage``): people say the word, recognizers write either, and a voice speaks both the same.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal, Protocol

from babelfish.core import languages

Kind = Literal["term", "name"]
KINDS: tuple[Kind, ...] = ("term", "name")
INFLECTION = 3  # letters a language may add to the end of a term ("Zuzahlung" -> "Zuzahlungen")
FUZZY = 0.8  # how alike a recognized span and a term's spelling must be to be corrected (see correct)
FUZZY_MIN_LETTERS = 5  # shorter terms are corrected only when recognized exactly (too many near words)
MAX_TERM_CHARS = 80
# 0-12 as said in the languages with glossaries in use (German's "ein/eine" inflect); larger numbers are
# written in digits by recognizers and translators alike
NUMBER_WORDS: dict[str, tuple[str, ...]] = {
    "0": ("zero", "null", "zéro", "cero"),
    "1": ("one", "ein", "eins", "eine", "einen", "einem", "einer", "un", "une", "uno", "una"),
    "2": ("two", "zwei", "deux", "dos", "due"),
    "3": ("three", "drei", "trois", "tres", "tre"),
    "4": ("four", "vier", "quatre", "cuatro", "quattro"),
    "5": ("five", "fünf", "cinq", "cinco", "cinque"),
    "6": ("six", "sechs", "seis", "sei"),
    "7": ("seven", "sieben", "sept", "siete", "sette"),
    "8": ("eight", "acht", "huit", "ocho", "otto"),
    "9": ("nine", "neun", "neuf", "nueve", "nove"),
    "10": ("ten", "zehn", "dix", "diez", "dieci"),
    "11": ("eleven", "elf", "onze", "once", "undici"),
    "12": ("twelve", "zwölf", "douze", "doce", "dodici"),
}
_DIGITS = {word: digits for digits, words in NUMBER_WORDS.items() for word in words}
# a recognizer runs a title into the name after it ("Herr Fischer" heard as "Herfischer"): the title as
# heard (a pattern) and as written, per language
TITLES: dict[str, tuple[tuple[str, str], ...]] = {
    "de": (("herr?", "Herr"), ("frau", "Frau")),
    "en": (("mrs", "Mrs"), ("mr", "Mr"), ("ms", "Ms")),
}


@dataclass(frozen=True)
class Term:
    """One glossary entry. For a name, ``language_b``/``text_b`` repeat ``language_a``/``text_a`` and
    ``language_a`` is ``""`` (any language)."""

    kind: Kind
    language_a: str
    text_a: str
    language_b: str = ""
    text_b: str = ""
    room: str = ""  # "" server-wide, else the room code it belongs to
    id: int | None = None

    @classmethod
    def name(cls, text: str, room: str = "", id: int | None = None) -> Term:
        return cls("name", "", text.strip(), "", text.strip(), room, id)

    @classmethod
    def pair(cls, language_a: str, text_a: str, language_b: str, text_b: str, room: str = "",
             id: int | None = None) -> Term:
        return cls("term", languages.primary(language_a), text_a.strip(), languages.primary(language_b),
                   text_b.strip(), room, id)

    def text_in(self, language: str) -> str:
        """How this entry is written in ``language`` ("" when it has no rendering there)."""
        if self.kind == "name":
            return self.text_a
        lang = languages.primary(language)
        return self.text_a if lang == self.language_a else self.text_b if lang == self.language_b else ""

    def applies(self, source: str, target: str) -> bool:
        return self.kind == "name" or {languages.primary(source), languages.primary(target)} == {
            self.language_a, self.language_b}

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "room": self.room, "language": self.language_a,
                "term": self.text_a, "target_language": self.language_b, "target_term": self.text_b}


@dataclass(frozen=True)
class Rendering:
    """A term as it was said in the source and as the translation must have it."""

    said: str
    required: str
    kind: Kind


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@cache
def _pattern(term: str) -> re.Pattern[str]:
    """``term`` as whole words, any spacing or hyphen between its words, plus a short inflection."""
    words = [_word(w) for w in re.split(r"[\s\-]+", _fold(term).strip()) if w]
    tail = rf"\w{{0,{INFLECTION}}}" if term[-1:].isalpha() else ""
    return re.compile(r"(?<!\w)" + r"[\s\-]*".join(words) + tail + r"(?!\w)")


def _word(word: str) -> str:
    """One word of a term as a pattern: a small number as its digits or any of its words."""
    digits = _DIGITS.get(word, word)
    if digits in NUMBER_WORDS:
        return "(?:" + "|".join(re.escape(w) for w in (digits, *NUMBER_WORDS[digits])) + ")"
    return re.escape(word)


def contains(text: str, term: str) -> bool:
    """Whether ``term`` appears in ``text`` (whole words, case aside, inflection allowed)."""
    return bool(term.strip()) and _pattern(term).search(_fold(text)) is not None


def validate(term: Term) -> Term:
    """``term`` if it is one the glossary can hold, else ValueError saying what is wrong."""
    if term.kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {term.kind!r}")
    for text in (term.text_a, term.text_b):
        if not text.strip() or len(text) > MAX_TERM_CHARS or any(c in text for c in "\r\n\t"):
            raise ValueError(f"a term is 1-{MAX_TERM_CHARS} characters on one line: {text!r}")
        if not re.search(r"\w", text):
            raise ValueError(f"a term needs a letter or a digit: {text!r}")
    if term.kind == "term":
        for lang in (term.language_a, term.language_b):
            if languages.primary(lang) not in languages.NAMES:
                raise ValueError(f"unknown language {lang!r}")
        if term.language_a == term.language_b:
            raise ValueError("a term's two languages must differ")
    return term


class Glossary:
    """The entries that apply in one room (server-wide ones and the room's own), immutable."""

    def __init__(self, terms: Iterable[Term] = ()) -> None:
        # longest first: "FlexiPay Plus" is found before "FlexiPay"
        self.terms: tuple[Term, ...] = tuple(sorted(terms, key=lambda t: -len(t.text_a)))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    def renderings(self, text: str, source: str, target: str) -> list[Rendering]:
        """The entries ``text`` (in ``source``) contains, with what the ``target`` translation must have."""
        found: list[Rendering] = []
        for term in self.terms:
            said, required = term.text_in(source), term.text_in(target)
            if term.applies(source, target) and said and required and contains(text, said):
                if not any(contains(r.said, said) for r in found):  # inside a longer one already found
                    found.append(Rendering(said, required, term.kind))
        return found

    def inline(self, text: str, source: str, target: str, marked: bool = False) -> str:
        """``text`` with each term already in its required rendering (names stay as they are): a
        translator carries a word of the other language through, as people do with a word they keep.
        ``marked``: each rendering, names too, in quotation marks (a quoted word is copied, not translated;
        :func:`unmark` takes the marks out of the translation)."""
        for r in self.renderings(text, source, target):
            if r.kind == "term" or marked:
                text = _replace(text, r.said, f'"{r.required}"' if marked else r.required)
        return text

    def missing(self, translation: str, renderings: Sequence[Rendering]) -> list[Rendering]:
        """The renderings ``translation`` lacks."""
        return [r for r in renderings if not contains(translation, r.required)]

    def repair(self, translation: str, renderings: Sequence[Rendering]) -> str:
        """A rendering the translation lacks, written in where the translator came close: a term left as it
        was said (in the source language), or a near miss of the rendering (``Krankenschreibung`` for
        ``Krankschreibung``, ``Linden Street`` for the name ``Lindenstraße``: as alike as :func:`correct`
        asks). Anything else is left to the listener (a check, not a rewrite)."""
        for r in self.missing(translation, renderings):
            if r.kind == "term" and contains(translation, r.said):
                translation = _replace(translation, r.said, r.required)
            else:
                translation = _correct_one(translation, r.required)
        return translation

    def spellings(self, language: str) -> list[str]:
        """Every entry as written in ``language``."""
        return list(dict.fromkeys(t for term in self.terms if (t := term.text_in(language))))

    def recognition_hint(self, language: str) -> str:
        """The spellings to bias the recognizer towards (Whisper reads it as text said before)."""
        words = self.spellings(language)
        return ", ".join(words) + "." if words else ""

    def correct(self, text: str, language: str) -> str:
        """``text`` as recognized, with a near miss of an entry's spelling written as the glossary has it
        (``Zell norm`` -> ``Zelnorm``, ``co-pay`` -> ``copay``); exact matches keep their inflection."""
        text = self._unglue_titles(text, language)
        done: list[str] = []  # longest first: a span one entry took is not taken by a shorter one
        for spelling in self.spellings(language):
            if not contains(text, spelling):
                # ("Miller Creek" made "Mill Creek" stays so, though "Miller" is an entry too)
                kept = [m.span() for other in done for m in _pattern(other).finditer(_fold(text))
                        ] if len(_fold(text)) == len(text) else []
                text = _correct_one(text, spelling, kept)
            done.append(spelling)
        return text


    def _unglue_titles(self, text: str, language: str) -> str:
        """A title run into a name (``Herfischer``, ``Herbaken``) written apart, with the name as the
        glossary has it (``Herr Fischer``, ``Herr Baker``) when the rest is alike enough (:data:`FUZZY`)."""
        titles = TITLES.get(languages.primary(language), ())
        names = [(t.text_a, target) for t in self.terms
                 if t.kind == "name" and len(target := _compact(t.text_a)) >= FUZZY_MIN_LETTERS]
        if not titles or not names:
            return text

        def apart(match: re.Match[str]) -> str:
            heard, said = match.group(1), _compact(match.group(2))
            for name, target in names:
                if _likeness(said, target) >= FUZZY:
                    title = next(written for pattern, written in titles if re.fullmatch(pattern, heard, re.I))
                    return f"{title} {name}"
            return match.group(0)

        either = "|".join(pattern for pattern, _ in titles)
        return re.sub(rf"(?<!\w)({either})(\w{{{FUZZY_MIN_LETTERS - 1},}})(?!\w)", apart, text, flags=re.I)


def unmark(translation: str, renderings: Sequence[Rendering]) -> str:
    """The quotation marks :meth:`Glossary.inline` put around each rendering taken out of the translation."""
    for r in renderings:
        translation = re.sub(rf"[\"“”„«»‚‘’']\s?({re.escape(r.required)}\w{{0,{INFLECTION}}})\s?[\"“”„«»‚‘’']",
                             r"\1", translation, flags=re.IGNORECASE)
    return translation


def _replace(text: str, said: str, required: str) -> str:
    """Every occurrence of ``said`` in ``text`` (as :func:`contains` finds it) replaced by ``required``."""
    folded = _fold(text)
    if len(folded) != len(text):  # a character whose case folding is longer: fall back to plain text
        return re.sub(re.escape(said), required, text, flags=re.IGNORECASE)
    out, last = [], 0
    for match in _pattern(said).finditer(folded):
        out.append(text[last: match.start()])
        out.append(required)
        last = match.end()
    return "".join(out) + text[last:]


def _compact(text: str) -> str:
    """``text`` to compare letters with: folded, small numbers as digits, no spaces or punctuation."""
    words = re.findall(r"\w+", _fold(text))
    return "".join(_DIGITS.get(w, w) for w in words).replace("_", "")


def _likeness(said: str, target: str) -> float:
    """How alike two compacted spellings are (0 to 1); 0 unless they begin with the same letter (a recognizer
    rarely mishears the first sound, and near words that differ there are other words)."""
    if not said or said[0] != target[:1]:
        return 0.0
    return difflib.SequenceMatcher(None, said, target).ratio()


def _correct_one(text: str, spelling: str, kept: Sequence[tuple[int, int]] = ()) -> str:
    """The span of 1 to n+1 words of ``text`` most like ``spelling`` (n: its words), replaced by it if
    alike enough (:data:`FUZZY`); spans overlapping ``kept`` (character ranges) are left alone."""
    target = _compact(spelling)
    if len(target) < FUZZY_MIN_LETTERS:
        return text
    spans = list(re.finditer(r"\S+", text))
    n = len(spelling.split())
    best: tuple[float, int, int] = (0.0, 0, 0)
    for i in range(len(spans)):
        for size in range(1, n + 2):
            if i + size > len(spans):
                break
            start, end = spans[i].start(), spans[i + size - 1].end()
            if any(start < b and a < end for a, b in kept):
                continue
            said = _compact(text[start:end])
            if abs(len(said) - len(target)) > len(target) // 3:
                continue
            ratio = _likeness(said, target)
            if ratio > best[0]:
                best = (ratio, i, i + size - 1)
    ratio, first, last = best
    if ratio < FUZZY:
        return text
    start, end = spans[first].start(), spans[last].end()
    trailing = re.search(r"[^\w]*$", text[start:end])
    punctuation = trailing.group(0) if trailing else ""
    return text[:start] + spelling + punctuation + text[end:]


class GlossaryBook(Protocol):
    """Where the glossary of a room comes from (the transcript database, read again when it changed)."""

    def glossary(self, room_code: str | None) -> Glossary: ...
