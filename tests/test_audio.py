"""PCM framing and resampling (core/audio.py)."""

from __future__ import annotations

import numpy as np

from babelfish.core import audio


def test_frame_sizes_match_vonage() -> None:
    assert [audio.frame_bytes(r) for r in (8000, 16000, 24000)] == [320, 640, 960]


def test_frames_pad_the_last_frame_with_silence() -> None:
    pcm = b"\x01\x00" * 500  # 1000 bytes at 16 kHz = 1.56 frames
    out = audio.frames(pcm, 16000)
    assert [len(f) for f in out] == [640, 640]
    assert out[1][360:] == b"\x00" * 280
    assert audio.frames(pcm, 16000, pad=False) == [pcm[:640]]


def test_reframer_never_splits_a_sample_and_loses_no_byte() -> None:
    r = audio.Reframer(8000)
    data = bytes(range(256)) * 10
    out: list[bytes] = []
    for i in range(0, len(data), 7):
        out.extend(r.push(data[i : i + 7]))
    assert all(len(f) == 320 for f in out)
    assert b"".join(out) + data[len(out) * 320 :] == data
    assert r.pending == len(data) - len(out) * 320


def test_pcm_round_trip_and_resampling_keep_a_tone() -> None:
    t = np.arange(8000) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    back = audio.pcm_to_float(audio.float_to_pcm(tone))
    assert np.max(np.abs(back - tone)) < 1e-4
    up = audio.resample(tone, 8000, 16000)
    assert up.size == 16000
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * 16000 / up.size - 440) < 2
