"""Translator stage: text in one language -> text in another."""

from __future__ import annotations

from typing import Protocol

from babelfish import languages
from babelfish.settings import Settings


class Translator(Protocol):
    name: str

    async def translate(self, text: str, source: str, target: str) -> str: ...


def same_language(a: str, b: str) -> bool:
    return languages.primary(a) == languages.primary(b)


def load_translator(settings: Settings) -> Translator:
    cfg = settings.translator
    if cfg.engine == "gemma":
        from babelfish.engines.gemma import GemmaTranslator

        return GemmaTranslator(settings.models_dir, threads=cfg.gemma_threads, max_tokens=cfg.max_tokens)
    if cfg.engine == "ctranslate2":
        from babelfish.engines.ctranslate2_mt import CTranslate2Translator

        return CTranslate2Translator(cfg.ctranslate2_models, settings.models_dir)
    raise ValueError(f"unknown translator engine {cfg.engine!r}")
