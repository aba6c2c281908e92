"""``bench doubletalk``'s accounting: every utterance of the double talk is heard, shown as skipped or timed
out, and the heard ones are compared with the same run's single speaker."""

from __future__ import annotations

from babelfish.devtools.bench.doubletalk import summarize, table


def record(id_: str, first_frame: float | None = None, error: str | None = None) -> dict:
    return {"id": id_, "source_text": "words", "error": error, "started_at": 0.0,
            "latencies": {} if first_frame is None else {"first_frame": first_frame}}


def test_each_utterance_is_heard_skipped_or_timed_out_and_the_heard_are_compared_with_one_speaker() -> None:
    alone = [record(f"a{i}", 1.0 + i / 10) for i in range(10)]
    both = [record("b1", 2.0), record("b2", 3.0), record("b3", error="translator: no first words within 6 s"),
            record("b4", error="translator: timed out after 30 s"), record("b5")]
    result = summarize(alone, both, {"b3": "late"}, [3, 2])
    d = result["double_talk"]
    assert (d["heard"], d["skipped"], d["timed_out"], d["unaccounted"]) == (2, 1, 1, 2)  # b4 and b5: nothing shown
    assert d["skipped_by_reason"] == {"late": 1} and d["transcript_kept"] == 5
    assert result["single"]["p90_s"] == 1.81 and d["ratio_p90"] == round(d["p90_s"] / 1.81, 3)
    result["config"] = {"translator": "qwen2.5-1.5b", "seconds": 120.0}
    assert "timed out 1" in table(result)
