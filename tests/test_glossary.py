"""The glossary's matching, prompt renderings, output check and recognizer correction (babelfish/core/glossary.py),
and how a leg's utterance uses it (pipeline/understand.py) with a test double of a translator."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from babelfish.config.settings import Settings
from babelfish.core.glossary import Glossary, Rendering, Term, contains, unmark, validate
from babelfish.core.rooms import Leg, Room
from babelfish.engines import qwen
from babelfish.pipeline.identify import LanguageFollower
from babelfish.pipeline.protocols import Engines
from babelfish.pipeline.understand import Understanding

GLOSSARY = Glossary([
    Term.pair("en", "copay", "de", "Zuzahlung"),
    Term.pair("en", "ticket", "de", "Vorgang"),
    Term.pair("en", "40 milligrams", "de", "40 Milligramm"),
    Term.name("Dr. Okonkwo"),
    Term.name("FlexiPay"),
    Term.name("FlexiPay Plus"),
    Term.name("Zelnorm"),
])


@pytest.mark.parametrize(("text", "term", "found"), [
    ("Your copay is due", "copay", True),
    ("Two copays are due", "copay", True),  # inflection
    ("Die Zuzahlungen sind fällig", "Zuzahlung", True),
    ("ZUZAHLUNG", "Zuzahlung", True),
    ("a copayment", "copay", False),  # more than an inflection: another word
    ("recopay", "copay", False),  # not at a word's start
    ("FlexiPay-Plus", "FlexiPay Plus", True),  # a hyphen for a space
    ("FlexiPayPlus", "FlexiPay Plus", True),
    ("40 Milligramm", "40 Milligramm", True),
    ("140 Milligramm", "40 Milligramm", False),
    ("Dr. Okonkwo called", "Dr. Okonkwo", True),
])
def test_contains_matches_whole_words_with_a_short_inflection(text: str, term: str, found: bool) -> None:
    assert contains(text, term) is found


def test_renderings_are_those_the_sentence_contains_longest_first_both_ways() -> None:
    said = "Your copay for FlexiPay Plus is 40 milligrams, says Dr. Okonkwo."
    found = GLOSSARY.renderings(said, "en", "de")
    assert {(r.said, r.required) for r in found} == {
        ("copay", "Zuzahlung"), ("FlexiPay Plus", "FlexiPay Plus"), ("40 milligrams", "40 Milligramm"),
        ("Dr. Okonkwo", "Dr. Okonkwo")}  # not "FlexiPay": inside "FlexiPay Plus"
    back = GLOSSARY.renderings("Der Vorgang ist offen", "de", "en")
    assert back == [Rendering("Vorgang", "ticket", "term")]
    assert GLOSSARY.renderings("Your copay", "en", "fr") == []  # no French rendering: nothing required


def test_inline_writes_terms_in_their_rendering_and_keeps_names() -> None:
    assert (GLOSSARY.inline("The copay for Zelnorm is 40 milligrams.", "en", "de")
            == "The Zuzahlung for Zelnorm is 40 Milligramm.")


def test_the_output_check_finds_what_is_missing_and_repairs_a_term_left_in_the_source_language() -> None:
    needed = GLOSSARY.renderings("The copay for Zelnorm, ticket 5", "en", "de")
    assert [r.required for r in GLOSSARY.missing("Die Zuzahlungen für Zelnorm, Vorgang 5", needed)] == []
    assert {r.required for r in GLOSSARY.missing("Die Gebühr für Selnorm, Ticket 5", needed)} == {
        "Zuzahlung", "Zelnorm", "Vorgang"}
    # "copay" left untranslated is written as required; a different word ("Gebühr") is left alone
    assert GLOSSARY.repair("Die copay für Zelnorm, Ticket 5", needed) == "Die Zuzahlung für Zelnorm, Vorgang 5"
    assert GLOSSARY.repair("Die Gebühr für Zelnorm", needed) == "Die Gebühr für Zelnorm"


@pytest.mark.parametrize(("heard", "written"), [
    ("I take zell norm every day", "I take Zelnorm every day"),
    ("The co-pay is due", "The copay is due"),
    ("Two copays are due", "Two copays are due"),  # found as is: the inflection stays
    ("I use Flexi Pay Plus.", "I use FlexiPay Plus."),
    ("I take Zelnorm daily", "I take Zelnorm daily"),
    ("I feel normal today", "I feel normal today"),  # not alike enough: nothing changes
    ("The ticket is open", "The ticket is open"),  # short terms only exactly
])
def test_the_recognized_text_gets_a_near_miss_written_as_the_glossary_has_it(heard: str, written: str) -> None:
    assert GLOSSARY.correct(heard, "en") == written


def test_the_recognizer_hint_lists_spellings_in_the_legs_language() -> None:
    hint = GLOSSARY.recognition_hint("de")
    assert "Zuzahlung" in hint and "Dr. Okonkwo" in hint and "copay" not in hint
    assert Glossary().recognition_hint("de") == ""


@pytest.mark.parametrize("term", [
    Term.pair("en", "", "de", "x"), Term.pair("en", "a", "en", "b"), Term.pair("xx", "a", "de", "b"),
    Term.name("line\nbreak"), Term.name("x" * 81), Term.name("..."),
])
def test_validate_refuses_what_a_glossary_cannot_hold(term: Term) -> None:
    with pytest.raises(ValueError):
        validate(term)


def test_qwen_prompt_puts_the_renderings_after_the_sentence_so_the_prepared_prefix_holds() -> None:
    terms = GLOSSARY.renderings("The copay at Dr. Okonkwo", "en", "de")
    with_terms = qwen.build_rest("The copay at Dr. Okonkwo", [("Hi", "Hallo")], terms=terms)
    head = qwen.build_rest_head([("Hi", "Hallo")])
    assert with_terms.startswith(head)
    assert '"copay" as "Zuzahlung"' in with_terms and '"Dr. Okonkwo"' in with_terms
    assert with_terms.endswith("<|im_start|>assistant\n")
    assert "Glossary" not in qwen.build_rest("The copay", [("Hi", "Hallo")])


class Book:
    def __init__(self, glossary: Glossary) -> None:
        self.current = glossary
        self.asked: list[str | None] = []

    def glossary(self, room_code: str | None) -> Glossary:
        self.asked.append(room_code)
        return self.current


class Recognizer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.prompts: list[str] = []

    async def transcribe(self, samples: np.ndarray, rate: int, language: str, prompt: str = "") -> str:
        self.prompts.append(prompt)
        return self.text


class Translator:
    """Writes what it was told to write; records what it was asked."""

    name = "double"
    takes_terms = True

    def __init__(self, output: str) -> None:
        self.output = output
        self.asked: list[tuple[str, list[Rendering]]] = []

    async def translate(self, text: str, source: str, target: str, context=(), terms=()) -> str:
        self.asked.append((text, list(terms)))
        return self.output


def _understanding(book: Book, recognizer: Recognizer, translator: Translator, style: str = "both",
                   code: str | None = "clinic") -> Understanding:
    settings = Settings(glossary={"translator": style})
    leg = Leg(id="a", caller="+1", language="en")
    room = Room(id="r", code=code)
    room.legs.append(leg)
    leg.room = room
    engines = Engines(recognizer=recognizer, translator=translator, voices=None, detector_factory=None,  # type: ignore[arg-type]
                      vad_worker=None)  # type: ignore[arg-type]
    return Understanding(leg, engines, settings, LanguageFollower(settings.languages), glossary=book)


@pytest.mark.parametrize(("style", "asked_text", "prompted"), [
    ("both", "The Zuzahlung for Zelnorm", True),
    ("inline", "The Zuzahlung for Zelnorm", False),
    ("prompt", "The copay for Zelnorm", True),
    ("marked", 'The "Zuzahlung" for "Zelnorm"', False),
    ("off", "The copay for Zelnorm", False),
])
def test_an_utterance_is_recognized_and_translated_with_the_rooms_glossary(style: str, asked_text: str,
                                                                           prompted: bool) -> None:
    book = Book(GLOSSARY)
    recognizer = Recognizer("The copay for zell norm")
    translator = Translator("Die copay für Zelnorm")
    understood = asyncio.run(_understanding(book, recognizer, translator, style)(np.zeros(8000, np.float32),
                                                                                 8000, ["de"]))
    assert "clinic" in book.asked  # the room's own glossary
    assert "Zelnorm" in recognizer.prompts[0]  # the recognizer is biased towards the spellings
    assert understood.text == "The copay for Zelnorm"  # the near miss written as the glossary has it
    text, terms = translator.asked[0]
    assert text == asked_text
    assert bool(terms) is prompted
    if style == "off":
        assert understood.translations["de"] == "Die copay für Zelnorm" and understood.terms_checked == 0
    else:  # the term left in English is repaired; the check finds both
        assert understood.translations["de"] == "Die Zuzahlung für Zelnorm"
        assert understood.terms_checked == 2 and understood.terms_missed == []


def test_a_missing_rendering_is_kept_with_the_utterance_and_an_edit_applies_to_the_next_one() -> None:
    book = Book(Glossary())
    translator = Translator("Die Gebühr")
    understanding = _understanding(book, Recognizer("The copay"), translator)
    first = asyncio.run(understanding(np.zeros(8000, np.float32), 8000, ["de"]))
    assert first.terms_checked == 0
    book.current = GLOSSARY  # the operator added the term while the call goes on
    second = asyncio.run(understanding(np.zeros(8000, np.float32), 8000, ["de"]))
    assert second.terms_checked == 1 and second.terms_missed == ["de: Zuzahlung"]
    assert second.translations["de"] == "Die Gebühr"  # a check, not a rewrite


def test_a_failing_glossary_costs_nothing_but_itself() -> None:
    class Broken(Book):
        def glossary(self, room_code: str | None) -> Glossary:
            raise RuntimeError("database gone")

    translator = Translator("Die Zuzahlung")
    understood = asyncio.run(_understanding(Broken(GLOSSARY), Recognizer("The copay"), translator)(
        np.zeros(8000, np.float32), 8000, ["de"]))
    assert understood.translations["de"] == "Die Zuzahlung" and understood.error is None


def test_repair_writes_a_near_miss_of_a_rendering_as_required_and_leaves_other_words() -> None:
    glossary = Glossary([Term.name("Lindenstraße"), Term.pair("en", "sick note", "de", "Krankschreibung"),
                         Term.pair("en", "12 euros a month", "de", "12 Euro im Monat")])
    needed = glossary.renderings("I live on Lindenstraße and need a sick note", "en", "de")
    assert (glossary.repair("Ich wohne in der Linden Street und brauche eine Krankenschreibung.", needed)
            == "Ich wohne in der Lindenstraße und brauche eine Krankschreibung.")
    back = glossary.renderings("Das kostet 12 Euro im Monat", "de", "en")
    assert glossary.repair("That is 12 euros per month.", back) == "That is 12 euros a month."
    assert glossary.repair("Ich brauche ein Attest.", needed) == "Ich brauche ein Attest."  # not alike: left


def test_marked_renderings_lose_their_quotation_marks_in_the_translation() -> None:
    needed = GLOSSARY.renderings("The copay for Zelnorm", "en", "de")
    assert GLOSSARY.inline("The copay for Zelnorm", "en", "de", marked=True) == 'The "Zuzahlung" for "Zelnorm"'
    assert unmark('Die „Zuzahlungen“ für "Zelnorm" und "andere"', needed) == 'Die Zuzahlungen für Zelnorm und "andere"'


def test_a_correction_is_not_undone_by_a_shorter_entry_inside_it() -> None:
    glossary = Glossary([Term.name("Mill Creek"), Term.name("Miller")])
    assert glossary.correct("Die Störung in Miller Creek ist behoben.", "de") == (
        "Die Störung in Mill Creek ist behoben.")
    assert glossary.correct("Herr Miller ist da.", "de") == "Herr Miller ist da."


@pytest.mark.parametrize(("text", "term", "found"), [
    ("within three working days", "3 working days", True),
    ("innerhalb von drei Werktagen", "3 Werktage", True),
    ("in 3 working days", "three working days", True),
    ("in 13 working days", "3 working days", False),
    ("take one tablet", "1 tablet", True),
    ("take ten tablets", "1 tablet", False),
])
def test_a_small_number_matches_its_digits_or_its_word(text: str, term: str, found: bool) -> None:
    assert contains(text, term) is found


def test_a_number_said_as_a_word_reaches_the_translator_and_a_near_miss_of_it_is_corrected() -> None:
    glossary = Glossary([Term.pair("en", "3 working days", "de", "3 Werktage")])
    assert glossary.inline("innerhalb von drei Werktagen", "de", "en", marked=True) == 'innerhalb von "3 working days"'
    assert glossary.correct("innerhalb von drei Wektagen zu.", "de") == "innerhalb von 3 Werktage zu."
    assert not glossary.missing("We will send it within three working days.",
                                glossary.renderings("in drei Werktagen", "de", "en"))


@pytest.mark.parametrize(("heard", "written"), [
    ("Herfischer, bitte warten Sie.", "Herr Fischer, bitte warten Sie."),
    ("Herrfischer hat angerufen.", "Herr Fischer hat angerufen."),
    ("Herbaken, Ihre Tochter bekommt zwei.", "Herr Baker, Ihre Tochter bekommt zwei."),
    ("Herbert kommt morgen.", "Herbert kommt morgen."),  # a name of its own, not a title and an entry
    ("Frauenarzt heute.", "Frauenarzt heute."),
])
def test_a_title_run_into_a_name_is_written_apart(heard: str, written: str) -> None:
    glossary = Glossary([Term.name("Fischer"), Term.name("Baker"), Term.pair("en", "referral", "de", "Überweisung")])
    assert glossary.correct(heard, "de") == written
