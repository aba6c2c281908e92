"""``bench glossary``'s scoring: the test set's entries become the operator's glossary, each sentence's entries are
looked for in the output by the set's own rule, and each way of telling the translator is what a call does."""

from __future__ import annotations

import asyncio

from babelfish.config.settings import Settings
from babelfish.devtools import glossary_set
from babelfish.devtools.bench.glossary import Score, entries, styled, table, text_variant
from babelfish.pipeline.protocols import Engines


class Translator:
    """Returns the sentence it was given (so an inline rendering passes through) and records the terms."""

    name = "double"
    takes_terms = True

    def __init__(self) -> None:
        self.terms: list[list[str]] = []

    async def translate(self, text: str, source: str, target: str, context=(), terms=()) -> str:
        self.terms.append([t.required for t in terms])
        return text


def test_every_entry_of_the_set_is_in_the_glossary_both_ways() -> None:
    data = glossary_set.load()
    glossary = entries(data)
    assert len(glossary) == len(data.terms)
    for sentence in data.sentences("dev"):
        for source, target in (("en", "de"), ("de", "en")):
            found = {r.required for r in glossary.renderings(sentence.text(source), source, target)}
            assert {t.rendering(target) for t in data.terms_of(sentence)} <= found, sentence.id


def test_term_accuracy_counts_each_entry_of_each_sentence() -> None:
    data = glossary_set.load()
    sentence = next(s for s in data.sentences("dev") if len(s.terms) == 2)
    first, second = data.terms_of(sentence)
    score = Score()
    score.add(data, sentence, "en", "de", f"... {first.rendering('de')} ...", heard=sentence.en)
    assert (score.terms, score.found, score.recognized) == (2, 1, 2)
    assert score.misses[0]["required"] == second.rendering("de")
    summary = score.summary(speech=True)
    assert summary["term_accuracy"] == 50.0 and summary["recognized_term_accuracy"] == 100.0


def test_each_style_asks_the_translator_as_a_call_does() -> None:
    data = glossary_set.load()
    sentences = [s for s in data.sentences("dev") if any(not t.is_name for t in data.terms_of(s))][:5]
    engines = Engines(recognizer=None, translator=Translator(), voices=None, detector_factory=None,  # type: ignore[arg-type]
                      vad_worker=None)  # type: ignore[arg-type]
    results = {}
    for style in ("off", "prompt", "inline", "both"):
        engines.translator = translator = Translator()
        results[style] = asyncio.run(text_variant(engines, styled(Settings(), style), data, sentences,
                                                  entries(data), "en", "de"))
        assert any(translator.terms) is (style in ("prompt", "both")), style
    # the double echoes its input: written inline (or repaired), the German renderings are there; off, they are not
    assert results["inline"].found == results["inline"].terms
    assert results["off"].found < results["off"].terms
    result = {"split": "dev", "sentences": 5, "entries": 41, "config": {"translator": "double"},
              "text": {"en-de": {k: v.summary(speech=False) for k, v in results.items()}}, "speech": {}}
    assert "| text | en-de | inline | 100.0 |" in table(result)


def test_the_recorded_prompts_are_those_with_a_phone_term_and_a_german_compound_counts() -> None:
    from babelfish.devtools.bench.glossary import begins_word, recorded_items

    assert begins_word("Durchwahl", "Ihre Durchwahlnummer, bitte") and begins_word("Kennwort", "Ihr kennwort")
    assert not begins_word("Durchwahl", "die Nebendurchwahl") and not begins_word("Ansage", "Die Begrüßung")
    glossary, items = recorded_items(None)
    assert len(items) > 50  # real recordings with a phone-system word in them
    for clip, needed in items:
        assert needed and all(r in [(x.said, x.required) for x in glossary.renderings(clip.text, "en", "de")]
                              for r in needed)


def test_spoken_sentences_reach_the_recognizer_at_a_phone_lines_rate_or_a_wideband_callers() -> None:
    import numpy as np

    from babelfish.devtools.bench.glossary import spoken

    class Voice:
        def synthesize_sync(self, text: str) -> tuple[np.ndarray, int]:
            return np.zeros(24000, dtype=np.float32), 24000  # one second, as Kokoro writes it

    class Voices:
        def get(self, language: str) -> Voice:
            return Voice()

    engines = Engines(recognizer=None, translator=None, voices=Voices(), detector_factory=None,  # type: ignore[arg-type]
                      vad_worker=None)  # type: ignore[arg-type]
    sentences = glossary_set.load().sentences("dev")[:2]
    assert [c.size for c in spoken(engines, sentences, "de")] == [8000, 8000]
    assert [c.size for c in spoken(engines, sentences, "de", 16000)] == [16000, 16000]
