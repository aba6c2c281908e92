"""How the quality bench scores what it hears: text normalised for WER (numbers, punctuation, notes in the
prompts' transcripts), word error rates, BLEU and chrF (sacrebleu)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_EN_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
               "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
               "twenty"]
_DE_NUMBERS = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf",
               "zwölf"]
_NL_NUMBERS = ["nul", "één", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen", "tien", "elf",
               "twaalf"]
NUMBER_WORDS: dict[str, dict[str, str]] = {
    lang: {unicodedata.normalize("NFKC", word).casefold(): str(i) for i, word in enumerate(words)}
    for lang, words in (("en", _EN_NUMBERS), ("de", _DE_NUMBERS), ("nl", _NL_NUMBERS))
}
_NOTE = re.compile(r"\(\s*note:[^)]*\)", re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_DECIMAL = re.compile(r"(?<=\d)\.(?=\d)")
_APOSTROPHE = re.compile(r"['’`´]")
_PUNCT = re.compile(r"[^\w\s]|_")


def normalize(text: str, language: str = "en") -> str:
    """Text as words for WER (the rules: :mod:`babelfish.devtools.bench.quality`): ``"Press 1, or #."`` ->
    ``"press 1 or pound"``."""
    text = unicodedata.normalize("NFKC", text)
    text = _NOTE.sub(" ", text).casefold()
    text = _THOUSANDS.sub("", text)
    text = _DECIMAL.sub(" point " if language == "en" else " ", text)
    if language == "en":
        text = text.replace("#", " pound ").replace("*", " star ").replace("&", " and ")
    text = _PUNCT.sub(" ", _APOSTROPHE.sub("", text))
    numbers = NUMBER_WORDS.get(language, {})
    return " ".join(numbers.get(word, word) for word in text.split())


def word_errors(references: Sequence[str], hypotheses: Sequence[str], language: str) -> tuple[float, int]:
    """Corpus WER in percent (all errors over all reference words) and the number of items scored."""
    import jiwer

    pairs = [(normalize(r, language), normalize(h, language)) for r, h in zip(references, hypotheses, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return 0.0, 0
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    return 100.0 * out.wer, len(pairs)


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, float]:
    import sacrebleu

    hyps, refs = list(hypotheses), [list(references)]
    return sacrebleu.corpus_bleu(hyps, refs).score, sacrebleu.corpus_chrf(hyps, refs).score
