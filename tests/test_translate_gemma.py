"""Gemma-3-270M translation on real sentence pairs (held-out test split of the fillets game scripts).

Thresholds come from measurements (docs/translation.md): on these 20 test sentences the tuned engine
scored chrF 38.0 en->de and 38.8 de->en, copying the source scores 16-17 and empty output 0, so a
broken engine fails while a healthy one keeps a margin of 8-14 points for small changes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from babelfish.engines import gemma

from .conftest import check_corpus_translation, held_out_pairs

pytestmark = pytest.mark.e2e

N_SENTENCES = 20
MIN_CHRF = {("en", "de"): 24.0, ("de", "en"): 30.0}


@pytest.fixture(scope="module")
def translator(models_dir: Path) -> gemma.GemmaTranslator:
    return gemma.GemmaTranslator(models_dir, threads=1)  # 1 thread: far faster on a busy machine


@pytest.fixture(scope="module")
def test_pairs() -> list[tuple[str, str]]:
    return held_out_pairs(N_SENTENCES)


@pytest.mark.parametrize(("source", "target"), [("en", "de"), ("de", "en")])
def test_corpus_chrf(translator: gemma.GemmaTranslator, test_pairs: list[tuple[str, str]],
                     source: str, target: str) -> None:
    check_corpus_translation(translator, test_pairs, source, target,
                             min_chrf=MIN_CHRF[(source, target)], max_copies=2, above_copying=5)


def test_known_sentences(translator: gemma.GemmaTranslator) -> None:
    assert "Bahnhof" in translator.translate_sync("Where is the train station?", "en", "de")
    english = translator.translate_sync("Ich brauche noch eine Perle.", "de", "en").lower()
    assert "i need" in english and "pearl" in english
    look = translator.translate_sync("Look, Wilber!", "en", "de")
    assert "Wilber" in look and "Look" not in look


def test_alternating_directions_reuse_prefix(translator: gemma.GemmaTranslator) -> None:
    # A call alternates A->B and B->A; the saved prefix states must give the same output as fresh ones.
    first = translator.translate_sync("Thank you very much.", "en", "de")
    translator.translate_sync("Danke schön.", "de", "en")
    assert translator.translate_sync("Thank you very much.", "en-GB", "de-DE") == first


def test_empty_and_same_language(translator: gemma.GemmaTranslator) -> None:
    assert translator.translate_sync("", "en", "de") == ""
    assert translator.translate_sync("   \n ", "de", "en") == ""
    assert translator.translate_sync("Hallo du.", "de", "de-AT") == "Hallo du."


def test_run_on_line_fits_the_context(translator: gemma.GemmaTranslator) -> None:
    # An unpunctuated 600-word "sentence" (a long recognizer segment) must not overflow n_ctx.
    text = " ".join(["we are going to the station and then home"] * 60)
    out = translator.translate_sync(text, "en", "de")
    assert out and "\n" not in out


def test_language_without_examples(translator: gemma.GemmaTranslator) -> None:
    # No Polish examples: the prompt falls back to English examples and still yields a line of text.
    out = translator.translate_sync("Dzień dobry, jak się masz?", "pl", "en")
    assert out and "\n" not in out


async def test_async_api(translator: gemma.GemmaTranslator) -> None:
    out = await translator.translate("Good morning.", "en", "de")
    assert out and out != "Good morning."
    assert await translator.translate("", "de", "en") == ""


def test_prompt_shape() -> None:
    prompt = gemma.build_prompt("Wie geht's?", "de-DE", "en")
    assert prompt.startswith("German: Hallo, kannst du mich hören?\nEnglish: Hello, can you hear me?\n\n")
    assert prompt.count("German:") == gemma.PromptConfig().shots + 1
    assert prompt.endswith("\n\nGerman: Wie geht's?\nEnglish:")
    assert gemma.build_prefix("de", "en") in prompt  # the cached prefix is a true prefix
    polish = gemma.build_prompt("Cześć", "pl", "cs")  # every offered language has examples of its own
    assert polish.startswith("Polish: Halo, słyszysz mnie?\nCzech: Haló, slyšíš mě?") and "English:" not in polish
    fallback = gemma.build_prompt("Annyeong", "ko", "cs")  # a language without: the format from English ones
    assert "ko: Annyeong\nCzech:" in fallback and "English:" in fallback


def test_helpers() -> None:
    assert gemma.is_copy("Hello, world!", "hello world")
    assert not gemma.is_copy("Hello", "Hallo")
    assert gemma.trim_runaway("Ja, ja ja ja ja ja ja") == "Ja, ja"
    assert gemma.trim_runaway("Nein, nein, nein.") == "Nein, nein, nein."
    assert gemma.split_sentences("Kaum. Aber wir können sie runterschieben.") == [
        "Kaum.", "Aber wir können sie runterschieben."]
    assert gemma.split_sentences("Hmm... and now I am alone.") == ["Hmm... and now I am alone."]

