"""Engine name -> engine: the recognizer and translator the settings name, each built on its own model.
(Voices are chosen per language: :mod:`babelfish.engines.voices`.) Used by :func:`registry.load_engines`
here and by the Ray Serve replicas on their workers."""

from __future__ import annotations

from babelfish.config.settings import Settings
from babelfish.pipeline.recognize import Recognizer
from babelfish.pipeline.translate import Translator


def load_recognizer(settings: Settings) -> Recognizer:
    cfg = settings.recognizer
    if cfg.engine == "whisper":
        from babelfish.engines.support import tuning
        from babelfish.engines.whisper import WhisperRecognizer

        windows, beams = tuning(cfg)
        return WhisperRecognizer(cfg.model, settings.models_dir, device=cfg.device, cpu_threads=cfg.cpu_threads,
                                 compute_type=cfg.compute_type, beam_size=cfg.beam_size,
                                 min_window_s=cfg.min_window_s, window_by_language=windows, beam_by_language=beams)
    raise ValueError(f"unknown recognizer engine {cfg.engine!r}")



def load_translator(settings: Settings) -> Translator:
    cfg = settings.translator
    if cfg.engine == "llama":
        from babelfish.engines.gemma import GemmaTranslator
        from babelfish.engines.qwen import QwenTranslator

        llama = GemmaTranslator if cfg.model == "gemma-270m" else QwenTranslator
        translator = llama(settings.models_dir, threads=cfg.llama_threads, device=cfg.device, gpu_layers=cfg.gpu_layers,
                     max_tokens=cfg.max_tokens, model_path=cfg.model_path, flash_attention=(
                         cfg.flash_attention if cfg.flash_attention is not None else llama is QwenTranslator))
        translator.yield_to_voice_s = cfg.yield_to_voice_s
        return translator
    if cfg.engine == "ctranslate2":
        from babelfish.engines.ctranslate2_mt import CTranslate2Translator

        return CTranslate2Translator(cfg.ctranslate2_models, settings.models_dir, device=cfg.device,
                                     threads=cfg.threads)
    raise ValueError(f"unknown translator engine {cfg.engine!r}")
