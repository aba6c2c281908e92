"""The glossary test set: operator terms and names in short English/German phone sentences.

``glossary_set.json`` (beside this module) was written by hand for babelfish (see docs/glossary-test-set.md).
Each entry of ``terms`` is either a *term*, with a required rendering per language (``copay`` -> ``Zuzahlung``),
or a *name*, which keeps the same text in every language (``Dr. Okonkwo``, ``Bad Homburg``). Each sentence
has an English and a German text, the ids of the terms it contains, and its split: ``dev`` for tuning prompts,
``test`` held out (never used to choose a prompt or a threshold).

``mentions`` is the matching rule the set is written to, for scoring a translation too: the rendering at a
word start, case-insensitively, followed by at most ``INFLECTION`` letters (``Vorgang``/``Vorgangs``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

Kind = Literal["term", "name"]
Split = Literal["dev", "test"]
Domain = Literal["clinic", "support", "office"]

LANGUAGES: tuple[str, ...] = ("en", "de")
INFLECTION = 3  # letters a rendering may be followed by (an inflection suffix) and still count as present


@dataclass(frozen=True)
class Term:
    """A glossary entry. ``renderings``: language -> the text a translation must contain (one text for a name)."""

    id: str
    kind: Kind
    domain: Domain
    renderings: dict[str, str]

    @property
    def is_name(self) -> bool:
        return self.kind == "name"

    def rendering(self, language: str) -> str:
        """The text required in ``language`` (a name's own text in any language)."""
        if self.is_name:
            return next(iter(self.renderings.values()))
        return self.renderings[language]


@dataclass(frozen=True)
class Sentence:
    """One spoken line in both languages and the ids of the glossary terms it contains."""

    id: str
    split: Split
    texts: dict[str, str]
    terms: tuple[str, ...]

    @property
    def domain(self) -> str:
        return self.id.rsplit("-", 1)[0]

    @property
    def en(self) -> str:
        return self.texts["en"]

    @property
    def de(self) -> str:
        return self.texts["de"]

    def text(self, language: str) -> str:
        return self.texts[language]


@dataclass(frozen=True)
class GlossarySet:
    """The whole set: ``terms`` in file order, and the sentences of either split (``sentences``)."""

    about: str
    terms: tuple[Term, ...]
    all_sentences: tuple[Sentence, ...]

    def sentences(self, split: Split | None = None) -> list[Sentence]:
        """The sentences of ``split`` in file order (all of them when ``split`` is None)."""
        if split is not None and split not in get_args(Split):
            raise ValueError(f"unknown split {split!r}: expected one of {get_args(Split)}")
        return [s for s in self.all_sentences if split is None or s.split == split]

    def term(self, term_id: str) -> Term:
        return self.terms_by_id[term_id]

    @cached_property
    def terms_by_id(self) -> dict[str, Term]:
        return {t.id: t for t in self.terms}

    def terms_of(self, sentence: Sentence) -> list[Term]:
        """The glossary entries a sentence contains, in the order it lists them."""
        by_id = self.terms_by_id
        return [by_id[i] for i in sentence.terms]


@cache
def _pattern(rendering: str) -> re.Pattern[str]:
    # not preceded by a letter or digit (nor by "1." / "1," when the rendering is a number like "2.5 ml"),
    # then up to INFLECTION letters and no further letter or digit
    return re.compile(rf"(?<!\w)(?<!\d[.,]){re.escape(rendering)}[^\W\d_]{{0,{INFLECTION}}}(?!\w)", re.IGNORECASE)


def mentions(rendering: str, text: str) -> bool:
    """Whether ``text`` contains ``rendering`` by the set's rule (word start, any case, <= 3 letters after)."""
    return _pattern(rendering).search(text) is not None


def _term(raw: dict[str, Any]) -> Term:
    kind = raw["kind"]
    if kind == "name":
        renderings = {language: raw["text"] for language in LANGUAGES}
    elif kind == "term":
        renderings = {language: raw[language] for language in LANGUAGES}
    else:
        raise ValueError(f"term {raw.get('id')!r}: unknown kind {kind!r}")
    if raw["domain"] not in get_args(Domain):
        raise ValueError(f"term {raw['id']!r}: unknown domain {raw['domain']!r}")
    if not all(isinstance(text, str) and text.strip() for text in renderings.values()):
        raise ValueError(f"term {raw['id']!r}: empty rendering")
    return Term(id=raw["id"], kind=kind, domain=raw["domain"], renderings=renderings)


def _sentence(raw: dict[str, Any], term_ids: set[str]) -> Sentence:
    if raw["split"] not in get_args(Split):
        raise ValueError(f"sentence {raw['id']!r}: unknown split {raw['split']!r}")
    unknown = [t for t in raw["terms"] if t not in term_ids]
    if unknown:
        raise ValueError(f"sentence {raw['id']!r}: unknown terms {unknown}")
    return Sentence(id=raw["id"], split=raw["split"], texts={language: raw[language] for language in LANGUAGES},
                    terms=tuple(raw["terms"]))


def parse(data: dict[str, Any]) -> GlossarySet:
    """Build a set from the JSON structure; ``ValueError`` on an unknown kind, domain, split or term id."""
    try:
        terms = tuple(_term(t) for t in data["terms"])
        ids = {t.id for t in terms}
        sentences = tuple(_sentence(s, ids) for s in data["sentences"])
        return GlossarySet(about=data["about"], terms=terms, all_sentences=sentences)
    except KeyError as exc:
        raise ValueError(f"glossary set: missing field {exc}") from exc


def load(path: Path | None = None) -> GlossarySet:
    """The set shipped with babelfish, or the one at ``path``."""
    if path is None:
        text = resources.files("babelfish.devtools").joinpath("glossary_set.json").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    return parse(json.loads(text))
