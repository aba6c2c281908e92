"""Real recorded speech and reference text from Debian packages, for tests and benchmarks.

Synthesized speech proves little about recognition or translation, so tests and benchmarks use these
(see /work/shared/reference/test-audio.md and docs/translation.md):

- ``asterisk_prompts``: 8 kHz telephone prompts with transcripts (asterisk-core-sounds-en*; Spanish,
  French and Italian from asterisk-core-sounds-es*/fr*/it*, one speaker each, for language identification).
- ``fillets_dutch_lines``: voice-acted Dutch game lines with Dutch text and English/German translations
  (fillets-ng-data, fillets-ng-data-nl).
- ``sentence_pairs``: sentence pairs between any two languages of the fillets game scripts.
- ``klettres_words``: German (and other) single words (klettres-data).

Nothing here is copied into the repository; ``ensure_installed`` installs the packages (needs root).
"""

from __future__ import annotations

import gzip
import random
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en")
ASTERISK_SOUNDS_FALLBACK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
# the voice each Debian package installs (the bare-language directory is an alternatives link to it)
ASTERISK_VOICES = {"en": "en_US_f_Allison", "es": "es_MX_f_Allison", "fr": "fr_CA_f_June", "it": "it_IT_m_Carlo"}
FILLETS = Path("/usr/share/games/fillets-ng")
KLETTRES = Path("/usr/share/klettres")
POCKETSPHINX_TEST = Path("/usr/share/pocketsphinx/test/data")
CODEC2 = Path("/usr/share/codec2")

# One file per package that shows the package is installed.
_SENTINELS: dict[str, Path] = {
    "asterisk-core-sounds-en-wav": ASTERISK_SOUNDS_FALLBACK / "activated.wav",
    "asterisk-core-sounds-en": ASTERISK_TRANSCRIPTS,
    **{f"asterisk-core-sounds-{lang}{suffix}": path
       for lang in ("es", "fr", "it")
       for suffix, path in (("-wav", Path(f"/usr/share/asterisk/sounds/{ASTERISK_VOICES[lang]}/digits/1.wav")),
                            ("", Path(f"/usr/share/doc/asterisk-core-sounds-{lang}/core-sounds-{lang}.txt.gz")))},
    "fillets-ng-data": FILLETS / "script" / "city" / "dialogs_nl.lua",
    "fillets-ng-data-nl": FILLETS / "sound" / "city" / "nl" / "vit-m-hlava.ogg",
    "klettres-data": KLETTRES / "de" / "sounds.xml",
    "codec2-examples": CODEC2 / "octave" / "in8.raw",
    "pocketsphinx-testdata": POCKETSPHINX_TEST / "cards" / "001.wav",
}

DEBIAN_PACKAGES: list[str] = list(_SENTINELS)


@dataclass
class Clip:
    """One recording and what is said in it (``translations``: language -> text, maybe empty)."""

    path: Path
    text: str
    language: str
    translations: dict[str, str] = field(default_factory=dict)


def missing_packages(packages: Iterable[str] | None = None) -> list[str]:
    """The packages (all of ``DEBIAN_PACKAGES`` by default) whose files are not on this machine."""
    wanted = DEBIAN_PACKAGES if packages is None else list(packages)
    return [pkg for pkg in wanted if not _SENTINELS[pkg].exists()]


def ensure_installed(packages: Iterable[str] | None = None) -> None:
    """Install whichever of the corpus packages are missing with ``apt-get install -y``.

    Runs ``apt-get update`` and retries once if the first install fails; raises ``RuntimeError``
    (with apt's output) if the files are still missing afterwards.
    """
    missing = missing_packages(packages)
    if not missing:
        return
    apt = shutil.which("apt-get")
    if apt is None:
        raise RuntimeError(f"corpus packages missing and apt-get not found: {' '.join(missing)}")
    cmd = [apt, "install", "-y", "--no-install-recommends", *missing]
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        subprocess.run([apt, "update"], capture_output=True, text=True, env=env, check=False)
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    still = missing_packages(missing)
    if result.returncode != 0 or still:
        _cached_clear()
        raise RuntimeError(
            f"could not install corpus packages {' '.join(still or missing)} "
            f"(apt-get exit {result.returncode}; needs root and a Debian mirror):\n"
            f"{(result.stderr or result.stdout)[-2000:]}"
        )
    _cached_clear()


def _require(*packages: str) -> None:
    missing = missing_packages(packages)
    if missing:
        raise FileNotFoundError(
            f"Debian packages not installed: {' '.join(missing)} "
            "(run babelfish.devtools.corpus.ensure_installed() or apt-get install them)"
        )


# --- Asterisk telephone prompts -------------------------------------------------------------------

_BRACKETS = re.compile(r"\[[^\]]*\]")


def asterisk_transcripts(language: str = "en") -> dict[str, str]:
    """``name`` (e.g. ``"digits/1"``) -> transcript, without bracketed parts and non-speech entries."""
    _require(f"asterisk-core-sounds-{language}")
    out: dict[str, str] = {}
    path = Path(f"/usr/share/doc/asterisk-core-sounds-{language}/core-sounds-{language}.txt.gz")
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line.startswith(";") or ":" not in line:
                continue
            name, text = (part.strip() for part in line.split(":", 1))
            text = " ".join(_BRACKETS.sub(" ", text).split())
            if name and text and any(ch.isalnum() for ch in text):
                out[name] = text
    return out


def asterisk_prompts(min_words: int = 5, language: str = "en", max_words: int | None = None) -> list[Clip]:
    """8 kHz telephone prompts (wav) in ``language`` (en, es, fr, it) with their transcripts, of
    ``min_words`` to ``max_words`` words, by name."""
    _require(f"asterisk-core-sounds-{language}-wav", f"asterisk-core-sounds-{language}")
    base = Path("/usr/share/asterisk/sounds") / ASTERISK_VOICES[language]
    if language == "en" and ASTERISK_SOUNDS.exists():
        base = ASTERISK_SOUNDS
    clips = []
    for name, text in sorted(asterisk_transcripts(language).items()):
        path = base / f"{name}.wav"
        words = len(text.split())
        if words >= min_words and (max_words is None or words <= max_words) and path.is_file():
            clips.append(Clip(path=path, text=text, language=language))
    return clips


# --- Fish Fillets NG: Dutch voice acting and the multilingual game scripts ------------------------

_LUA_STRING = r'"((?:[^"\\\n]|\\.)*)"'
_DIALOG = re.compile(
    r"dialogId\(\s*" + _LUA_STRING + r"\s*,\s*" + _LUA_STRING + r"\s*,\s*" + _LUA_STRING + r"\s*\)"
    r"(?:\s*dialogStr\(\s*" + _LUA_STRING + r"\s*\))?"
)
_LUA_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_QUOTES = str.maketrans({"„": '"', "“": '"', "”": '"', "«": '"', "»": '"', "‚": "'", "‘": "'", "’": "'"})


def lua_unescape(text: str) -> str:
    """Decode the escapes of a Lua string literal (``\\"``, ``\\\\``, ``\\n``, ``\\ddd``, ``\\/``...)."""

    def one(match: re.Match[str]) -> str:
        esc = match.group(1)
        if esc.isdigit():
            return chr(int(esc))
        return _LUA_ESCAPES.get(esc, esc)

    return re.sub(r"\\(\d{1,3}|.)", one, text, flags=re.S)


def normalize_text(text: str) -> str:
    """Plain quotes for typographic ones (the scripts mix both) and single spaces."""
    return " ".join(text.translate(_QUOTES).split())


@dataclass(frozen=True)
class _Dialog:
    script: str  # the script file without its language suffix, e.g. "city/dialogs", "share/black_dialogs"
    id: str
    english: str
    text: str | None  # the dialogStr, None when the line is untranslated


@cache
def _dialogs(language: str) -> tuple[_Dialog, ...]:
    _require("fillets-ng-data")
    suffix = f"dialogs_{language}.lua"
    out = []
    for path in sorted((FILLETS / "script").rglob(f"*{suffix}")):
        rel = path.relative_to(FILLETS / "script").as_posix()
        script = rel[: -len(f"_{language}.lua")]
        for m in _DIALOG.finditer(path.read_text(encoding="utf-8", errors="replace")):
            english = normalize_text(lua_unescape(m.group(3)))
            text = normalize_text(lua_unescape(m.group(4))) if m.group(4) is not None else None
            out.append(_Dialog(script, m.group(1), english, text or None))
    return tuple(out)


def _cached_clear() -> None:
    _dialogs.cache_clear()


def fillets_languages() -> list[str]:
    """Languages with game scripts (``"en"`` plus every ``dialogs_<lang>.lua``)."""
    _require("fillets-ng-data")
    langs = {p.name[len("dialogs_"): -len(".lua")] for p in (FILLETS / "script").glob("*/dialogs_*.lua")}
    return sorted(langs | {"en"})


def _translations(language: str) -> dict[tuple[str, str], str]:
    """(script, id) -> text in ``language``; for English the dialogId text itself."""
    out: dict[tuple[str, str], str] = {}
    for d in _dialogs("en" if language == "en" else language):
        text = d.english if language == "en" else d.text
        if text and (language == "en" or text != d.english):
            out.setdefault((d.script, d.id), text)
    return out


def _by_id(table: dict[tuple[str, str], str]) -> dict[str, str]:
    by_id: dict[str, str] = {}
    for (_, dialog_id), text in table.items():
        by_id.setdefault(dialog_id, text)
    return by_id


def fillets_dutch_lines() -> list[Clip]:
    """Voice-acted Dutch game lines (ogg) with their Dutch text and ``{"en": ..., "de": ...}``, by path.

    Audio lies in ``sound/<level>/nl/<id>.ogg`` and the file name is the dialog id. Ids repeat across
    levels with different lines (``init-0``...), so an id is looked up in that level's scripts
    (``script/<level>/``; ``script/share/`` for ``sound/share/<group>/``) before all others. One stray
    file spells its id with ``_`` (``bar_v_fotka.ogg``) beside the proper ``bar-v-fotka.ogg``; such
    duplicates are skipped. Only lines with a Dutch text (a few are untranslated) are returned.
    """
    _require("fillets-ng-data", "fillets-ng-data-nl")
    dutch, english, german = _translations("nl"), _translations("en"), _translations("de")
    keys_by_id: dict[str, list[tuple[str, str]]] = {}
    for key in dutch:
        keys_by_id.setdefault(key[1], []).append(key)
    english_any, german_any = _by_id(english), _by_id(german)
    clips = []
    for path in sorted((FILLETS / "sound").glob("**/nl/*.ogg")):
        dialog_id = path.stem
        if dialog_id not in keys_by_id and "_" in dialog_id:
            dialog_id = dialog_id.replace("_", "-")
            if path.with_name(f"{dialog_id}.ogg").exists():
                continue  # a stray duplicate of a properly named file
        keys = keys_by_id.get(dialog_id)
        if not keys:
            continue
        level = path.parent.parent.relative_to(FILLETS / "sound").as_posix()  # "city", "share/border"
        prefix = "share/" if level.startswith("share/") else f"{level}/"
        key = next((k for k in keys if k[0].startswith(prefix)), keys[0])
        translations = {}
        if en := english.get(key) or english_any.get(dialog_id):
            translations["en"] = en
        if de := german.get(key) or german_any.get(dialog_id):
            translations["de"] = de
        clips.append(Clip(path=path, text=dutch[key], language="nl", translations=translations))
    return clips


def parallel_lines(languages: Sequence[str]) -> list[dict[str, str]]:
    """Game lines translated into every one of ``languages``: one ``{language: text}`` per line, sorted
    by the first language's text, deduplicated."""
    tables = [_translations(lang) for lang in languages]
    keys = set(tables[0]).intersection(*tables[1:])
    rows = {tuple(table[key] for table in tables) for key in keys}
    return [dict(zip(languages, row, strict=True)) for row in sorted(rows)]


def dialogue_runs(source: str = "en", target: str = "de", min_length: int = 4) -> list[list[tuple[str, str]]]:
    """Consecutive game lines as they stand in each level's script, as (source, target) pairs: runs of at
    least ``min_length`` lines that are translated in both languages (for conversation-context tests)."""
    src, tgt = _translations(source), _translations(target)
    runs: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    script = None
    for d in _dialogs("en" if "en" in (source, target) else source):
        key = (d.script, d.id)
        pair = (src.get(key), tgt.get(key))
        if d.script != script or None in pair or pair[0] == pair[1]:
            if len(current) >= min_length:
                runs.append(current)
            current, script = [], d.script
            if None in pair or pair[0] == pair[1]:
                continue
        if not current or current[-1] != pair:
            current.append(pair)  # type: ignore[arg-type]
    if len(current) >= min_length:
        runs.append(current)
    return runs


def sentence_pairs(source: str = "en", target: str = "de") -> list[tuple[str, str]]:
    """(source, target) sentence pairs from the fillets game scripts, deduplicated and sorted.

    Lines are joined through their script and dialog id; untranslated lines (the English text copied)
    are left out. Languages: see ``fillets_languages()`` (``de_CH`` is Swiss German, kept apart).
    """
    src, tgt = _translations(source), _translations(target)
    pairs = {(src[key], tgt[key]) for key in src.keys() & tgt.keys() if src[key] != tgt[key]}
    return sorted(pairs)


# --- KLettres single words -----------------------------------------------------------------------

_UMLAUTS = (("ae", "ä"), ("oe", "ö"), ("ue", "ü"), ("sz", "ß"))


def klettres_words(language: str = "de") -> list[Clip]:
    """Single spoken words (``<lang>/syllab/*.ogg``), text from ``sounds.xml`` (or the file name), by name."""
    _require("klettres-data")
    base = KLETTRES / language
    names: dict[str, str] = {}
    xml = base / "sounds.xml"
    if xml.exists():
        for sound in ET.parse(xml).getroot().iter("sound"):
            file, name = sound.get("file"), sound.get("name")
            if file and name:
                names[Path(file).name] = name.lower()
    clips = []
    for path in sorted((base / "syllab").glob("*.ogg")):
        text = names.get(path.name)
        if text is None:
            text = path.stem
            if language == "de":
                for plain, umlaut in _UMLAUTS:
                    text = text.replace(plain, umlaut)
        clips.append(Clip(path=path, text=text, language=language))
    return clips


# --- splits --------------------------------------------------------------------------------------


def dev_test_split(
    pairs: Sequence[T], dev_size: int = 50, test_size: int = 200, seed: int = 0
) -> tuple[list[T], list[T]]:
    """Disjoint, deterministic dev and test subsets of ``pairs`` (shuffled with ``seed``)."""
    if dev_size < 0 or test_size < 0:
        raise ValueError("sizes must not be negative")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    dev = [pairs[i] for i in order[:dev_size]]
    test = [pairs[i] for i in order[dev_size: dev_size + test_size]]
    return dev, test
