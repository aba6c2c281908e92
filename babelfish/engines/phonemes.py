"""Text -> the phoneme symbols Kokoro reads, for any language espeak-ng can phonemize.

Kokoro-82M was trained on IPA-like symbols (its ``vocab.json``: 114 of them). espeak-ng, through the
``phonemizer`` library (which keeps punctuation, so the voice still pauses at commas), writes IPA for 100+
languages. Most of it is already in Kokoro's vocabulary; the rest is mapped here:

- espeak's two-letter phonemes, written with a tie (``t^s``), become Kokoro's single symbols (``ʦ``); its
  English diphthongs become Kokoro's capitals (``a^ɪ`` -> ``I``), as Kokoro was trained;
- symbols Kokoro lacks become the nearest it has, per language where the choice depends on it (German
  ``ʏ`` -> ``y``, Czech ``r̝`` -> ``rʒ``, Polish ``ʑ`` -> ``ʒ``);
- diacritics other than the nasal tilde are dropped (Kokoro has no length-less, voiceless or syllabic
  marks); a symbol that is still unknown is dropped and logged, once per language and symbol, and counted
  in :data:`DROPPED` (``bench languages`` reports it).

Numbers are spelled out by espeak-ng in the voice's language; a few abbreviations that espeak spells
letter by letter ("Dr." -> "D R") are written out first (:data:`ABBREVIATIONS`).
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import unicodedata
from typing import Any

log = logging.getLogger(__name__)

MAX_TOKENS = 510  # Kokoro's longest input (its style table has one row per length)

# The espeak-ng voice that phonemizes each language (primary subtag).
ESPEAK_VOICES = {"en": "en-us", "de": "de", "fr": "fr-fr", "es": "es", "it": "it", "nl": "nl", "pt": "pt",
                 "pl": "pl", "cs": "cs", "sv": "sv", "ru": "ru"}

# Written out before phonemizing: espeak-ng reads these letter by letter or as a sentence end.
ABBREVIATIONS: dict[str, dict[str, str]] = {
    "en": {"Dr.": "Doctor", "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "St.": "Street", "No.": "Number",
           "e.g.": "for example", "i.e.": "that is", "etc.": "et cetera", "approx.": "approximately"},
    "de": {"Dr.": "Doktor", "Nr.": "Nummer", "z. B.": "zum Beispiel", "z.B.": "zum Beispiel", "usw.": "und so weiter",
           "bzw.": "beziehungsweise", "ca.": "circa", "Str.": "Straße", "Hr.": "Herr", "Fr.": "Frau",
           "d. h.": "das heißt", "d.h.": "das heißt"},
    "fr": {"M.": "Monsieur", "Mme": "Madame", "Mlle": "Mademoiselle", "Dr": "Docteur", "etc.": "et cetera",
           "n°": "numéro"},
    "es": {"Sr.": "señor", "Sra.": "señora", "Dr.": "doctor", "Dra.": "doctora", "núm.": "número", "etc.": "etcétera",
           "Ud.": "usted", "Uds.": "ustedes"},
    "it": {"Sig.": "signor", "Sig.ra": "signora", "Dott.": "dottor", "Dr.": "dottor", "ecc.": "eccetera",
           "n.": "numero"},
    "nl": {"Dhr.": "de heer", "Mevr.": "mevrouw", "Dr.": "dokter", "bijv.": "bijvoorbeeld", "nr.": "nummer",
           "enz.": "enzovoort"},
    "pt": {"Sr.": "senhor", "Sra.": "senhora", "Dr.": "doutor", "Dra.": "doutora", "nº": "número"},
    "pl": {"dr": "doktor", "np.": "na przykład", "ul.": "ulica", "nr": "numer", "itd.": "i tak dalej"},
    "cs": {"Dr.": "doktor", "např.": "například", "ul.": "ulice", "č.": "číslo", "atd.": "a tak dále"},
    "sv": {"Dr.": "doktor", "t.ex.": "till exempel", "bl.a.": "bland annat", "nr": "nummer", "osv.": "och så vidare"},
    "ru": {"д-р": "доктор", "т.е.": "то есть", "т. е.": "то есть", "ул.": "улица", "и т.д.": "и так далее",
           "№": "номер"},
}

# espeak-ng's tied phonemes and diphthongs -> Kokoro's single symbols (the order matters: longest first).
TIED = {"a^ɪ": "I", "a^ʊ": "W", "e^ɪ": "A", "o^ʊ": "O", "ə^ʊ": "Q", "ɔ^ɪ": "Y", "d^z": "ʣ", "d^ʒ": "ʤ",
        "t^s": "ʦ", "t^ʃ": "ʧ", "t^ɕ": "ʨ", "d^ʑ": "ʥ"}

# Symbols Kokoro lacks, the nearest it has (every language) ...
NEAREST = {"ʏ": "y", "ɵ": "ø", "ʉ": "u", "ɞ": "œ", "ɘ": "ə", "ɫ": "l", "ɭ": "l", "ɬ": "l", "ʑ": "ʒ", "ʐ": "ʒ",
           "ɦ": "h", "ħ": "h", "ʀ": "ʁ", "ɱ": "m", "ɧ": "ʃ", "ɶ": "œ", "ʍ": "w", "ɺ": "ɾ", "«": "“",
           "»": "”", "¿": "", "¡": "", "‿": "", "-": "", "ˑ": "", "^": ""}
# ... and where a language needs its own choice.
BY_LANGUAGE: dict[str, dict[str, str]] = {
    "cs": {"r̝̊": "rʃ", "r̝": "rʒ"},  # ř: a trill with a fricative, "rž"
}

# Diacritics (Unicode combining marks) dropped on purpose: Kokoro knows only the nasal tilde.
KEPT_MARKS = {"\u0303"}

DROPPED: collections.Counter[tuple[str, str]] = collections.Counter()  # (language, symbol) -> times dropped


def expand_abbreviations(text: str, language: str) -> str:
    """``"Dr. Müller"`` -> ``"Doktor Müller"`` (German): what espeak-ng would spell or pause at."""
    table = ABBREVIATIONS.get(language, {})
    for short in sorted(table, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(short)}(?=\s|$|[,;:])", table[short], text)
    return text


def to_vocabulary(ipa: str, language: str, vocabulary: dict[str, int] | set[str]) -> str:
    """espeak-ng IPA (tie ``^``) -> symbols all in ``vocabulary``; what has no counterpart is dropped and
    logged once per language and symbol."""
    for tied, symbol in sorted(TIED.items(), key=lambda kv: -len(kv[0])):
        ipa = ipa.replace(tied, symbol)
    for source, symbol in sorted(BY_LANGUAGE.get(language, {}).items(), key=lambda kv: -len(kv[0])):
        ipa = ipa.replace(source, symbol)
    out: list[str] = []
    for char in unicodedata.normalize("NFC", ipa):
        out += _symbol(char, language, vocabulary)
    return re.sub(r" {2,}", " ", "".join(out)).strip()


def _symbol(char: str, language: str, vocabulary: dict[str, int] | set[str]) -> list[str]:
    """One character as Kokoro symbols: itself, its nearest, or its base letter without diacritics (``ç`` is
    in the vocabulary as it is; ``ä`` becomes ``a``)."""
    if char in vocabulary:
        return [char]
    if unicodedata.combining(char):
        return [char] if char in KEPT_MARKS and char in vocabulary else []
    nearest = NEAREST.get(char)
    if nearest is not None:
        return [c for c in nearest if c in vocabulary]
    decomposed = unicodedata.normalize("NFD", char)
    if len(decomposed) > 1:
        return [s for part in decomposed for s in _symbol(part, language, vocabulary)]
    if not DROPPED[(language, char)]:
        log.warning("Kokoro has no symbol for %r (U+%04X) from espeak-ng's %s phonemes: dropped",
                    char, ord(char), language)
    DROPPED[(language, char)] += 1
    return []


def chunks(phonemes: str, limit: int = MAX_TOKENS) -> list[str]:
    """Pieces of at most ``limit`` symbols, cut after punctuation where possible, else between words."""
    if len(phonemes) <= limit:
        return [phonemes] if phonemes else []
    pieces: list[str] = []
    rest = phonemes
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = max((m.end() for m in re.finditer(r"[.!?;:,—…] ", window)), default=0)
        if cut == 0:
            cut = window.rfind(" ") + 1
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return [p for p in pieces if p]


class Phonemizer:
    """espeak-ng's IPA for one language, through ``phonemizer`` (its library, not a process per sentence),
    mapped to Kokoro's symbols. One backend per language; calls are serialised (espeak-ng has global state)."""

    _lock = threading.Lock()

    def __init__(self, language: str, vocabulary: dict[str, int]) -> None:
        from phonemizer.backend import EspeakBackend

        if language not in ESPEAK_VOICES:
            raise ValueError(f"no espeak-ng voice phonemizes {language!r} for Kokoro")
        self.language = language
        self.vocabulary = vocabulary
        quiet = logging.getLogger("babelfish.engines.phonemizer")
        quiet.setLevel(logging.ERROR)  # it warns of "words count mismatch" on every line it is given whole
        self.backend: Any = EspeakBackend(ESPEAK_VOICES[language], preserve_punctuation=True, with_stress=True,
                                          tie="^", language_switch="remove-flags", logger=quiet)

    def __call__(self, text: str) -> str:
        text = expand_abbreviations(" ".join(text.split()), self.language)
        with self._lock:
            ipa = self.backend.phonemize([text], strip=True)[0]
        return to_vocabulary(ipa, self.language, self.vocabulary)
