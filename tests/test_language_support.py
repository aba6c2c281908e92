"""What each language can do (engines/support.py): the verdict rules, the menu that offers only what works
(and says why the others are left out), the browser phone's list, the translator's prompt per pair, and the
server's own words and the phone page's labels in every offered language."""

from __future__ import annotations

import json
import logging
import re
import string

import httpx
import pytest

from babelfish.config.settings import Settings
from babelfish.core import languages
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.engines import qwen, support
from babelfish.server.phone import STATIC
from babelfish.server.serving import background

from .conftest import HEAVY, PACE, double_engines

GOOD = {"recognition_wer": 12.0, "voice_wer": 20.0, "to_english_chrf": 50.0, "from_english_chrf": 45.0}


def test_a_language_is_poor_when_real_speech_is_recognized_badly_and_the_verdict_names_the_fix() -> None:
    verdict = support.judge("nl", {**GOOD, "recognition_wer": 61.0})
    assert verdict.rating == "poor" and not verdict.offered
    assert "61 %" in verdict.reasons[0] and "babelfish models fetch whisper-small" in verdict.reasons[0]


@pytest.mark.parametrize(("row", "rating"), [
    (GOOD, "good"),
    ({**GOOD, "recognition_wer": None}, "usable"),  # no recordings: judged by the voice round trip only
    ({**GOOD, "voice_wer": 70.0}, "poor"),
    ({**GOOD, "to_english_chrf": 20.0}, "poor"),
    ({**GOOD, "from_english_chrf": None}, "usable"),
    (None, "unmeasured"),
])
def test_the_verdict_rules(row: dict | None, rating: str) -> None:
    assert support.judge("pl", row).rating == rating


def test_only_the_parts_that_run_on_the_embedded_engines_are_judged() -> None:
    settings = Settings(translator={"engine": "ctranslate2"}, recognizer={"model": "small"})
    verdict = support.judge("nl", {**GOOD, "recognition_wer": 61.0, "to_english_chrf": 10.0},
                            support.embedded_engines(settings))
    assert verdict.rating == "good"  # a bigger Whisper and another translator: their figures are not these


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A saved ``bench languages`` run: English and French good, Dutch poor, the rest unmeasured."""
    rows = {"en": {**GOOD, "to_english_chrf": None, "from_english_chrf": None},
            "fr": dict(GOOD), "nl": {**GOOD, "recognition_wer": 61.0}}
    table = {"languages": rows}
    monkeypatch.setattr(support, "measured", lambda: table)
    return table


def test_the_menu_offers_the_languages_measured_to_work(measured: dict) -> None:
    assert support.offered() == ["en-GB", "fr-FR"]
    assert [row["language"] for row in support.table() if row["offered"]] == ["en", "fr"]


async def test_the_menu_hides_a_language_rated_poor_and_the_phone_page_says_why(measured: dict, settings: Settings,
                                                                              caplog) -> None:
    settings.menu.languages = None  # the default: what works
    with caplog.at_level(logging.INFO, logger="babelfish"):
        async with background(settings, double_engines()) as url, FakeVonage(url) as vonage, \
                httpx.AsyncClient(base_url=url) as http:
            call = await vonage.dial("447700900001", keys=["2"], pace=PACE)
            assert [p["text"] for p in call.prompts[:2]] == ["For English, press 1.",
                                                             "Pour le français, appuyez sur 2."]
            assert call.headers["lang"] == "fr-FR"
            await call.hang_up()
            choices = {c["tag"]: c for c in (await http.get("/phone/languages")).json()["languages"]}
    assert choices["fr-FR"]["offered"] and not choices["nl-NL"]["offered"]
    assert "61 %" in choices["nl-NL"]["why"]
    said = caplog.text
    assert "languages offered in the menu: en, fr" in said
    assert re.search(r"not offered: Dutch \(nl\): poor: Whisper base gets 61 %", said)


async def test_an_operator_may_offer_a_poor_language_and_is_warned(measured: dict, settings: Settings,
                                                                 caplog) -> None:
    settings.menu.languages = ["en-GB", "nl-NL"]
    with caplog.at_level(logging.INFO, logger="babelfish"):
        async with background(settings, double_engines()) as url, FakeVonage(url) as vonage:
            call = await vonage.dial("447700900001", keys=["2"], pace=PACE)
            assert call.headers["lang"] == "nl-NL"
            await call.hang_up()
    assert "menu.languages offers Dutch (nl): poor" in caplog.text


def test_a_menu_language_the_server_cannot_speak_is_refused_at_startup() -> None:
    with pytest.raises(ValueError, match="'xx-XX' is not a language babelfish offers"):
        Settings(menu={"languages": ["en-GB", "xx-XX"]})


def test_every_offered_language_has_example_turns_and_a_language_without_them_gets_the_plain_prompt() -> None:
    from babelfish.engines.gemma import EXAMPLES

    assert set(languages.NAMES) <= set(EXAMPLES)
    assert all(len(turns) == len(EXAMPLES["en"]) for turns in EXAMPLES.values())
    assert qwen.prompt_style("pl", "en") == "examples"
    polish = qwen.build_prefix("pl", "en", style=qwen.prompt_style("pl", "en"))
    assert "Polish" in polish and "Halo, słyszysz mnie?" in polish and "Hallo" not in polish
    korean = qwen.build_prefix("ko", "en", style=qwen.prompt_style("ko", "en"))  # no examples: none borrowed
    assert qwen.prompt_style("ko", "en") == "zero-shot" and korean.count("<|im_start|>") == 1


def test_the_one_line_reference_prompt_is_one_instruction_with_the_text() -> None:
    prompt = qwen.build_prefix("de", "en", style="one-line") + qwen.build_rest("Hallo", style="one-line")
    assert "Translate this German text to English. Reply with the translation only.\n\nHallo<|im_end|>" in prompt
    assert "interpreter" not in prompt


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_server_says_every_sentence_in_every_offered_language() -> None:
    for key, texts in languages.PROMPTS.items():
        missing = set(languages.NAMES) - set(texts)
        assert not missing, f"PROMPTS[{key!r}] lacks {sorted(missing)}"
        for lang, text in texts.items():
            assert fields(text) <= fields(texts["en"]) | {"digit"}, (key, lang)
            assert languages.prompt(key, lang)[1] == languages.regional(lang)


def test_the_phone_page_has_every_label_in_every_offered_language() -> None:
    labels = json.loads((STATIC / "phone-labels.json").read_text(encoding="utf-8"))
    assert set(languages.NAMES) <= set(labels)
    english = labels["en"]
    for lang, table in labels.items():
        assert set(table) == set(english), f"{lang}: missing {sorted(set(english) - set(table))}"
        for key, text in table.items():
            assert fields(text) == fields(english[key]), (lang, key)
    page = (STATIC / "phone.html").read_text()
    used = set(re.findall(r'data-label="(\w+)"', page))
    used |= set(re.findall(r'\bt\("(\w+)"', (STATIC / "phone.js").read_text()))
    assert used and used <= set(english), sorted(used - set(english))


@pytest.mark.e2e
@HEAVY
def test_a_clause_in_a_language_that_had_no_example_turns_is_translated_spoken_and_understood(engines) -> None:
    """Portuguese had no example turns before (its calls were prompted with German ones): now the clause comes
    out Portuguese, Kokoro speaks it, and Whisper, hearing it over an 8 kHz line, writes most of it back."""
    from babelfish.core import audio
    from babelfish.devtools.bench.scoring import word_errors
    from babelfish.engines.llama import is_copy

    english = "Where is the nearest train station?"
    portuguese = " ".join(engines.translator.clauses_sync(english, "en", "pt"))
    assert portuguese and not is_copy(english, portuguese), portuguese
    assert re.search(r"[ãçéêóõ]|onde|estação", portuguese.lower()), portuguese
    samples, rate = engines.voices.get("pt-PT").synthesize_sync(portuguese)
    heard = engines.recognizer.transcribe_sync(audio.resample(samples, rate, 8000), 8000, "pt")
    wer, _ = word_errors([portuguese], [heard], "pt")
    assert wer < 60, (portuguese, heard)


def test_babelfish_languages_lists_the_table_and_the_menu(measured: dict, capsys: pytest.CaptureFixture[str]) -> None:
    from babelfish import cli

    assert cli.main(["languages", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    rows = {row["language"]: row for row in shown["languages"]}
    assert shown["menu"] == [] and set(rows) == set(languages.NAMES)  # the tests' environment turns the menu off
    assert rows["nl"]["rating"] == "poor" and "whisper-small" in rows["nl"]["reasons"][0]
    assert rows["de"]["voice"].startswith("kokoro:") and rows["de"]["examples"]


def test_whisper_gets_each_languages_dev_chosen_decoding_under_the_operators_own() -> None:
    from babelfish.config.pipeline import RecognizerSettings

    windows, beams = support.tuning(RecognizerSettings())
    assert beams == {lang: int(t["beam_size"]) for lang, t in support.RECOGNIZER_TUNING.items() if "beam_size" in t}
    windows, beams = support.tuning(RecognizerSettings(beam_by_language={"fr": 2}, window_by_language={"nl": 30}))
    assert beams["fr"] == 2 and windows["nl"] == 30
    assert support.tuning(RecognizerSettings(model="small")) == ({}, {})  # measured on base only
