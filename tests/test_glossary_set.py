"""The glossary test set's integrity: ids, listed terms present in both languages, no unlisted terms,
coverage per split, disjoint splits, sentence lengths. Each check is a function returning its problems, so
the tests at the end can show that each one fires on a deliberately broken copy of the data."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest

from babelfish.devtools import glossary_set
from babelfish.devtools.glossary_set import LANGUAGES, GlossarySet, mentions

MIN_WORDS, MAX_WORDS = 5, 20
MIN_PER_SPLIT = 2  # sentences per term in each split
MIN_TERMS, MAX_TERMS = 1, 3  # terms per sentence


def raw() -> dict[str, Any]:
    text = resources.files("babelfish.devtools").joinpath("glossary_set.json").read_text(encoding="utf-8")
    return json.loads(text)


def _normal(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def duplicate_ids(gset: GlossarySet) -> list[str]:
    counts = Counter([t.id for t in gset.terms] + [s.id for s in gset.sentences()])
    return [f"id {i!r} used {n} times" for i, n in counts.items() if n > 1]


def missing_listed(gset: GlossarySet) -> list[str]:
    """Listed terms whose rendering is absent from one of the sentence's texts."""
    return [f"{s.id}: {t.id!r} ({t.rendering(lang)!r}) not in {lang} text"
            for s in gset.sentences() for t in gset.terms_of(s) for lang in LANGUAGES
            if not mentions(t.rendering(lang), s.text(lang))]


def unlisted_present(gset: GlossarySet) -> list[str]:
    """Terms a sentence contains (in either language) without listing them."""
    return [f"{s.id}: contains {t.id!r} ({t.rendering(lang)!r}) in {lang} without listing it"
            for s in gset.sentences() for t in gset.terms if t.id not in s.terms for lang in LANGUAGES
            if mentions(t.rendering(lang), s.text(lang))]


def bad_term_lists(gset: GlossarySet) -> list[str]:
    return [f"{s.id}: lists {len(s.terms)} terms {s.terms}" for s in gset.sentences()
            if not MIN_TERMS <= len(set(s.terms)) == len(s.terms) <= MAX_TERMS]


def thin_coverage(gset: GlossarySet) -> list[str]:
    counts = Counter((t, s.split) for s in gset.sentences() for t in s.terms)
    return [f"{t.id!r}: {counts[t.id, split]} {split} sentences" for t in gset.terms for split in ("dev", "test")
            if counts[t.id, split] < MIN_PER_SPLIT]


def repeated_texts(gset: GlossarySet) -> list[str]:
    """A text (either language, ignoring case and punctuation) used twice, within or across splits."""
    seen: dict[str, str] = {}
    problems = []
    for s in gset.sentences():
        for lang in LANGUAGES:
            key = _normal(s.text(lang))
            if key in seen:
                problems.append(f"{s.id}: {lang} text repeats {seen[key]}")
            seen[key] = s.id
    return problems


def bad_lengths(gset: GlossarySet) -> list[str]:
    return [f"{s.id}: {len(s.text(lang).split())} words in {lang}" for s in gset.sentences() for lang in LANGUAGES
            if not MIN_WORDS <= len(s.text(lang).split()) <= MAX_WORDS]


def bad_names(gset: GlossarySet) -> list[str]:
    """Names must read the same in every language; a term's renderings must not all be equal."""
    return [f"{t.id!r}: {t.renderings}" for t in gset.terms
            if (len(set(t.renderings.values())) == 1) != t.is_name]


CHECKS: list[Callable[[GlossarySet], list[str]]] = [
    duplicate_ids, missing_listed, unlisted_present, bad_term_lists, thin_coverage, repeated_texts, bad_lengths,
    bad_names,
]


@pytest.fixture(scope="module")
def gset() -> GlossarySet:
    return glossary_set.load()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_integrity(gset: GlossarySet, check: Callable[[GlossarySet], list[str]]) -> None:
    assert check(gset) == []


def test_shape(gset: GlossarySet) -> None:
    assert 35 <= len(gset.terms) <= 45
    assert 130 <= len(gset.sentences()) <= 150
    dev, test = gset.sentences("dev"), gset.sentences("test")
    assert abs(len(dev) - len(test)) <= 2 and len(dev) + len(test) == len(gset.sentences())
    assert {t.domain for t in gset.terms} == {"clinic", "support", "office"}
    assert {t.kind for t in gset.terms} == {"term", "name"}
    assert {s.domain for s in gset.sentences()} == {"clinic", "support", "office"}
    # a sentence's terms come from its own domain
    assert all(t.domain == s.domain for s in gset.sentences() for t in gset.terms_of(s))
    assert {s.id for s in dev}.isdisjoint(s.id for s in test)


def test_loader(gset: GlossarySet) -> None:
    copay = gset.term("copay")
    assert (copay.kind, copay.domain, copay.rendering("en"), copay.rendering("de")) == (
        "term", "clinic", "copay", "Zuzahlung")
    name = gset.term("okonkwo")
    assert name.is_name and name.rendering("de") == name.rendering("en") == "Dr. Okonkwo"
    first = gset.sentences("dev")[0]
    assert first.id == "clinic-01" and first.split == "dev" and "Okonkwo" in first.en and "Okonkwo" in first.de
    assert [t.id for t in gset.terms_of(first)] == list(first.terms)
    with pytest.raises(ValueError, match="unknown split"):
        gset.sentences("train")  # type: ignore[arg-type]


def test_mentions_rule() -> None:
    assert mentions("Vorgang", "wegen meines Vorgangs von Montag")
    assert mentions("Zuzahlung", "die ZUZAHLUNGEN")
    assert mentions("copay", "Copays are due today.")
    assert not mentions("Vorgang", "zwei Vorgänge")  # an umlaut plural changes the stem
    assert not mentions("Termin", "den Terminzettel")  # more than 3 letters follow
    assert not mentions("plan", "our Basisplan")  # not at a word start
    assert not mentions("2.5 ml", "take 12.5 ml") and not mentions("28 euros", "128 euros")
    assert mentions("2,5 ml", "nehmen Sie 2,5 ml.") and mentions("Dr. Okonkwo", "(Dr. Okonkwo)")


@pytest.mark.parametrize("parsed", [
    {"terms": [{"id": "x", "kind": "word", "en": "a", "de": "b", "domain": "clinic"}], "sentences": []},
    {"terms": [{"id": "x", "kind": "term", "en": "a", "de": "b", "domain": "zoo"}], "sentences": []},
    {"terms": [{"id": "x", "kind": "term", "en": "a", "domain": "clinic"}], "sentences": []},
    {"terms": [], "sentences": [{"id": "s", "split": "train", "en": "a", "de": "b", "terms": []}]},
    {"terms": [], "sentences": [{"id": "s", "split": "dev", "en": "a", "de": "b", "terms": ["nope"]}]},
])
def test_parse_refuses_malformed(parsed: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        glossary_set.parse({"about": "", **parsed})


def _sentence(data: dict[str, Any], sentence_id: str) -> dict[str, Any]:
    return next(s for s in data["sentences"] if s["id"] == sentence_id)


def _break_duplicate_id(data: dict[str, Any]) -> None:
    data["sentences"][1]["id"] = data["sentences"][0]["id"]


def _break_missing_german(data: dict[str, Any]) -> None:
    s = _sentence(data, "support-04")  # "... wegen meines Vorgangs von Montag an."
    s["de"] = s["de"].replace("Vorgangs", "Tickets")


def _break_stem_change(data: dict[str, Any]) -> None:
    s = _sentence(data, "support-32")
    s["de"] = s["de"].replace("diesem Vorgang", "diesen Vorgängen")


def _break_unlisted(data: dict[str, Any]) -> None:
    _sentence(data, "clinic-01")["terms"].remove("referral")


def _break_coverage(data: dict[str, Any]) -> None:
    for s in data["sentences"]:
        if "wolf" in s["terms"] and s["split"] == "test":
            s["split"] = "dev"


def _break_repeat(data: dict[str, Any]) -> None:
    _sentence(data, "clinic-02")["en"] = _sentence(data, "clinic-15")["en"].upper()


def _break_length(data: dict[str, Any]) -> None:
    _sentence(data, "clinic-08")["en"] += " And then you wait an hour before anything else, even water, all right?"


def _break_name(data: dict[str, Any]) -> None:
    data["terms"].append({"id": "bird", "kind": "term", "en": "Vogel", "de": "Vogel", "domain": "office"})


@pytest.mark.parametrize(("breaker", "check"), [
    (_break_duplicate_id, duplicate_ids),
    (_break_missing_german, missing_listed),
    (_break_stem_change, missing_listed),
    (_break_unlisted, unlisted_present),
    (_break_coverage, thin_coverage),
    (_break_repeat, repeated_texts),
    (_break_length, bad_lengths),
    (_break_name, bad_names),
], ids=lambda f: f.__name__)
def test_checks_catch_mistakes(breaker: Callable[[dict[str, Any]], None],
                               check: Callable[[GlossarySet], list[str]]) -> None:
    data = copy.deepcopy(raw())
    breaker(data)
    assert check(glossary_set.parse(data)) != []
