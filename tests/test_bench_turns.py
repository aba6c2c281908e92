"""``babelfish bench turns --limit 4 --json``: the end-of-turn rules on prompts with a pause inside."""

from __future__ import annotations

import json

import pytest

from babelfish import cli


def test_turns_bench_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "turns", "--limit", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["false_cutoffs"]) == {"silence", "smart-turn"}
    for split in ("dev", "test"):
        for rule in ("silence", "smart-turn"):
            r = result[split][rule]
            assert r["n"] == 4 and 0 <= r["false_cutoffs"] <= 1
    assert result["smart_turn_ms"]["p50"] > 0 and result["machine"]["cpu"]
    assert result["test"]["silence"]["end_of_turn_s"]["p50"] >= 0.45  # the 500 ms silence rule
