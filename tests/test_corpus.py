"""The real-speech corpus loaders: counts, known entries, parsing details, deterministic splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from babelfish.devtools import corpus


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    try:
        corpus.ensure_installed()
    except RuntimeError as exc:  # no root or no mirror: nothing to test against
        pytest.skip(str(exc))


def test_package_list_and_nothing_missing() -> None:
    assert corpus.DEBIAN_PACKAGES == [
        "asterisk-core-sounds-en-wav", "asterisk-core-sounds-en", "asterisk-core-sounds-es-wav",
        "asterisk-core-sounds-es", "asterisk-core-sounds-fr-wav", "asterisk-core-sounds-fr",
        "asterisk-core-sounds-it-wav", "asterisk-core-sounds-it", "fillets-ng-data", "fillets-ng-data-nl",
        "klettres-data", "codec2-examples", "pocketsphinx-testdata",
    ]
    assert corpus.missing_packages() == []


def test_asterisk_prompts() -> None:
    clips = corpus.asterisk_prompts()
    assert len(clips) >= 150
    assert all(c.language == "en" and c.path.suffix == ".wav" and c.path.is_file() for c in clips)
    names = [c.path.relative_to(clips[0].path.parent).with_suffix("").as_posix() for c in clips]
    assert names == sorted(names)
    assert all(len(c.text.split()) >= 5 and "[" not in c.text for c in clips)
    by_name = {c.path.stem: c for c in clips}
    assert by_name["agent-alreadyon"].text == (
        "That agent is already logged on. Please enter your agent number followed by the pound key.")
    assert "beep" not in by_name
    assert len(corpus.asterisk_prompts(min_words=1)) > len(clips)
    assert corpus.asterisk_prompts() == clips  # deterministic


@pytest.mark.parametrize("language", ["es", "fr", "it"])
def test_asterisk_prompts_in_other_languages(language: str) -> None:
    clips = corpus.asterisk_prompts(min_words=2, language=language)
    assert len(clips) >= 150
    assert {c.language for c in clips} == {language}
    assert all(c.path.is_file() and 2 <= len(c.text.split()) for c in clips)
    short = corpus.asterisk_prompts(min_words=2, max_words=4, language=language)
    assert short and all(len(c.text.split()) <= 4 for c in short) and len(short) < len(clips)


def test_asterisk_transcripts_drop_brackets() -> None:
    transcripts = corpus.asterisk_transcripts()
    assert "beep" not in transcripts and "ascending-2tone" not in transcripts
    assert transcripts["letters/at"] == "at"
    assert transcripts["digits/1"].rstrip(".").lower() == "one"


def test_fillets_dutch_lines() -> None:
    clips = corpus.fillets_dutch_lines()
    full = [c for c in clips if set(c.translations) == {"en", "de"}]
    assert len(full) >= 500
    assert all(c.language == "nl" and c.path.suffix == ".ogg" and c.text for c in clips)
    assert len({c.path for c in clips}) == len(clips)
    first = next(c for c in clips if c.path.parts[-3:] == ("airplane", "nl", "let-m-divna.ogg"))
    assert first.text == "Wat is dit voor raar schip?"
    assert first.translations == {"en": "What kind of strange ship is that?",
                                  "de": "Was für ein seltsames Schiff ist das denn?"}
    # "init-0" exists in several levels with different lines: the level's own script must win.
    locked = next(c for c in clips if c.path.parts[-3:] == ("electromagnet", "nl", "init-0.ogg"))
    assert locked.translations["en"] == "We are locked in."
    # Shared lines live in sound/share/<group>/nl/ and script/share/.
    assert any("share" in c.path.parts[-4:-2] for c in clips)
    # The stray bar_v_fotka.ogg duplicates bar-v-fotka.ogg and is skipped.
    assert not any(c.path.name == "bar_v_fotka.ogg" for c in clips)


def test_sentence_pairs() -> None:
    pairs = corpus.sentence_pairs("en", "de")
    assert len(pairs) >= 1000
    assert pairs == sorted(set(pairs))
    assert ("Welcome to the most beautiful city under the sun.",
            "Willkommen in der schönsten Stadt unter der Sonne.") in pairs
    assert all(en and de and en != de for en, de in pairs)
    # Lua escapes decoded, typographic quotes made plain.
    assert any("C:\\WINDOWS\\CONFIG" in de for _, de in pairs)
    assert not any("\\\"" in de or "„" in de or "”" in de for _, de in pairs)
    assert any('"Korallenseele"' in de for _, de in pairs)
    reverse = corpus.sentence_pairs("de", "en")
    assert {(b, a) for a, b in reverse} == set(pairs)
    assert len(corpus.sentence_pairs("nl", "de")) >= 1000


def test_lua_unescape() -> None:
    assert corpus.lua_unescape(r'say \"hi\" in C:\\dir \/etc\n\65') == 'say "hi" in C:\\dir /etc\nA'
    assert corpus.normalize_text("„UFO-Ausgang”  and ’s") == "\"UFO-Ausgang\" and 's"


def test_klettres_words() -> None:
    words = corpus.klettres_words("de")
    assert len(words) >= 30
    by_file = {w.path.name: w.text for w in words}
    assert by_file["affe.ogg"] == "affe"
    assert by_file["baer.ogg"] == "bär"
    assert by_file["fusz.ogg"] == "fuß"
    assert all(w.language == "de" and w.path.is_file() for w in words)


def test_dev_test_split() -> None:
    pairs = corpus.sentence_pairs()
    dev, test = corpus.dev_test_split(pairs, dev_size=50, test_size=200, seed=0)
    assert len(dev) == 50 and len(test) == 200
    assert not set(dev) & set(test)
    assert (dev, test) == corpus.dev_test_split(pairs, dev_size=50, test_size=200, seed=0)
    assert corpus.dev_test_split(pairs, seed=1)[0] != dev
    small_dev, small_test = corpus.dev_test_split(list(range(10)), dev_size=4, test_size=100)
    assert len(small_dev) == 4 and len(small_test) == 6


def test_missing_files_explain_themselves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(corpus._SENTINELS, "klettres-data", tmp_path / "nope.xml")
    assert corpus.missing_packages(["klettres-data"]) == ["klettres-data"]
    with pytest.raises(FileNotFoundError, match="ensure_installed"):
        corpus.klettres_words()
