"""Formant speech synthesis with espeak-ng (100+ languages), for languages without a neural voice."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import soundfile as sf

from babelfish.core.worker import EngineError, Worker


class EspeakSynthesizer:
    name = "espeak"

    def __init__(self, voice: str, *, speed: int = 165) -> None:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise EngineError("espeak-ng is not installed (apt-get install espeak-ng; make demo does this)")
        self.binary: str = binary
        self.voice = voice
        self.speed = speed
        self.worker = Worker(f"espeak-{voice}")

    def synthesize_sync(self, text: str) -> tuple[np.ndarray, int]:
        # The CLI rather than libespeak-ng: one process per sentence costs ~20 ms and keeps espeak's global
        # state out of our process.
        proc = subprocess.run([self.binary, "-v", self.voice, "-s", str(self.speed), "--stdout", text],
                              capture_output=True, timeout=30, check=False)
        if proc.returncode != 0 or not proc.stdout:
            raise EngineError(f"espeak-ng failed: {proc.stderr.decode(errors='replace').strip()}")
        samples, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
        return np.asarray(samples, dtype=np.float32), int(rate)

    async def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        return await self.worker.run(self.synthesize_sync, text)
