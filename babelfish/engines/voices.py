"""Which voice speaks each language: a chosen one, the packaged Piper voice for English, an installed MBROLA
voice for German, Azure's where Azure was chosen, espeak-ng for everything else. Loaded on first use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from babelfish.core import languages
from babelfish.core.worker import EngineError
from babelfish.pipeline.synthesize import Synthesizer

if TYPE_CHECKING:
    from babelfish.engines.azure import AzureSpeech


MBROLA_DIR = Path("/usr/share/mbrola")



# MBROLA voices (through espeak-ng) preferred over espeak-ng's own, best first, where installed: German de6
# is far more intelligible on a phone line (benchmarks/README.md, voice intelligibility).
MBROLA_PREFERRED = {"de": ("de6", "de7")}



def mbrola_installed(voice: str) -> bool:
    return (MBROLA_DIR / voice / voice).is_file()



def mbrola_voice(language: str) -> str | None:
    """The best installed MBROLA voice for ``language``, if any (``make voices-nonfree`` installs them)."""
    return next((v for v in MBROLA_PREFERRED.get(languages.primary(language), ()) if mbrola_installed(v)), None)



class Voices:
    """One synthesizer per language, created on first use and shared by every call.

    ``voices`` maps a primary language to ``piper:<voice>``, ``espeak:<voice>`` or ``mbrola:<voice>``;
    unmapped languages use the packaged Piper voice for English, an installed MBROLA voice for German, and
    espeak-ng for everything else. With ``azure`` (synthesizer
    engine ``azure``) unmapped languages use Azure's voice for them (``azure:<voice or locale>``).
    """

    def __init__(self, voices: dict[str, str], models_dir: Path, azure: AzureSpeech | None = None) -> None:
        self.voices = {languages.primary(k): v for k, v in voices.items()}
        self.models_dir = models_dir
        self.azure = azure
        self._loaded: dict[str, Synthesizer] = {}

    def spec(self, language: str) -> str:
        lang = languages.primary(language)
        if lang in self.voices:
            return self.voices[lang]
        if self.azure is not None:
            return f"azure:{self.azure.voice_name(language) or languages.regional(language)}"
        if lang == "en":
            return "piper:joe"
        mbrola = mbrola_voice(lang)
        return f"mbrola:{mbrola}" if mbrola else f"espeak:{lang}"

    def get(self, language: str) -> Synthesizer:
        spec = self.spec(language)
        if spec not in self._loaded:
            self._loaded[spec] = self._load(spec)
        return self._loaded[spec]

    def _load(self, spec: str) -> Synthesizer:
        engine, _, voice = spec.partition(":")
        if engine == "piper":
            from babelfish.engines.piper import PiperSynthesizer, voice_files

            return PiperSynthesizer(*voice_files(voice, self.models_dir))
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
        raise EngineError(f"unknown synthesizer {spec!r}: use piper:<voice>, espeak:<voice> or mbrola:<voice>")
