"""``babelfish models list | fetch``: the models of :mod:`babelfish.engines.catalog`, fetched and verified.

Embedded defaults ship inside registry packages and work offline. Upgrades come from the internet (the
Hugging Face hub, the Argos Translate index) and land in ``settings.models_dir``:

- ``whisper-<size>``: faster-whisper's CTranslate2 conversions (``Systran/faster-whisper-small`` ...)
  into ``models_dir/whisper-<size>``; select with ``recognizer.model = "<size>"``.
- ``opus-mt-<src>-<tgt>``: an OPUS-MT model pre-converted to CTranslate2 when the hub has one, else
  ``Helsinki-NLP/opus-mt-<src>-<tgt>`` converted here (needs ``transformers`` and ``torch``), into
  ``models_dir/opus-mt-<src>-<tgt>``; select with ``translator.engine = "ctranslate2"``.
- ``argos-<src>-<tgt>``: an Argos Translate package from the Argos index, unzipped into
  ``models_dir/argos-<src>-<tgt>``; same setting.
- ``piper-<voice>``: a Piper voice from ``rhasspy/piper-voices`` into ``models_dir/piper/``; select with
  ``synthesizer.voices = {de = "piper:<voice>"}``.

Downloads go to a temporary directory beside the target and are renamed into place once complete and
verified, so an interrupted fetch never leaves a half model where the engines look. The base URLs can be
overridden with ``BABELFISH_HF_ENDPOINT`` (or ``HF_ENDPOINT``) and ``BABELFISH_ARGOS_INDEX``, e.g. for a
mirror; ``HF_TOKEN`` is sent to the hub when set.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from babelfish.config.settings import Settings
from babelfish.engines.catalog import (
    OPUS_MT_CT2_REPO,
    OPUS_MT_FILES,
    OPUS_MT_REPO,
    PATTERNS,
    UPGRADES,
    WHISPER_FILES,
    WHISPER_OPTIONAL,
    WHISPER_REPOS,
    FetchError,
    Model,
    all_models,
    argos_index_url,
    hf_url,
    piper_url,
    resolve,
)
from babelfish.engines.downloader import Downloader, Progress

CT2_VOCABULARIES = ("shared_vocabulary.json", "shared_vocabulary.txt", "source_vocabulary.json",
                    "target_vocabulary.json", "source_vocabulary.txt", "target_vocabulary.txt")


# ---------------------------------------------------------------------------------------------- downloads


@contextlib.contextmanager
def staging(models_dir: Path, name: str) -> Iterator[Path]:
    """A temporary directory beside the final location; removed unless its content was moved away."""
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=models_dir))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def install_dir(src: Path, final: Path) -> None:
    """Move a complete directory into place, replacing an older one (rename, then delete the old)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(src, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------- fetchers


def fetch(model: Model, models_dir: Path, downloader: Downloader) -> Path:
    """Download, verify and install ``model``; return where it went."""
    models_dir = Path(models_dir)
    if model.fetcher == "whisper":
        return _fetch_whisper(model, models_dir, downloader)
    if model.fetcher == "opus-mt":
        return _fetch_opus_mt(model, models_dir, downloader)
    if model.fetcher == "argos":
        return _fetch_argos(model, models_dir, downloader)
    if model.fetcher == "piper":
        return _fetch_piper(model, models_dir, downloader)
    if model.fetcher == "mbrola":
        raise FetchError("MBROLA voices come from Debian's contrib and non-free components under a non-commercial "
                         "licence: install them with `make voices-nonfree` (it says what it does first)")
    raise FetchError(f"{model.name} ships with the package: nothing to fetch")


def _fetch_whisper(model: Model, models_dir: Path, dl: Downloader) -> Path:
    repo = WHISPER_REPOS[model.ref][0]
    final = models_dir / f"whisper-{model.ref}"
    with staging(models_dir, final.name) as tmp:
        for name in WHISPER_FILES:
            dl.file(hf_url(repo, name), tmp / name)
        for name in WHISPER_OPTIONAL:
            dl.file(hf_url(repo, name), tmp / name, optional=True)
        verify_whisper(tmp)
        install_dir(tmp, final)
    return final


def verify_whisper(path: Path) -> None:
    try:
        json.loads((path / "config.json").read_text(encoding="utf-8"))
        json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FetchError(f"downloaded Whisper model is damaged: {exc}") from None
    if not (path / "model.bin").is_file() or (path / "model.bin").stat().st_size == 0:
        raise FetchError("downloaded Whisper model has no model.bin")
    if not any((path / n).is_file() for n in ("vocabulary.txt", "vocabulary.json")):
        raise FetchError("downloaded Whisper model has no vocabulary file")


def _fetch_opus_mt(model: Model, models_dir: Path, dl: Downloader) -> Path:
    src, tgt = model.ref.split("-")
    final = models_dir / f"opus-mt-{src}-{tgt}"
    repo = OPUS_MT_CT2_REPO.format(src=src, tgt=tgt)
    with staging(models_dir, final.name) as tmp:
        if dl.file(hf_url(repo, "config.json"), tmp / "config.json", optional=True):
            for name in OPUS_MT_FILES:
                dl.file(hf_url(repo, name), tmp / name)
            for name in CT2_VOCABULARIES:
                dl.file(hf_url(repo, name), tmp / name, optional=True)
            ready = tmp
        else:
            ready = _convert_opus_mt(src, tgt, tmp)
        verify_translation_model(ready, expect="opus-mt")
        install_dir(ready, final)
    return final


def _convert_opus_mt(src: str, tgt: str, tmp: Path) -> Path:
    repo = OPUS_MT_REPO.format(src=src, tgt=tgt)
    missing = [m for m in ("transformers", "torch", "sentencepiece") if importlib.util.find_spec(m) is None]
    if missing:
        raise FetchError(f"no CTranslate2 conversion of opus-mt-{src}-{tgt} on the hub; to convert {repo} "
                         "here, run `pip install transformers torch sentencepiece` and fetch again")
    from ctranslate2.converters import TransformersConverter

    out = tmp / "ct2"
    print(f"converting {repo} to CTranslate2 (int8) ...", file=sys.stderr)
    try:
        TransformersConverter(repo, copy_files=["source.spm", "target.spm"]).convert(
            str(out), quantization="int8", force=True)
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FetchError(f"cannot download or convert {repo}: {first}") from None
    return out


def verify_translation_model(path: Path, expect: str) -> None:
    """Open the model as the translator will: layout, SentencePiece models and CTranslate2 weights."""
    from babelfish.core.worker import EngineError
    from babelfish.engines.ctranslate2_mt import detect_layout, read_vocabulary

    try:
        layout = detect_layout(path)
        if layout.kind != expect:
            raise EngineError(f"expected a {expect} model, found a {layout.kind} layout")
        source_vocab, target_vocab = read_vocabulary(layout.model_dir)
        if not source_vocab or not target_vocab:
            raise EngineError("the CTranslate2 model has no vocabulary file")
        import ctranslate2
        import sentencepiece

        for spm in {layout.source_spm, layout.target_spm}:
            sentencepiece.SentencePieceProcessor(model_file=str(spm))
        translator = ctranslate2.Translator(str(layout.model_dir), device="cpu", compute_type="int8")
        del translator
    except (EngineError, RuntimeError, OSError, ValueError) as exc:
        raise FetchError(f"downloaded translation model does not load: {exc}") from None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", str(text))) or (0,)


def argos_package(index: Any, src: str, tgt: str) -> tuple[str, dict[str, Any]]:
    """The download link and entry of the newest ``src``->``tgt`` package in an Argos index."""
    if not isinstance(index, list):
        raise FetchError("the Argos package index is not a JSON list")
    entries = [e for e in index if isinstance(e, dict) and e.get("from_code") == src
               and e.get("to_code") == tgt and e.get("type", "translate") == "translate"]
    entries.sort(key=lambda e: _version(e.get("package_version", "0")), reverse=True)
    for entry in entries:
        links = [link for link in entry.get("links", []) if str(link).startswith(("http://", "https://"))]
        if links:
            return links[0], entry
    raise FetchError(f"the Argos index has no package for {src}->{tgt}")


def safe_extract(archive: zipfile.ZipFile, dest: Path) -> None:
    root = dest.resolve()
    for member in archive.infolist():
        target = (dest / member.filename).resolve()
        if target != root and root not in target.parents:
            raise FetchError(f"unsafe path in archive: {member.filename}")
    archive.extractall(dest)


def _fetch_argos(model: Model, models_dir: Path, dl: Downloader) -> Path:
    src, tgt = model.ref.split("-")
    final = models_dir / f"argos-{src}-{tgt}"
    link, entry = argos_package(dl.get_json(argos_index_url()), src, tgt)
    with staging(models_dir, final.name) as tmp:
        archive_path = tmp / "package.argosmodel"
        dl.file(link, archive_path)
        if not zipfile.is_zipfile(archive_path):
            raise FetchError(f"{link} is not a zip archive (.argosmodel)")
        unpacked = tmp / "unpacked"
        try:
            with zipfile.ZipFile(archive_path) as archive:
                bad = archive.testzip()
                if bad is not None:
                    raise FetchError(f"{link}: corrupt member {bad} in the archive")
                safe_extract(archive, unpacked)
        except zipfile.BadZipFile as exc:
            raise FetchError(f"{link}: bad zip archive ({exc})") from None
        archive_path.unlink()
        children = [p for p in unpacked.iterdir() if not p.name.startswith("__MACOSX")]
        root = children[0] if len(children) == 1 and children[0].is_dir() else unpacked
        if "package_version" in entry and not (root / "metadata.json").exists():
            (root / "metadata.json").write_text(json.dumps(entry, indent=2))
        verify_translation_model(root, expect="argos")
        install_dir(root, final)
    return final


def _fetch_piper(model: Model, models_dir: Path, dl: Downloader) -> Path:
    voice = model.ref
    piper_dir = models_dir / "piper"
    piper_dir.mkdir(parents=True, exist_ok=True)
    final = piper_dir / f"{voice}.onnx"
    with staging(piper_dir, voice) as tmp:
        onnx, config = tmp / f"{voice}.onnx", tmp / f"{voice}.onnx.json"
        dl.file(piper_url(voice, ".onnx.json"), config)
        dl.file(piper_url(voice, ".onnx"), onnx)
        verify_piper(onnx, config)
        # The config first: a voice counts as installed once its .onnx is there.
        os.replace(config, final.with_suffix(".onnx.json"))
        os.replace(onnx, final)
    return final


def verify_piper(onnx: Path, config: Path) -> None:
    try:
        meta = json.loads(config.read_text(encoding="utf-8"))
        int(meta["audio"]["sample_rate"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FetchError(f"downloaded Piper voice config is not valid: {exc!r}") from None
    try:
        import onnxruntime

        onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    except ImportError:  # pragma: no cover - onnxruntime is a dependency
        if onnx.stat().st_size == 0:
            raise FetchError("downloaded Piper voice is empty") from None
    except Exception as exc:  # onnxruntime raises its own exception types
        raise FetchError(f"downloaded Piper voice does not load: {str(exc).splitlines()[0]}") from None


# ------------------------------------------------------------------------------------------------ CLI


def _row(model: Model, models_dir: Path) -> dict[str, Any]:
    path = model.path(models_dir)
    row = asdict(model)
    row.pop("packages")
    row.update(embedded=model.embedded, installed=model.installed(models_dir),
               path=str(path) if path is not None else None)
    return row


def cli_list(settings: Settings, as_json: bool = False) -> int:
    """``babelfish models list``: every known model, whether it is installed and where."""
    models_dir = Path(settings.models_dir)
    rows = [_row(m, models_dir) for m in all_models(models_dir)]
    if as_json:
        print(json.dumps({"models_dir": str(models_dir), "models": rows, "patterns": PATTERNS}, indent=2))
        return 0
    headers = ("NAME", "KIND", "SIZE", "INSTALLED", "PATH")
    table = [(r["name"], r["kind"], r["size"],
              ("yes" if r["installed"] else "no") + (" (package)" if r["embedded"] else ""),
              r["path"] or "-") for r in rows]
    widths = [max(len(str(row[i])) for row in [headers, *table]) for i in range(len(headers) - 1)]
    for row in [headers, *table]:
        cells = [str(cell).ljust(w) for cell, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, str(row[-1])]))
    print(f"\nmodels_dir: {models_dir}")
    print("Fetch an upgrade with `babelfish models fetch NAME` (needs internet). Also fetchable:")
    for pattern, text in PATTERNS.items():
        print(f"  {pattern:<22} {text}")
    return 0


def cli_fetch(settings: Settings, name: str | None, *, progress: Progress | None = None) -> int:
    """``babelfish models fetch NAME``: download, verify, install; one-line errors and exit code 1."""
    if not name:
        print("usage: babelfish models fetch NAME  (see `babelfish models list`); e.g. "
              + ", ".join(m.name for m in UPGRADES[:3]), file=sys.stderr)
        return 2
    model = resolve(name)
    if model is None:
        print(f"error: unknown model {name!r}; see `babelfish models list` for names and patterns",
              file=sys.stderr)
        return 2
    models_dir = Path(settings.models_dir)
    if model.embedded:
        print(f"{model.name} ships with babelfish ({model.source}); nothing to fetch")
        return 0
    path = model.path(models_dir)
    if model.installed(models_dir):
        print(f"{model.name} is already installed at {path}")
        print(f"use it: {model.setting}")
        return 0
    print(f"fetching {model.name} ({model.size}) from {model.source} ...", file=sys.stderr)
    downloader = Downloader(progress)
    try:
        path = fetch(model, models_dir, downloader)
    except FetchError as exc:
        print(f"error: {model.name}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {model.name}: cannot write to {models_dir}: {exc}", file=sys.stderr)
        return 1
    finally:
        downloader.close()
    print(f"installed {model.name} at {path}")
    print(f"use it: {model.setting}")
    return 0
