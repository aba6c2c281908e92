"""Is the speaker's turn complete? Pipecat's Smart Turn v3.2, an 8 MB ONNX classifier (BSD-2) that hears the
last 8 s of a turn and says how likely it is that the speaker has finished, intonation and words alike.

The model file ships inside the ``pipecat-ai`` wheel, which the project installs without its dependencies
(``scripts/smart-turn-requirements.txt``): Pipecat's own analyzer would pull in its framework (loguru,
openai, numba, ...) for what is here one ONNX session and Whisper's log-mel features, which faster-whisper
already computes. The wheel is found without being imported (its package ``__init__`` needs loguru).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from babelfish.core import audio
from babelfish.core.worker import EngineError

MODEL_RATE = 16000
WINDOW_S = 8  # the model hears the last 8 s (zero-padded in front when shorter)
MODEL_FILE = ("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")


def model_path() -> Path:
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError("segmenter.end_of_turn = 'smart-turn' needs Pipecat's Smart Turn model: make setup "
                          "installs it (pip install --no-deps -r scripts/smart-turn-requirements.txt)")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MODEL_FILE)
    if not path.is_file():
        raise EngineError(f"the Smart Turn model is missing from the pipecat-ai package: {path}")
    return path


def features(samples: np.ndarray) -> np.ndarray:
    """Whisper's log-mel features (80 x 800) of the last 8 s of 16 kHz audio, normalized to zero mean and
    unit variance first, as the model was trained (``WhisperFeatureExtractor(do_normalize=True)``)."""
    from faster_whisper.feature_extractor import FeatureExtractor

    n = MODEL_RATE * WINDOW_S
    x = np.asarray(samples, dtype=np.float32)[-n:]
    x = np.pad(x, (n - x.size, 0))
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    return FeatureExtractor(feature_size=80, chunk_length=WINDOW_S)(x, padding=0)[:, : n // 160]


class SmartTurn:
    """One ONNX session shared by every leg (it holds no state between calls)."""

    _session: object | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        with SmartTurn._lock:
            if SmartTurn._session is None:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                SmartTurn._session = ort.InferenceSession(str(model_path()), sess_options=options,
                                                          providers=["CPUExecutionProvider"])
        self.session = SmartTurn._session

    def complete(self, samples: np.ndarray, rate: int) -> float:
        """The probability that the turn in ``samples`` (float32 at ``rate``) is complete."""
        if rate != MODEL_RATE:
            samples = audio.resample(samples, rate, MODEL_RATE)
        out = self.session.run(None, {"input_features": features(samples)[None]})  # type: ignore[attr-defined]
        return float(np.asarray(out[0]).ravel()[0])
