"""German voices: MBROLA (``make voices-nonfree``) is used when installed, espeak-ng otherwise, and what it
says survives an 8 kHz phone line well enough for Whisper to understand it."""

from __future__ import annotations

from pathlib import Path

import pytest

from babelfish.core import audio
from babelfish.core.worker import EngineError
from babelfish.engines import voices as synthesize
from babelfish.engines.voices import Voices


def test_german_uses_an_installed_mbrola_voice_and_falls_back_to_espeak(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(synthesize, "MBROLA_DIR", tmp_path)
    voices = Voices({}, tmp_path)
    assert voices.spec("de-DE") == "espeak:de"
    (tmp_path / "de7").mkdir()
    (tmp_path / "de7" / "de7").write_bytes(b"diphones")
    assert voices.spec("de-DE") == "mbrola:de7"
    (tmp_path / "de6").mkdir()
    (tmp_path / "de6" / "de6").write_bytes(b"diphones")
    assert voices.spec("de-AT") == "mbrola:de6"  # the better one first
    assert voices.spec("fr-FR") == "espeak:fr"
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

    voice = Voices({}, tmp_path).get("de")
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
