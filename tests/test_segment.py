"""The segmenter on real speech (pipeline/segment.py), and sentences for synthesis (pipeline/synthesize.py)."""

from __future__ import annotations

import numpy as np
import pytest

from babelfish.config.pipeline import SegmenterSettings
from babelfish.core import audio
from babelfish.pipeline.segment import Pause, Segmenter, SileroDetector, Speech, SpeechStarted
from babelfish.pipeline.synthesize import sentences

from .conftest import asterisk


def test_sentences() -> None:
    assert sentences("Hallo. Wie geht's? Gut!  ") == ["Hallo.", "Wie geht's?", "Gut!"]
    assert sentences("") == []


def _run_segmenter(samples: np.ndarray, rate: int, **settings: float) -> list:
    seg = Segmenter(SileroDetector(rate), rate, SegmenterSettings(**settings))
    events = []
    step = audio.frame_bytes(rate) // 2
    for i in range(0, samples.size, step):
        events.extend(seg.push(samples[i : i + step], (i + step) / rate))
    return events


@pytest.mark.parametrize("rate", [8000, 16000])
def test_segmenter_finds_each_utterance_in_real_speech(rate: int) -> None:
    names = ["agent-alreadyon", "auth-incorrect", "conf-getconfno"]
    clips = [audio.read_wav(asterisk(n), rate)[0] for n in names]
    gap = np.zeros(int(1.5 * rate), dtype=np.float32)
    stream = np.concatenate([gap] + [x for c in clips for x in (c, gap)])
    events = _run_segmenter(stream, rate)
    speeches = [e for e in events if isinstance(e, Speech)]
    assert len(speeches) == 3 and sum(isinstance(e, SpeechStarted) for e in events) == 3
    for speech, clip in zip(speeches, clips, strict=True):
        assert abs(speech.duration - clip.size / rate) < 1.0
        # the end of turn is decided about end_of_turn_ms after the last voiced window
        assert 0.45 <= speech.detected_at - speech.ended_at <= 0.6
    # each end of turn was preceded by a pause whose audio is exactly the utterance: work started on it
    # early (speculation) can be kept
    for speech in speeches:
        pause = [e for e in events if isinstance(e, Pause) and e.ended_at == speech.ended_at]
        assert len(pause) == 1 and np.array_equal(pause[0].audio, speech.audio)


def test_segmenter_keeps_short_pauses_inside_a_turn_and_cuts_long_turns() -> None:
    rate = 16000
    clip, _ = audio.read_wav(asterisk("agent-alreadyon"), rate)
    pause = np.zeros(int(0.3 * rate), dtype=np.float32)
    gap = np.zeros(rate, dtype=np.float32)
    stream = np.concatenate([gap, clip, pause, clip, gap])
    whole = [e for e in _run_segmenter(stream, rate, end_of_turn_ms=600, max_utterance_s=20) if isinstance(e, Speech)]
    assert len(whole) == 1 and not whole[0].cut
    cut = [e for e in _run_segmenter(stream, rate, max_utterance_s=4.0) if isinstance(e, Speech)]
    assert len(cut) >= 3 and cut[0].cut and cut[0].duration <= 4.05
    silence = [e for e in _run_segmenter(np.zeros(3 * rate, dtype=np.float32), rate)]
    assert silence == []
