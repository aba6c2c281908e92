"""Smart Turn (engines/smart_turn.py) on real speech, and the segmenter's smart-turn end of turn with a
test double of the model (pipeline/segment.py)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from babelfish.config.pipeline import SegmenterSettings
from babelfish.core import audio
from babelfish.core.worker import EngineError
from babelfish.engines import smart_turn
from babelfish.pipeline.segment import Segmenter, SileroDetector, Speech

from .conftest import asterisk

PROMPTS = ["agent-alreadyon", "conf-getconfno", "auth-incorrect", "conf-onlyperson", "vm-intro", "agent-loginok"]


def test_features_are_whispers_log_mel_as_the_model_was_trained_on() -> None:
    """Against the reference implementation shipped beside the model in the pipecat-ai wheel (loaded from
    its file: the package's own __init__ needs Pipecat's dependencies)."""
    reference = smart_turn.model_path().parents[1] / "_whisper_features.py"
    spec = importlib.util.spec_from_file_location("whisper_features", reference)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    samples, rate = audio.read_wav(asterisk("agent-alreadyon"))
    x = audio.resample(samples, rate, smart_turn.MODEL_RATE)
    expected = module.compute_whisper_log_mel_features(np.pad(x, (8 * 16000 - x.size, 0)), do_normalize=True)
    ours = smart_turn.features(x)
    assert ours.shape == expected.shape == (80, 800)
    assert np.abs(ours - expected).max() < 1e-4


def test_a_whole_prompt_sounds_complete_and_one_cut_at_sixty_percent_mostly_does_not() -> None:
    model = smart_turn.SmartTurn()
    whole, cut = [], []
    for name in PROMPTS:
        samples, rate = audio.read_wav(asterisk(name))
        whole.append(model.complete(samples, rate))
        cut.append(model.complete(samples[: int(0.6 * samples.size)], rate))
    assert sum(p >= 0.5 for p in whole) >= 5, whole
    assert sum(p < 0.5 for p in cut) >= 3, cut
    assert np.mean(whole) > np.mean(cut) + 0.3, (whole, cut)


def test_without_the_model_the_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EngineError, match="segmenter.end_of_turn"):
        smart_turn.model_path()


class Says:
    """Test double of the turn model: the same answer every time, and the audio it was asked about."""

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.asked: list[float] = []

    def complete(self, samples: np.ndarray, rate: int) -> float:
        self.asked.append(samples.size / rate)
        return self.probability


def turn_with_a_pause(pause_s: float, rate: int = 8000) -> np.ndarray:
    first, _ = audio.read_wav(asterisk("conf-getconfno"), rate)
    second, _ = audio.read_wav(asterisk("auth-incorrect"), rate)
    silence = np.zeros(int(pause_s * rate), dtype=np.float32)
    return np.concatenate([first, silence, second, np.zeros(2 * rate, dtype=np.float32)])


def speeches(samples: np.ndarray, settings: SegmenterSettings, model: Says | None, rate: int = 8000) -> list:
    segmenter = Segmenter(SileroDetector(rate), rate, settings, turn_model=model)
    step = audio.frame_bytes(rate) // 2
    out = []
    for i in range(0, samples.size - step + 1, step):
        out += [e for e in segmenter.push(samples[i : i + step], (i + step) / rate) if isinstance(e, Speech)]
    return out


def test_smart_turn_ends_a_complete_turn_early_and_keeps_an_incomplete_one_through_a_long_pause() -> None:
    samples = turn_with_a_pause(0.7)
    settings = SegmenterSettings(end_of_turn="smart-turn", speculate_ms=0)
    silence_rule = speeches(samples, SegmenterSettings(speculate_ms=0), None)
    assert len(silence_rule) == 2  # the 700 ms pause is longer than end_of_turn_ms (500)
    assert all(0.45 <= s.detected_at - s.ended_at <= 0.6 for s in silence_rule)

    complete = Says(0.99)
    early = speeches(samples, settings, complete)
    assert len(early) == 2 and len(complete.asked) == 2  # asked once per pause
    assert all(s.detected_at - s.ended_at <= 0.3 for s in early)  # at smart_turn_after_ms, not 500 ms

    incomplete = Says(0.1)
    kept = speeches(samples, settings, incomplete)
    assert len(kept) == 1  # one turn through the pause
    assert 0.95 <= kept[0].detected_at - kept[0].ended_at <= 1.1  # smart_turn_incomplete_ms at the end


def test_the_model_is_not_asked_under_the_silence_rule() -> None:
    model = Says(0.99)
    assert len(speeches(turn_with_a_pause(0.7), SegmenterSettings(speculate_ms=0), model)) == 2
    assert model.asked == []
