"""The whole path on the real embedded engines: real recorded speech in, translated speech out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest
import sacrebleu

from babelfish.config.settings import Settings
from babelfish.core import audio
from babelfish.devtools.conversation import Party, run_call
from babelfish.pipeline.protocols import Engines

from .conftest import asterisk

pytestmark = pytest.mark.e2e

REFERENCE = "Please enter your conference number followed by the pound key."
GERMAN = "Guten Tag. Ich möchte bitte an der Konferenz teilnehmen."



def normalize(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


@pytest.fixture(scope="module")
def german_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("speech") / "de.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-s", "150", "-w", str(path), GERMAN], check=True)
    return path


@pytest.mark.parametrize("rate", [16000, 8000])
async def test_a_translated_call_on_real_engines(engines: Engines, models_dir: Path, german_wav: Path,
                                                 tmp_path: Path, rate: int) -> None:
    from babelfish.server.serving import background

    settings = Settings(models_dir=models_dir, sample_rate=rate,
                        numbers={"4915000000001": "de-DE", "4915000000002": "en-GB"})
    english = asterisk("conf-getconfno")
    async with background(settings, engines) as url:
        # at real time, as Vonage sends: at twice real time, with the waiting caller's "someone has joined"
        # notice played first, espeak German at 8 kHz was recognized too poorly in 2 of 4 runs, at real time in 0 of 5
        result = await run_call([Party("de-DE", [german_wav]), Party("en-GB", [english])], settings=settings,
                                server=url, out=tmp_path, pace=1.0, gap_s=1.0, printer=None)
    by_lang = {u["language"]: u for u in result.utterances}
    assert set(by_lang) == {"de-DE", "en-GB"}
    en = by_lang["en-GB"]
    assert jiwer.wer(normalize(REFERENCE), normalize(en["source_text"])) <= 0.2
    german_translation = en["translations"]["de-DE"]
    assert sacrebleu.sentence_chrf(german_translation, [
        "Bitte geben Sie Ihre Konferenznummer ein, gefolgt von der Rautetaste."]).score > 25
    de = by_lang["de-DE"]  # synthesized German (espeak-ng), harder still at 8 kHz
    # (30: segmentation shifts with CPU load and Whisper base hears espeak German roughly; unrelated text ~15)
    assert sacrebleu.sentence_chrf(de["source_text"], [GERMAN]).score > 30
    english_translation = de["translations"]["en-GB"]
    assert english_translation and normalize(english_translation) != normalize(de["source_text"])
    for record in result.utterances:
        assert record["error"] is None
        assert record["latencies"]["first_frame"] > 0  # speed is measured by `babelfish bench latency`
    # what each caller heard is the other's translation, as speech: recognize it again
    for leg in result.legs:
        heard, heard_rate = audio.read_wav(leg["heard"])
        assert heard_rate == rate and leg["bad_frames"] == 0
        assert audio.rms_dbfs(heard[np.abs(heard) > 0.01]) > -40
    transcript = json.loads((tmp_path / "transcript.json").read_text())
    assert len(transcript) == 2
    english_leg = next(leg for leg in result.legs if leg["language"] == "en-GB")
    heard, heard_rate = audio.read_wav(english_leg["heard"])
    loud = np.flatnonzero(np.abs(heard) > 0.01)
    # the translation only: it ends at the first second of silence (a "partner hung up" notice may follow
    # it, depending on which caller hangs up first)
    gaps = np.flatnonzero(np.diff(loud) > heard_rate)
    end = loud[gaps[0]] if gaps.size else loud[-1]
    heard = heard[max(0, loud[0] - heard_rate // 5) : end + heard_rate // 5]  # the speech, not the silence
    text = await engines.recognizer.transcribe(heard, heard_rate, "en")
    # the round trip through 8 kHz telephone audio is lossy: a loose bound that unrelated text never meets
    assert sacrebleu.sentence_chrf(normalize(text), [normalize(english_translation)]).score > 40


def test_translate_command_on_a_real_recording(tmp_path: Path, models_dir: Path) -> None:
    out = tmp_path / "out.wav"
    proc = subprocess.run(
        [sys.executable, "-m", "babelfish.cli", "translate", str(asterisk("conf-getconfno")), "--from", "en",
         "--to", "de", "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=300,
        env={"BABELFISH_MODELS_DIR": str(models_dir), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == {"source_text", "translation", "timings"}
    assert jiwer.wer(normalize(REFERENCE), normalize(result["source_text"])) <= 0.2
    assert result["translation"] and result["translation"] != result["source_text"]
    assert {"recognize", "translate", "synthesize"} <= set(result["timings"])
    samples, rate = audio.read_wav(out)
    assert samples.size / rate > 1.0
