"""``babelfish bench languages --limit 1`` on the real embedded engines: one row per language asked for, each
with the figures its material allows and a verdict; the dev and test halves never share an item."""

from __future__ import annotations

import json

import pytest

from babelfish import cli
from babelfish.devtools.bench import languages as bench

from .conftest import HEAVY


def test_dev_and_test_halves_are_disjoint_and_do_not_move_with_the_limit() -> None:
    items = list(range(400))
    dev, test = bench.halves(items, True, None), bench.halves(items, False, None)
    assert not set(dev) & set(test) and len(dev) == bench.DEV_SIZE
    assert bench.halves(items, False, 5) == test[:5]


def test_scripts_without_spaces_are_scored_by_character() -> None:
    assert bench.errors(["東京に行きます"], ["東京に行きます"], "ja") == 0.0
    assert 0 < bench.errors(["东京"], ["北京"], "zh") < 100


@pytest.mark.e2e
@HEAVY
def test_languages_bench_json(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        from babelfish.devtools import corpus

        corpus.ensure_installed()
    except RuntimeError as exc:
        pytest.skip(f"corpus packages not installable here: {exc}")
    capsys.readouterr()
    assert cli.main(["bench", "languages", "--limit", "1", "--only", "de,pt", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["half"] == "test" and result["machine"]["cpu"] and set(result["languages"]) == {"de", "pt"}
    de, pt = result["languages"]["de"], result["languages"]["pt"]
    assert de["voice"].startswith("kokoro:") and de["single_words_n"] == 1 and "recognition_wer" not in de
    assert {"voice_wer", "voice_wer_espeak_de", "from_english_product", "from_english_one-line",
            "to_english_product", "to_english_one-line", "first_frame_s"} <= set(de)
    assert de["translation_material"] == "game lines" and pt["translation_material"] == "server sentences"
    assert de["verdict"] in ("good", "usable", "poor") and isinstance(de["reasons"], list)
