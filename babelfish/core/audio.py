"""PCM helpers: 16-bit little-endian mono <-> float32, resampling, 20 ms framing, WAV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

FRAME_MS = 20
SUPPORTED_RATES = (8000, 16000, 24000)  # the socket rates Vonage offers (wire check, settings, VAD)
VAD_RATES = (8000, 16000)  # what Silero runs at


def listen_rate(rate: int) -> int:
    """The rate a leg's own speech is segmented and recognized at: its socket's rate where Silero runs at
    it, else 16 kHz (a 24 kHz socket is resampled on the way in)."""
    if rate not in SUPPORTED_RATES:
        raise ValueError(f"unsupported sample rate {rate}: one of {', '.join(map(str, SUPPORTED_RATES))}")
    return rate if rate in VAD_RATES else 16000


def frame_bytes(rate: int) -> int:
    """Bytes in one 20 ms frame of 16-bit mono PCM: 320 at 8 kHz, 640 at 16 kHz, 960 at 24 kHz."""
    return rate * FRAME_MS // 1000 * 2


def pcm_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm(samples: np.ndarray) -> bytes:
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling (libsoxr); a no-op when the rates match."""
    samples = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate or samples.size == 0:
        return samples
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32)


class StreamResampler:
    """Resamples a live stream of 20 ms PCM frames chunk by chunk without clicks at the frame edges, and
    gives back whole frames at the new rate (a frame may come out one call late)."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality="HQ")
        self._pending = b""
        self._size = frame_bytes(to_rate)

    def push(self, pcm: bytes) -> bytes:
        out = self._stream.resample_chunk(np.frombuffer(pcm, dtype="<i2"))
        self._pending += np.asarray(out, dtype="<i2").tobytes()
        if len(self._pending) < self._size:
            return b""
        frame, self._pending = self._pending[: self._size], self._pending[self._size :]
        return frame


def frames(pcm: bytes, rate: int, pad: bool = True) -> list[bytes]:
    """Cut PCM into exact 20 ms frames; the last partial frame is padded with silence (or dropped)."""
    size = frame_bytes(rate)
    out = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    if out and len(out[-1]) < size:
        if pad:
            out[-1] = out[-1] + b"\x00" * (size - len(out[-1]))
        else:
            out.pop()
    return out


class Reframer:
    """Turns a stream of arbitrary-sized PCM chunks into whole 20 ms frames.

    Vonage always sends whole frames, but a browser leg or a proxy may not: we re-frame rather than reject.
    A dangling odd byte is kept until its partner arrives, so samples are never split.
    """

    def __init__(self, rate: int) -> None:
        self.size = frame_bytes(rate)
        self._pending = bytearray()

    def push(self, chunk: bytes) -> list[bytes]:
        self._pending.extend(chunk)
        whole = len(self._pending) // self.size * self.size
        if not whole:
            return []
        data = bytes(self._pending[:whole])
        del self._pending[:whole]
        return [data[i : i + self.size] for i in range(0, whole, self.size)]

    @property
    def pending(self) -> int:
        return len(self._pending)


def read_wav(path: str | Path, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read any file libsndfile knows (WAV, FLAC, Ogg) as mono float32, resampled to ``rate`` if given."""
    data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate is not None and rate != file_rate:
        return resample(mono, file_rate, rate), rate
    return mono, file_rate


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16")


def rms_dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * np.log10(max(rms, 1e-6))
