"""``babelfish bench quality --limit 2 --json`` on the real embedded engines and real recorded speech."""

from __future__ import annotations

import json

import pytest

from babelfish import cli
from babelfish.devtools.bench import scoring

from .conftest import HEAVY

pytestmark = [pytest.mark.e2e, HEAVY]

WER_SETS = ["en-telephone-8k", "en-telephone-8k-30s-window", "nl-game-lines", "de-words", "nl-game-lines-30s-window",
            "de-words-30s-window", "nl-game-lines-prompted", "de-voice-espeak-de-8k"]
BLEU_SETS = ["nl-en-speech", "nl-de-speech", "en-de-text", "de-en-text", "en-de-asr-bleu", "nl-en-asr-bleu",
             "en-de-dialogue", "en-de-dialogue-context", "de-en-dialogue", "de-en-dialogue-context"]


def test_normalize_for_wer() -> None:
    assert scoring.normalize("Press 1, or #.") == "press 1 or pound"
    assert scoring.normalize("press one to re-record, don't hang up") == "press 1 to re record dont hang up"
    assert scoring.normalize('IAX (note: does not say "2")') == "iax"
    assert scoring.normalize("Fünf Bären", "de") == "5 bären"
    assert scoring.normalize("Een, twee", "nl") == "een 2"


def test_quality_bench_json(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        from babelfish.devtools import corpus

        corpus.ensure_installed()
    except RuntimeError as exc:
        pytest.skip(f"corpus packages not installable here: {exc}")
    capsys.readouterr()
    assert cli.main(["bench", "quality", "--limit", "2", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])

    for key in ("wer", "bleu", "chrf", "n", "seconds", "config", "machine"):
        assert key in result, key
    assert set(WER_SETS) <= set(result["wer"])
    assert set(BLEU_SETS) <= set(result["bleu"]) and set(BLEU_SETS) <= set(result["chrf"])
    voices = {name for name in result["n"] if name.startswith("de-voice-mbrola-")}  # where installed
    assert set(result["n"]) == set(WER_SETS + BLEU_SETS) | voices
    assert set(result["seconds"]) == set(result["n"])
    for name, n in result["n"].items():
        assert 1 <= n <= 2, (name, n)
    for metric in ("wer", "bleu", "chrf"):
        for name, value in result[metric].items():
            assert isinstance(value, int | float) and 0 <= value <= 200, (metric, name, value)
    assert 0 <= result["accuracy"]["de-words"] <= 100
    assert result["config"]["recognizer"]["min_window_s"] == 15
    assert result["config"]["translator"]["engine"]

    ids = result["language_id"]  # 2 test clips per language and length bucket
    assert 2 <= ids["n"] <= 36 and ids["overhead"]["n"] == 4
    for prior in ("uniform_prior", "whisper_prior"):
        assert len(ids[prior]["pairs"]) == 15  # every pair of en, es, fr, it, nl, de
        assert sum(map(sum, (row.values() for row in ids[prior]["confusion"].values()))) == ids["n"]
        assert 0 <= ids[prior]["accuracy_5+"] <= 100
    assert ids["uniform_prior"]["accuracy_5+"] >= 80  # clean prompts of 5+ words: a broken detector fails this

    # a bound a broken recognizer (or a broken 8 kHz path) fails: these prompts are clean studio speech
    assert result["wer"]["en-telephone-8k"] < 30
    # a Piper English voice that Whisper cannot understand would fail this
    assert result["chrf"]["nl-en-asr-bleu"] > 50
