"""The llama.cpp translators without a model: packaged-part assembly, prompts with conversation context,
and how streamed output becomes clauses (the model's tokens come from a test double)."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from babelfish.config.pipeline import TranslatorSettings
from babelfish.config.settings import Settings
from babelfish.core.worker import EngineError
from babelfish.engines import gemma, qwen
from babelfish.engines.llama import LlamaTranslator, take_clause


def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes],
               name: str) -> qwen.PackagedParts:
    """Registry-style part packages ``<name>1``... on sys.path, each with ``get_part_path()``."""
    root = tmp_path / "site"
    for i, chunk in enumerate(chunks, 1):
        pkg = root / f"{name}{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        (pkg / "__init__.py").write_text(
            "import os\ndef get_part_path():\n"
            f"    return os.path.join(os.path.dirname(__file__), 'data', 'part{i:02d}.bin')\n")
    monkeypatch.syspath_prepend(str(root))
    whole = b"".join(chunks)
    return qwen.PackagedParts(module=name + "{}", pip=name + "{}==1.0", count=len(chunks),
                              sha256=hashlib.sha256(whole).hexdigest(), size=len(whole), filename="model.gguf")


def test_parts_are_joined_in_order_once_and_checked(tmp_path, monkeypatch) -> None:
    parts = fake_parts(tmp_path, monkeypatch, [b"one-", b"two-", b"three"], "okparts")
    path = parts.assemble(tmp_path / "models")
    assert path.read_bytes() == b"one-two-three"
    mtime = path.stat().st_mtime_ns
    assert parts.assemble(tmp_path / "models").stat().st_mtime_ns == mtime  # not joined again


def test_a_missing_part_names_what_to_install(tmp_path, monkeypatch) -> None:
    parts = fake_parts(tmp_path, monkeypatch, [b"a", b"b"], "gapparts")
    missing = qwen.PackagedParts(**{**parts.__dict__, "count": 4})
    with pytest.raises(EngineError) as error:
        missing.assemble(tmp_path / "models")
    assert "part 3 of 4 is not installed" in str(error.value)
    assert "pip install gapparts3==1.0 gapparts4==1.0" in str(error.value)
    assert not (tmp_path / "models" / "model.gguf").exists()


def test_a_wrong_hash_leaves_no_model_behind(tmp_path, monkeypatch) -> None:
    parts = fake_parts(tmp_path, monkeypatch, [b"a", b"b"], "badparts")
    wrong = qwen.PackagedParts(**{**parts.__dict__, "sha256": "0" * 64})
    with pytest.raises(EngineError, match="expected 0000"):
        wrong.assemble(tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []
    sys.modules.pop("badparts1", None)


def test_the_qwen_prompt_is_a_cached_prefix_then_context_turns() -> None:
    prefix = qwen.build_prefix("en-GB", "de-DE")
    assert prefix.startswith("<|im_start|>system\n") and "English message into German" in prefix
    assert prefix.count("<|im_start|>user\n") == qwen.SHOTS == prefix.count("<|im_start|>assistant\n")
    rest = qwen.build_rest("And you?", [("How are you?", "Wie geht es dir?")])
    assert rest == ("<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\nWie geht es dir?<|im_end|>\n"
                    "<|im_start|>user\nAnd you?<|im_end|>\n<|im_start|>assistant\n")


def test_the_gemma_prompt_takes_context_as_more_pairs() -> None:
    prompt = gemma.build_prompt("Und du?", "de", "en", context=[("Wie geht's?", "How are you?")])
    assert prompt.startswith(gemma.build_prefix("de", "en"))
    assert prompt.endswith("German: Wie geht's?\nEnglish: How are you?\n\nGerman: Und du?\nEnglish:")


def test_settings_choose_the_model_and_read_the_old_engine_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})  # the default threads were measured on 2 cores
    assert TranslatorSettings().engine == "llama"
    old = Settings(translator={"engine": "gemma", "gemma_threads": 2})
    assert (old.translator.engine, old.translator.model, old.translator.llama_threads) == ("llama", "gemma-270m", 2)
    assert TranslatorSettings(model="gemma-270m").llama_threads == 1
    assert TranslatorSettings(model="qwen2.5-1.5b").llama_threads == 2
    with pytest.raises(ValueError):
        TranslatorSettings(model="gpt-9")


def test_a_clause_is_taken_at_punctuation_once_it_has_three_words() -> None:
    assert take_clause("Yes, I know that, and") == ("Yes, I know that,", "and")
    assert take_clause("Ja, ja") == ("", "Ja, ja")
    assert take_clause("Wait. What did you say? ") == ("Wait. What did you say?", "")
    # no punctuation: the first six complete words are spoken while the model writes on; later, eight
    assert take_clause("Bitte versuchen Sie es später noch ein", first=True) == (
        "Bitte versuchen Sie es später noch", "ein")
    assert take_clause("Bitte versuchen Sie es später noch", first=True) == ("", "Bitte versuchen Sie es später noch")
    assert take_clause("Bitte versuchen Sie es später noch einmal", first=False)[0] == ""


class FakeLlm:
    """What the translator reads of llama-cpp-python's ``Llama``: tokens, the context size, and the tokens
    in the KV cache (none: every prompt is evaluated whole)."""

    def __init__(self) -> None:
        self.input_ids = np.zeros(1024, dtype=np.intc)
        self.n_tokens = 0

    def tokenize(self, text: bytes, add_bos: bool = False, special: bool = False) -> list[int]:
        return list(range(len(text.split())))

    def n_ctx(self) -> int:
        return 1024


class Scripted(LlamaTranslator):
    """The llama.cpp machinery with a model that writes what it is told, piece by piece."""

    name = "scripted"

    def __init__(self, outputs: list[list[str]]) -> None:  # no super().__init__: there is no model
        self.llm = FakeLlm()
        self.max_tokens = 160
        self.outputs = outputs
        self.prompts: list[str] = []
        self._current = None

    def _warm_prefix(self, source: str, target: str, context=()) -> None:
        return None

    def _slide_window(self, prompt: str, source: str, target: str) -> None:
        return None

    def prefix(self, source: str, target: str) -> str:
        return f"{source}->{target}\n"

    def rest(self, text: str, source: str, target: str, context, terms=()) -> str:
        glossary = "".join(f"[{t.said}:{t.required}]" for t in terms)
        return "".join(f"{a}={b}\n" for a, b in context) + glossary + text + "="

    def _pieces(self, prompt: str, n_tokens: int, repeat_penalty: float) -> Iterator[str]:
        self.prompts.append(prompt)
        yield from self.outputs.pop(0)


def test_streamed_output_is_handed_on_clause_by_clause() -> None:
    pieces = " Ja, ich weiß, dass du recht hast, aber wir müssen jetzt gehen.".replace(",", " ,").split(" ")
    tr = Scripted([[(" " + p if p != "," else p) for p in pieces if p]])
    assert list(tr.clauses_sync("Yes, I know you are right, but we have to go now.", "en", "de")) == [
        "Ja, ich weiß,", "dass du recht hast,", "aber wir müssen jetzt gehen."]
    words = "Bitte versuchen Sie es später noch einmal mit einer anderen Nummer".split()
    tr = Scripted([[" " + w for w in words]])
    assert list(tr.clauses_sync("Please try again later with another number", "en", "de")) == [
        "Bitte versuchen Sie es später noch", "einmal mit einer anderen Nummer"]


def test_a_short_first_sentence_waits_for_the_next_words() -> None:
    """"Good morning." alone would play and then leave the listener waiting for the next sentence."""
    tr = Scripted([["Guten Morgen."], [" Ich", " möchte", " gern", " wieder", " in", " die", " Konferenz", "."]])
    assert list(tr.clauses_sync("Good morning. I would like to rejoin the conference.", "en", "de")) == [
        "Guten Morgen. Ich möchte gern wieder in die", "Konferenz."]


def test_a_looping_output_is_cut_and_a_copy_is_tried_again() -> None:
    tr = Scripted([["ja"] + [" ja"] * 20, ["Hello there"], ["Hallo"]])
    assert tr.translate_sync("Ja ja.", "de", "en") == "ja"
    assert tr.translate_sync("Hello there", "en", "de") == "Hallo"  # the copy was asked again
    assert len(tr.prompts) == 3


def test_context_reaches_the_prompt() -> None:
    tr = Scripted([["Und du?"]])
    tr.translate_sync("And you?", "en", "de", context=[("How are you?", "Wie geht's?")])
    assert tr.prompts[0] == "en->de\nHow are you?=Wie geht's?\nAnd you?="


def test_a_quoted_abbreviation_does_not_end_a_sentence() -> None:
    from babelfish.engines.llama import split_sentences

    assert split_sentences('Ich möchte mit "Dr. Okonkwo" sprechen. Danke.') == [
        'Ich möchte mit "Dr. Okonkwo" sprechen.', "Danke."]
    assert split_sentences("Ask Dr. Okonkwo. She knows.") == ["Ask Dr. Okonkwo.", "She knows."]
