"""Which voice speaks each language: Piper for English, Kokoro for every language espeak-ng phonemizes,
espeak-ng where Kokoro cannot read the script, a chosen voice always; MBROLA only when chosen (opt-in), and
what it says survives an 8 kHz phone line well enough for Whisper to understand it."""

from __future__ import annotations

from pathlib import Path

import pytest

from babelfish.core import audio
from babelfish.core.worker import EngineError
from babelfish.engines import support
from babelfish.engines import voices as synthesize
from babelfish.engines.voices import Voices


def test_every_language_gets_the_embedded_voice_and_mbrola_only_when_chosen(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(synthesize, "MBROLA_DIR", tmp_path)
    (tmp_path / "de6").mkdir()
    (tmp_path / "de6" / "de6").write_bytes(b"diphones")  # installed, but not chosen: not used
    voices = Voices({}, tmp_path)
    assert voices.spec("en-GB") == "piper:joe"
    assert voices.spec("de-DE") == f"kokoro:{support.KOKORO_STYLES['de']}"
    assert voices.spec("pl") == f"kokoro:{support.KOKORO_STYLES['pl']}"
    assert voices.spec("zh") == "espeak:zh"  # Kokoro cannot read Chinese characters through espeak-ng
    assert Voices({"de": "mbrola:de6"}, tmp_path).spec("de-AT") == "mbrola:de6"
    assert Voices({"de": "espeak:de"}, tmp_path).spec("de") == "espeak:de"  # a chosen voice wins


def test_a_missing_mbrola_voice_says_how_to_install_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(synthesize, "MBROLA_DIR", tmp_path)
    with pytest.raises(EngineError, match="make voices-nonfree"):
        Voices({"de": "mbrola:de6"}, tmp_path).get("de")


@pytest.mark.e2e
def test_the_mbrola_german_voice_is_understood_at_8_khz(tmp_path) -> None:
    if not synthesize.mbrola_installed("de6"):
        pytest.skip("MBROLA de6 is not installed: `make voices-nonfree` installs it (Debian non-free, opt-in)")
    from babelfish.devtools.bench.scoring import word_errors
    from babelfish.engines.whisper import WhisperRecognizer

    voice = Voices({"de": "mbrola:de6"}, tmp_path).get("de")
    sentences = ["Bitte versuchen Sie es später noch einmal.", "Ich rufe dich morgen früh zurück.",
                 "Wo ist der nächste Bahnhof?"]
    recognizer = WhisperRecognizer("base", Path(tmp_path))
    heard = []
    for text in sentences:
        samples, rate = voice.synthesize_sync(text)
        phone = audio.resample(samples, rate, 8000)
        heard.append(recognizer.transcribe_sync(phone, 8000, "de"))
    wer, _ = word_errors(sentences, heard, "de")
    assert wer < 50, heard  # espeak-ng's own German scores about 99 % here
