"""Long turns and SimulEval's measures for ``bench latency`` (devtools/bench/long_turns.py)."""

import numpy as np
import pytest

from babelfish.core import audio
from babelfish.devtools import corpus
from babelfish.devtools.bench import long_turns
from babelfish.devtools.playout import Played


def test_laal_of_an_ideal_interpreter_is_its_lag_and_tau_stops_at_the_end_of_the_source() -> None:
    # 10 words heard evenly over a 10 s source, each 2 s after its source word: LAAL is the lag
    assert long_turns.laal([2.0 + i for i in range(10)], 10.0, 10) == pytest.approx(2.0)
    # words heard only after the source ended: tau = 1, LAAL = the first delay
    assert long_turns.laal([12.0, 12.5, 13.0], 10.0, 3) == pytest.approx(12.0)
    # a longer reference slows the ideal rate: the lag grows by the words' share of it
    assert long_turns.laal([0.0, 1.0], 10.0, 20) == pytest.approx((0.0 + 0.5) / 2)
    assert long_turns.laal([], 10.0, 3) is None


def test_offsets_are_read_off_the_translated_frames_heard() -> None:
    frames = [3.0 + 0.02 * i for i in range(500)]  # 10 s of translated speech from t = 3 s
    m = long_turns.offsets(frames, 0.02, words=20, start=1.0, end=11.0, reference_words=20)
    assert m["start_offset_s"] == pytest.approx(2.0)
    assert m["end_offset_s"] == pytest.approx(2.0)
    assert m["laal_s"] == pytest.approx(2.0, abs=0.05)
    assert long_turns.offsets([], 0.02, 5, 0.0, 1.0, 5)["laal_s"] is None


def test_voiced_frames_only_count_speech() -> None:
    loud = audio.float_to_pcm(0.3 * np.sin(np.arange(160) / 3).astype(np.float32))
    silent = bytes(320)
    played = [Played(1.0, silent), Played(1.02, loud), Played(1.04, silent), Played(0.5, loud)]
    assert long_turns.voiced_times(played, since=0.9) == [1.02]


def test_long_turns_join_real_prompts_into_eight_to_thirty_seconds() -> None:
    clips = [c for c in corpus.asterisk_prompts(5) if len(c.text.split()) <= 30]
    turns = long_turns.long_turns(clips, 3)
    assert len(turns) == 3
    for turn in turns:
        assert 8.0 <= turn.samples.size / long_turns.RATE <= 40.0 and turn.prompts >= 2
        assert 0 <= turn.speech_start < 1.0 and turn.speech_end > turn.speech_start + 7.0
    assert long_turns.long_turns(clips, 3)[0].text == turns[0].text  # seeded


def _heard(start_offset: float, words: str, failure: str | None = None):
    from babelfish.devtools.bench.latency import LongHeard

    turn = long_turns.LongTurn(np.zeros(8000 * 10, dtype=np.float32), "the source", 2, 0.5, 9.5)
    frames = [100.0 + start_offset + 0.02 * i for i in range(300)]
    record = {"source_text": "the source", "translations": {"de-DE": words}, "failure": failure,
              "latencies": {"recognize": 0.4, "translate": 1.0}}
    return LongHeard(turn, frames, 0.02, start=100.0, end=109.0, records=[record])


def test_the_latency_bench_reports_both_modes_side_by_side_with_the_issue_s_keys() -> None:
    from babelfish.devtools.bench.latency import long_summary, mode_table, side_by_side

    reference = "das ist die Quelle der Sache"
    simultaneous = {"n": 2, "missed": 0, "p50_s": 0.7, "p90_s": 0.9, "stages": {}, "mode": "simultaneous",
                    "long_turns": long_summary([_heard(2.0, "das ist die Quelle"),
                                                _heard(2.5, "nicht gehört", failure="playback_dropped")],
                                               [reference, reference])}
    consecutive = {"n": 2, "missed": 0, "p50_s": 1.0, "p90_s": 1.5, "stages": {}, "mode": "consecutive",
                   "long_turns": long_summary([_heard(9.5, "das ist die Quelle der Sache")] * 2,
                                              [reference, reference])}
    side_by_side(simultaneous, consecutive)
    assert simultaneous["consecutive"]["p50_s"] == 1.0 and simultaneous["ratio_p50"] == 0.7
    long = simultaneous["long_turns"]
    assert long["n"] == 2 and long["missed"] == 1 and long["not_heard"] == 1  # a dropped clause was not heard
    for key in ("start_offset_s", "end_offset_s", "laal_s"):
        assert set(long[key]) == {"p50", "p90"}
    assert long["start_offset_s"]["p50"] == 2.0
    assert long["chrf_consecutive"] > long["chrf"]  # the consecutive translation was the whole reference
    assert "consecutive" in mode_table(simultaneous) and "StartOffset" in mode_table(simultaneous)


def test_the_latency_bench_shows_both_directions_and_the_first_clause_step_by_step() -> None:
    from babelfish.devtools.bench.latency import breakdown_table, compare_table, compared

    def run(p50: float, first_token: float) -> dict:
        stages = {"recognize": 0.5, "translate_prompt_tokens": 12.0, "translate_first_token": first_token,
                  "translate_first_clause": first_token + 0.4}
        return {"n": 3, "missed": 0, "p50_s": p50, "p90_s": p50 * 1.2, "stages": stages,
                "config": {"translator": "qwen2.5-1.5b (2 threads)"}, "utterances": []}

    result = run(2.0, 0.6)
    result["de_en"] = run(2.2, 0.7)
    variant = run(1.0, 0.1)
    variant["de_en"] = run(1.1, 0.2)
    entry = compared(result, variant, "translator.model=gemma-270m")
    entry["de_en"] = compared(result["de_en"], variant["de_en"], "translator.model=gemma-270m")
    result["compare"] = [entry]
    table = compare_table(result)
    assert "de->en base: qwen2.5-1.5b" in table and "de->en translator.model=gemma-270m" in table
    assert entry["de_en"]["ratio_p50"] == 0.5  # each direction against its own base
    steps = breakdown_table(result)
    assert "prompt tokens evaluated" in steps and "12.000" in steps and steps.count("de->en") == 2


def test_the_latency_bench_shows_the_two_callers_in_turn_beside_each_direction() -> None:
    from babelfish.devtools.bench.latency import breakdown_table, compare_table, compared

    def run(p50: float) -> dict:
        return {"n": 4, "missed": 0, "p50_s": p50, "p90_s": p50 * 1.5, "stages": {"translate_prompt_tokens": 40.0},
                "config": {"translator": "qwen2.5-1.5b (2 threads)"}, "utterances": []}

    result = {**run(2.0), "de_en": run(1.0), "alternating": run(1.6)}
    variant = {**run(2.1), "de_en": run(1.1), "alternating": run(2.4)}
    entry = compared(result, variant, "translator.prepare_context=false")
    for key in ("de_en", "alternating"):
        entry[key] = compared(result[key], variant[key], "translator.prepare_context=false")
    result["compare"] = [entry]
    table = compare_table(result)
    assert "in turn base: qwen2.5-1.5b" in table and "in turn translator.prepare_context=false" in table
    assert entry["alternating"]["ratio_p50"] == 1.5
    assert breakdown_table(result).count("in turn") == 2
