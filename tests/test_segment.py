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


def _clauses(samples: np.ndarray, rate: int, clause_pause_ms: int, max_clause_s: float) -> list:
    seg = Segmenter(SileroDetector(rate), rate, SegmenterSettings(), clause_pause_ms=clause_pause_ms,
                    max_clause_s=max_clause_s)
    events = []
    step = audio.frame_bytes(rate) // 2
    for i in range(0, samples.size, step):
        events.extend(seg.push(samples[i : i + step], (i + step) / rate))
    return events


def test_simultaneous_a_pause_inside_a_turn_hands_on_the_clause_and_the_turn_goes_on() -> None:
    rate = 8000
    names = ["conf-getconfno", "agent-pass", "auth-incorrect"]  # 11.3 s: below max_utterance_s
    clips = [audio.read_wav(asterisk(n), rate)[0] for n in names]
    gap = np.zeros(int(0.3 * rate), dtype=np.float32)  # shorter than the end of turn (500 ms)
    turn = np.concatenate([clips[0], gap, clips[1], gap, clips[2], np.zeros(rate, dtype=np.float32)])
    consecutive = [e for e in _run_segmenter(turn, rate) if isinstance(e, Speech)]
    assert len(consecutive) == 1 and not consecutive[0].clause  # one turn, heard once it ends
    events = _clauses(turn, rate, clause_pause_ms=200, max_clause_s=30)
    clauses = [e for e in events if isinstance(e, Speech)]
    assert sum(isinstance(e, SpeechStarted) for e in events) == 1  # still one turn
    assert len(clauses) == 3 and all(c.clause and not c.cut for c in clauses)
    for clause, clip in zip(clauses, clips, strict=True):
        assert abs(clause.duration - clip.size / rate) < 0.6
        assert clause.detected_at - clause.ended_at < 0.3  # handed on after the 200 ms pause, not 500
    assert all(a.ended_at < b.started_at for a, b in zip(clauses, clauses[1:], strict=False))


def test_simultaneous_a_clause_without_a_pause_is_cut_at_its_quietest_moment() -> None:
    rate = 8000
    clip = audio.read_wav(asterisk("agent-alreadyon"), rate)[0]  # 5.5 s, two sentences
    clauses = [e for e in _clauses(np.concatenate([clip, np.zeros(rate, dtype=np.float32)]), rate,
                                   clause_pause_ms=1500, max_clause_s=3.0) if isinstance(e, Speech)]
    assert len(clauses) >= 2 and clauses[0].cut and clauses[0].clause
    assert 1.5 <= clauses[0].duration <= 3.0
    total = sum(c.duration for c in clauses)
    assert abs(total - clip.size / rate) < 0.5  # nothing lost at the cut
