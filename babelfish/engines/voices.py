"""Which voice speaks each language: a chosen one, Azure's where Azure was chosen, else the embedded default
of :mod:`babelfish.engines.support` (Piper's joe for English, Kokoro for every language espeak-ng can
phonemize, espeak-ng itself for the rest). MBROLA voices are opt-in (``mbrola:de6``). Loaded on first use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from babelfish.core import languages
from babelfish.core.worker import EngineError
from babelfish.engines import support
from babelfish.pipeline.synthesize import Synthesizer

if TYPE_CHECKING:
    from babelfish.engines.azure import AzureSpeech
    from babelfish.engines.kokoro import KokoroModel


MBROLA_DIR = Path("/usr/share/mbrola")


def mbrola_installed(voice: str) -> bool:
    return (MBROLA_DIR / voice / voice).is_file()


class Voices:
    """One synthesizer per language, created on first use and shared by every call.

    ``voices`` maps a primary language to ``kokoro:<style>``, ``piper:<voice>``, ``espeak:<voice>`` or
    ``mbrola:<voice>``; unmapped languages get :func:`support.default_voice`. With ``azure`` (synthesizer
    engine ``azure``) unmapped languages use Azure's voice for them (``azure:<voice or locale>``). Every
    Kokoro voice shares one model (:class:`KokoroModel`).
    """

    def __init__(self, voices: dict[str, str], models_dir: Path, azure: AzureSpeech | None = None,
                 kokoro_threads: int | None = None, piper_threads: int | None = None) -> None:
        self.voices = {languages.primary(k): v for k, v in voices.items()}
        self.kokoro_threads = kokoro_threads  # None: derived from the cores (config/hardware.py)
        self.piper_threads = piper_threads
        self.models_dir = models_dir
        self.azure = azure
        self._loaded: dict[tuple[str, str], Synthesizer] = {}
        self._kokoro: KokoroModel | None = None
        self._asked: set[str] = set()  # languages a voice was asked for (describe says which voice speaks them)

    def spec(self, language: str) -> str:
        lang = languages.primary(language)
        if lang in self.voices:
            return self.voices[lang]
        if self.azure is not None:
            return f"azure:{self.azure.voice_name(language) or languages.regional(language)}"
        return support.default_voice(lang)

    def get(self, language: str) -> Synthesizer:
        spec = self.spec(language)
        # a Kokoro style speaks whichever language it is given phonemes of: one synthesizer per language
        key = (spec, languages.primary(language) if spec.startswith("kokoro:") else "")
        self._asked.add(languages.primary(language))
        if key not in self._loaded:
            self._loaded[key] = self._load(spec, languages.primary(language))
        return self._loaded[key]

    def kokoro(self) -> KokoroModel:
        """The one Kokoro model every Kokoro voice shares (loaded with the first)."""
        if self._kokoro is None:
            from babelfish.engines.kokoro import KokoroModel

            self._kokoro = KokoroModel(self.models_dir, threads=self.kokoro_threads)
        return self._kokoro

    def describe(self) -> list[str]:
        """One line per kind of voice loaded so far (for the startup log): its model, device and threads where
        it has them, then each language it speaks with which voice."""
        kinds: dict[str, list[str]] = {}
        for (spec, language), synth in self._loaded.items():
            kind = spec.partition(":")[0]
            head = self._kokoro.describe() if kind == "kokoro" and self._kokoro is not None else \
                getattr(synth, "describe", lambda kind=kind: kind)()
            speaks = [language] if language else sorted(lang for lang in self._asked if self.spec(lang) == spec)
            kinds.setdefault(head, []).extend(f"{lang or '?'} ({spec})" for lang in speaks or [""])
        return [f"{head}: {', '.join(voices)}" for head, voices in kinds.items()]

    def _load(self, spec: str, language: str = "") -> Synthesizer:
        engine, _, voice = spec.partition(":")
        if engine == "kokoro":
            from babelfish.engines.kokoro import KokoroSynthesizer

            return KokoroSynthesizer(self.kokoro(), language, voice or support.KOKORO_STYLES.get(language, "jm_kumo"))
        if engine == "piper":
            from babelfish.engines.piper import PiperSynthesizer, voice_files

            return PiperSynthesizer(*voice_files(voice, self.models_dir), threads=self.piper_threads)
        if engine == "espeak":
            from babelfish.engines.espeak import EspeakSynthesizer

            return EspeakSynthesizer(voice)
        if engine == "mbrola":
            from babelfish.engines.espeak import EspeakSynthesizer

            if not mbrola_installed(voice):
                raise EngineError(f"MBROLA voice {voice!r} is not installed: `make voices-nonfree` installs de6 and "
                                  "de7 (Debian non-free; not for commercial use)")
            return EspeakSynthesizer(f"mb-{voice}")
        if engine == "azure":
            if self.azure is None:
                raise EngineError(f"voice {spec!r} needs synthesizer.engine 'azure'")
            return self.azure.synthesizer(voice)
        raise EngineError(f"unknown synthesizer {spec!r}: use kokoro:<style>, piper:<voice>, espeak:<voice> or "
                          "mbrola:<voice>")
