"""Recognizer stage: speech -> text in the speaker's (known) language."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from babelfish.settings import Settings


class Recognizer(Protocol):
    name: str

    async def transcribe(self, samples: np.ndarray, rate: int, language: str, prompt: str = "") -> str:
        """``prompt``: what was said just before (the room's recent lines in this language), as a hint."""
        ...


def load_recognizer(settings: Settings) -> Recognizer:
    cfg = settings.recognizer
    if cfg.engine == "whisper":
        from babelfish.engines.whisper import WhisperRecognizer

        return WhisperRecognizer(cfg.model, settings.models_dir, cpu_threads=cfg.cpu_threads,
                                 compute_type=cfg.compute_type, beam_size=cfg.beam_size,
                                 min_window_s=cfg.min_window_s, window_by_language=cfg.window_by_language)
    raise ValueError(f"unknown recognizer engine {cfg.engine!r}")
