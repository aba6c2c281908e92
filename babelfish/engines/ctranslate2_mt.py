"""Machine translation with CTranslate2: OPUS-MT (Marian), Argos Translate packages and NLLB / M2M-100.

These are the upgrades over the embedded Gemma translator; their weights come from the internet
(``babelfish models fetch opus-mt-de-en`` or ``argos-de-en``, see docs/models.md). Three layouts are read:

- OPUS-MT / Marian converted with ``ct2-transformers-converter``: a directory with ``model.bin`` and the
  SentencePiece models ``source.spm`` and ``target.spm``. The source gets ``</s>`` appended, as the
  Marian tokenizer does; multi-target models (``opus-mt-en-ROMANCE``) get their ``>>fr<<`` token first.
- Argos Translate packages (``.argosmodel`` zips, unzipped): ``model/`` (a CTranslate2 model) next to
  ``sentencepiece.model``.
- Multilingual NLLB-200 or M2M-100 conversions: ``model.bin`` plus ``sentencepiece.bpe.model``; the
  source starts with the source language token and the target with the target language token
  (``deu_Latn`` for NLLB, ``__de__`` for M2M-100). Map such a model under ``"*"`` to serve every pair
  that has no model of its own.

Models load lazily, once per directory, and are shared by every call; text is translated sentence by
sentence in one batch.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babelfish.config import hardware
from babelfish.config.hardware import Device
from babelfish.core import languages
from babelfish.core.worker import EngineError, Worker

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?;。！？])\s+")
# Languages written without spaces between sentences.
_NO_SPACE = {"ja", "zh"}

# NLLB-200 (FLORES-200) codes for the primary subtags we are likely to meet.
NLLB_CODES = {
    "ar": "arb_Arab", "bg": "bul_Cyrl", "cs": "ces_Latn", "da": "dan_Latn", "de": "deu_Latn",
    "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn", "et": "est_Latn", "fa": "pes_Arab",
    "fi": "fin_Latn", "fr": "fra_Latn", "he": "heb_Hebr", "hi": "hin_Deva", "hr": "hrv_Latn",
    "hu": "hun_Latn", "id": "ind_Latn", "it": "ita_Latn", "ja": "jpn_Jpan", "ko": "kor_Hang",
    "lt": "lit_Latn", "lv": "lvs_Latn", "nb": "nob_Latn", "nl": "nld_Latn", "no": "nob_Latn",
    "pl": "pol_Latn", "pt": "por_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl", "sk": "slk_Latn",
    "sl": "slv_Latn", "sr": "srp_Cyrl", "sv": "swe_Latn", "th": "tha_Thai", "tr": "tur_Latn",
    "uk": "ukr_Cyrl", "vi": "vie_Latn", "zh": "zho_Hans",
}

_SOURCE_SPM = ("source.spm", "sentencepiece.bpe.model", "sentencepiece.model", "spm.model")
_TARGET_SPM = ("target.spm", "sentencepiece.bpe.model", "sentencepiece.model", "spm.model")


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


def pair_key(source: str, target: str) -> str:
    return f"{languages.primary(source)}-{languages.primary(target)}"


@dataclass
class Layout:
    """Where a model directory keeps its CTranslate2 model and its SentencePiece models."""

    kind: str  # "opus-mt" | "argos" | "multilingual"
    model_dir: Path
    source_spm: Path
    target_spm: Path


def detect_layout(path: Path) -> Layout:
    """Recognise an OPUS-MT, Argos or NLLB/M2M-100 directory, or raise :class:`EngineError`."""
    path = Path(path)
    if not path.is_dir():
        raise EngineError(f"translation model directory {path} does not exist")
    # An Argos package unzipped by hand keeps its top-level folder: look one level down too.
    candidates = [path] + sorted(p for p in path.iterdir() if p.is_dir() and p.name != "model")
    for base in candidates:
        if (base / "model" / "model.bin").exists():
            if (base / "sentencepiece.model").exists():
                return Layout("argos", base / "model", base / "sentencepiece.model",
                              base / "sentencepiece.model")
            if (base / "bpe.model").exists():
                raise EngineError(f"Argos package {base} uses BPE tokenization (bpe.model), which babelfish "
                                  "does not read; use a SentencePiece package or an OPUS-MT model")
        if (base / "model.bin").exists():
            src = next((base / n for n in _SOURCE_SPM if (base / n).exists()), None)
            tgt = next((base / n for n in _TARGET_SPM if (base / n).exists()), None)
            if src is None or tgt is None:
                raise EngineError(f"{base} has model.bin but no SentencePiece model (source.spm/target.spm "
                                  "or sentencepiece.bpe.model): copy them from the original model")
            kind = "opus-mt" if src.name == "source.spm" else "multilingual"
            return Layout(kind, base, src, tgt)
    raise EngineError(f"{path} is not a CTranslate2 translation model (no model.bin or model/model.bin)")


def read_vocabulary(model_dir: Path) -> tuple[set[str], set[str]]:
    """The source and target vocabularies of a CTranslate2 model directory (JSON or text files)."""

    def load(name: str) -> set[str] | None:
        json_file, txt_file = model_dir / f"{name}.json", model_dir / f"{name}.txt"
        if json_file.exists():
            return set(json.loads(json_file.read_text(encoding="utf-8")))
        if txt_file.exists():
            return set(txt_file.read_text(encoding="utf-8").splitlines())
        return None

    shared = load("shared_vocabulary")
    if shared is not None:
        return shared, shared
    return load("source_vocabulary") or set(), load("target_vocabulary") or set()


@dataclass
class LoadedModel:
    layout: Layout
    translator: Any
    source_sp: Any
    target_sp: Any
    source_vocab: set[str]
    target_vocab: set[str]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def eos(self) -> str:
        return self.config.get("eos_token") or "</s>"

    @property
    def has_language_tokens(self) -> bool:
        """Whether the target vocabulary names languages (NLLB ``eng_Latn``, M2M-100 ``__en__``)."""
        return any(t in self.target_vocab for t in ("eng_Latn", "deu_Latn", "__en__", "__de__"))

    def language_token(self, lang: str, vocab: set[str]) -> str | None:
        """The token that names ``lang`` in a multilingual model, if the vocabulary has one."""
        for token in (NLLB_CODES.get(lang), f"__{lang}__"):
            if token and token in vocab:
                return token
        return None

    def prepare(self, tokens: list[str], source: str, target: str) -> tuple[list[str], list[str] | None]:
        """Source tokens and target prefix for one sentence."""
        prefix: list[str] | None = None
        if self.layout.kind == "multilingual" and self.has_language_tokens:
            src_token = self.language_token(source, self.source_vocab)
            tgt_token = self.language_token(target, self.target_vocab)
            if tgt_token is None:
                raise EngineError(f"multilingual model {self.layout.model_dir} has no token for language "
                                  f"{target!r}")
            tokens = ([src_token] if src_token else []) + tokens + [self.eos]
            prefix = [tgt_token]
        elif self.layout.kind == "opus-mt":
            marker = f">>{target}<<"
            if marker in self.source_vocab:
                tokens = [marker] + tokens
            if not self.config.get("add_source_eos"):
                tokens = tokens + [self.eos]
        return tokens, prefix


class CTranslate2Translator:
    """Translate with CTranslate2 models chosen per language pair.

    ``models`` maps a pair (``"de-en"``) or ``"*"`` (a multilingual model) to a model directory. A pair
    uses its own entry, else ``models_dir/opus-mt-<src>-<tgt>``, else ``models_dir/argos-<src>-<tgt>``
    (as written by ``babelfish models fetch``), else the ``"*"`` entry.
    """

    name = "ctranslate2"

    def __init__(self, models: dict[str, str], models_dir: Path, *, device: Device = "auto",
                 threads: int | None = None, beam_size: int = 2, compute_type: str | None = None,
                 max_decoding_length: int = 256) -> None:
        self.models = {k.strip().lower().replace("_", "-"): v for k, v in (models or {}).items()}
        self.models_dir = Path(models_dir)
        self.device = hardware.ctranslate2_device(device, "translator.device")
        self.threads = hardware.threads("ctranslate2", threads)
        self.beam_size = beam_size
        self.compute_type = hardware.compute_type(compute_type, self.device)
        self.max_decoding_length = max_decoding_length
        self._loaded: dict[Path, LoadedModel] = {}
        self._lock = threading.Lock()
        self.worker = Worker("ctranslate2")

    def describe(self) -> str:
        """Models, device and threads, for the startup log (the models load on first use, per pair)."""
        models = ", ".join(f"{pair}: {Path(path).name}" for pair, path in self.models.items()) or "fetched models"
        return f"ctranslate2 ({models}) on {self.device} ({self.compute_type}), {hardware.say_threads(self.threads)}"

    def model_path(self, source: str, target: str) -> Path:
        """The model directory for a pair, or :class:`EngineError` saying how to fetch one."""
        key = pair_key(source, target)
        if key in self.models:
            return self._configured(key)
        for prefix in ("opus-mt", "argos"):
            path = self.models_dir / f"{prefix}-{key}"
            if path.is_dir():
                return path
        if "*" in self.models:
            return self._configured("*")
        raise EngineError(
            f"no CTranslate2 translation model for {key}: run `babelfish models fetch opus-mt-{key}` "
            f"(or `argos-{key}`; needs internet), or set translator.ctranslate2_models"
        )

    def _configured(self, key: str) -> Path:
        path = Path(self.models[key]).expanduser()
        if not path.exists() and not path.is_absolute() and (self.models_dir / path).exists():
            path = self.models_dir / path
        if not path.exists():
            raise EngineError(f"translation model for {key!r} not found at {path} "
                              "(translator.ctranslate2_models)")
        return path

    def load(self, source: str, target: str) -> LoadedModel:
        path = self.model_path(source, target).resolve()
        with self._lock:
            if path not in self._loaded:
                self._loaded[path] = self._load(path)
            return self._loaded[path]

    def _load(self, path: Path) -> LoadedModel:
        try:
            import ctranslate2
            import sentencepiece
        except ImportError as exc:  # pragma: no cover - dependency missing
            raise EngineError(f"the ctranslate2 translator needs {exc.name}: pip install ctranslate2 "
                              "sentencepiece") from exc
        layout = detect_layout(path)
        config_file = layout.model_dir / "config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
        try:
            translator = ctranslate2.Translator(str(layout.model_dir), device=self.device,
                                                compute_type=self.compute_type, inter_threads=1,
                                                intra_threads=self.threads)
            source_sp = sentencepiece.SentencePieceProcessor(model_file=str(layout.source_spm))
            target_sp = (source_sp if layout.target_spm == layout.source_spm
                         else sentencepiece.SentencePieceProcessor(model_file=str(layout.target_spm)))
        except (RuntimeError, OSError, ValueError) as exc:
            raise EngineError(f"cannot load translation model {path}: {exc}") from exc
        source_vocab, target_vocab = read_vocabulary(layout.model_dir)
        log.info("loaded %s translation model from %s", layout.kind, layout.model_dir)
        return LoadedModel(layout, translator, source_sp, target_sp, source_vocab, target_vocab, config)

    def translate_sync(self, text: str, source: str, target: str) -> str:
        return self.translate_texts_sync([text], source, target)[0]

    def translate_texts_sync(self, texts: list[str], source: str, target: str) -> list[str]:
        """Several texts of one language pair in one ``translate_batch`` (their sentences batched together):
        how requests from several calls share one pass of the model."""
        src, tgt = languages.primary(source), languages.primary(target)
        split = [sentences(text) for text in texts]
        if not any(split):
            return ["" for _ in texts]
        model = self.load(src, tgt)
        batch: list[list[str]] = []
        prefixes: list[list[str] | None] = []
        for parts in split:
            for sentence in parts:
                tokens, prefix = model.prepare(model.source_sp.encode(sentence, out_type=str), src, tgt)
                batch.append(tokens)
                prefixes.append(prefix)
        try:
            results = model.translator.translate_batch(
                batch,
                target_prefix=prefixes if any(p is not None for p in prefixes) else None,
                beam_size=self.beam_size,
                max_decoding_length=self.max_decoding_length,
                replace_unknowns=model.layout.kind == "argos",
            )
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"translation {src}->{tgt} failed: {exc}") from exc
        special = {model.eos, "<pad>", "<s>", "<unk>"}
        out: list[str] = []
        for result, prefix in zip(results, prefixes, strict=True):
            tokens = list(result.hypotheses[0])
            if prefix:
                tokens = tokens[len(prefix):]
            tokens = [t for t in tokens if t not in special]
            out.append(model.target_sp.decode_pieces(tokens).strip())
        joiner = "" if tgt in _NO_SPACE else " "
        texts_out, i = [], 0
        for parts in split:
            texts_out.append(joiner.join(o for o in out[i : i + len(parts)] if o))
            i += len(parts)
        return texts_out

    async def translate_many(self, items: list[tuple[str, str, str]]) -> list[str]:
        """``(text, source, target)`` requests, batched per language pair (Ray Serve's batching uses it)."""
        pairs: dict[tuple[str, str], list[int]] = {}
        for i, (_, source, target) in enumerate(items):
            pairs.setdefault((source, target), []).append(i)
        out = [""] * len(items)
        for (source, target), indices in pairs.items():
            results = await self.worker.run(self.translate_texts_sync, [items[i][0] for i in indices], source, target)
            for i, text in zip(indices, results, strict=True):
                out[i] = text
        return out

    async def translate(self, text: str, source: str, target: str, context: object = ()) -> str:
        """``context`` is ignored: these sentence-level models translate each line alone."""
        return await self.worker.run(self.translate_sync, text, source, target)
