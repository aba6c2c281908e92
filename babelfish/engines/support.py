"""What each offered language can do on the embedded engines, in one table that the menu, the startup log,
the console and the docs all read.

For every language of :data:`babelfish.core.languages.NAMES`: the voice that speaks it (engine and style),
the recognizer's decoding settings for it, whether the translator has example turns for it, and the verdict
measured by ``babelfish bench languages`` (its figures are kept in ``measured_languages.json`` beside this
module, written by ``bench languages --save``; nothing here is typed in by hand).

The verdict (:func:`verdict`) applies fixed rules to those figures (chosen before any was measured):

- **poor** when the installed recognizer gets more than :data:`MAX_RECOGNITION_WER` % of real recorded
  sentences wrong, when the voice, band-limited to the leg's rate and recognized again, loses more than
  :data:`MAX_VOICE_WER` % of its words, or when text translation to or from English scores below
  :data:`MIN_CHRF` chrF;
- **good** when recognition, voice and translation were all measured and none is poor;
- **usable** when nothing measured is poor but some part could not be measured here (no recordings of the
  language ship in any package: its recognition is then judged only through the voice round trip);
- **unmeasured** when no figure exists for the engines in use.

By default the menu offers the good and usable languages (:func:`offered`); ``menu.languages`` chooses others.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from babelfish.core import languages

MEASURED = Path(__file__).with_name("measured_languages.json")

MAX_RECOGNITION_WER = 30.0  # the issue's bar for a recognizer worth offering
MAX_VOICE_WER = 50.0  # more than half the words of the voice lost at the leg's rate
MIN_CHRF = 30.0  # translation that keeps less than this of the reference's character n-grams
MENU_SIZE = 9  # keys 1-9

# The Kokoro style that speaks each language (the packaged styles are Japanese speakers): the one whose
# speech Whisper understood best on the dev sentences at 8 kHz (ties: jm_kumo), ``bench languages --dev``,
# benchmarks/results/languages-dev.json. English keeps Piper's joe (bench languages compares the two).
KOKORO_STYLES: dict[str, str] = {
    "de": "jf_gongitsune", "fr": "jm_kumo", "es": "jm_kumo", "it": "jm_kumo", "nl": "jm_kumo", "pt": "jm_kumo",
    "pl": "jf_nezumi", "cs": "jm_kumo", "sv": "jf_gongitsune", "ru": "jm_kumo", "ja": "jf_gongitsune",
}
ENGLISH_VOICE = "piper:joe"

# Whisper's decoding per language where the dev clips chose other than the defaults (beam 1, the 15 s
# window), from the same dev run: among beam 1/5 and window 15/30 s, the cheapest within 1 point of the
# lowest WER, and only where that is at least 2 points below the defaults' (fr 14.8 -> 10.6, nl 61.8 ->
# 49.3). Settings of the operator's own win.
RECOGNIZER_TUNING: dict[str, dict[str, float]] = {"fr": {"beam_size": 5}, "nl": {"beam_size": 5}}


def tuning(recognizer: Any) -> tuple[dict[str, float], dict[str, int]]:
    """Whisper's window and beam per language: the dev clips' choices (for the packaged base model only: they
    were measured on it), under the operator's own ``window_by_language`` / ``beam_by_language``."""
    windows: dict[str, float] = {}
    beams: dict[str, int] = {}
    if recognizer.model == "base":
        for lang, chosen in RECOGNIZER_TUNING.items():
            if "min_window_s" in chosen:
                windows[lang] = float(chosen["min_window_s"])
            if "beam_size" in chosen:
                beams[lang] = int(chosen["beam_size"])
    windows.update({languages.primary(k): v for k, v in recognizer.window_by_language.items()})
    beams.update({languages.primary(k): v for k, v in recognizer.beam_by_language.items()})
    return windows, beams


Rating = Literal["good", "usable", "poor", "unmeasured"]


@dataclass(frozen=True)
class Verdict:
    language: str
    rating: Rating
    reasons: tuple[str, ...] = ()  # why it is poor, or what could not be measured
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def offered(self) -> bool:
        return self.rating in ("good", "usable")

    def summary(self) -> str:
        why = "; ".join(self.reasons)
        return f"{languages.name(self.language)} ({self.language}): {self.rating}" + (f": {why}" if why else "")


def default_voice(language: str) -> str:
    """The embedded voice for ``language``: ``piper:joe``, ``kokoro:<style>`` or, where Kokoro cannot read
    the script (Chinese), ``espeak:<language>``."""
    lang = languages.primary(language)
    if lang == "en":
        return ENGLISH_VOICE
    style = KOKORO_STYLES.get(lang)
    return f"kokoro:{style}" if style else f"espeak:{lang}"


def has_examples(language: str) -> bool:
    from babelfish.engines.gemma import EXAMPLES

    return languages.primary(language) in EXAMPLES


@functools.cache
def measured() -> dict[str, Any]:
    """The last saved ``bench languages`` run (``{}`` when none was saved)."""
    if not MEASURED.is_file():
        return {}
    table: dict[str, Any] = json.loads(MEASURED.read_text(encoding="utf-8"))
    return table


def embedded_engines(settings: Any) -> dict[str, bool]:
    """Which stages run the embedded engines the figures were measured on."""
    return {
        "recognition": settings.recognizer.engine == "whisper" and settings.recognizer.model == "base",
        "translation": settings.translator.engine == "llama" and settings.translator.model == "qwen2.5-1.5b"
        and settings.translator.model_path is None,
        "voice": settings.synthesizer.engine == "local",
    }


def judge(language: str, row: dict[str, Any] | None, applies: dict[str, bool] | None = None) -> Verdict:
    """The rules of this module's docstring applied to one ``bench languages`` row."""
    lang = languages.primary(language)
    applies = applies or {"recognition": True, "translation": True, "voice": True}
    if not row:
        return Verdict(lang, "unmeasured", ("no bench languages figures for it",))
    poor: list[str] = []
    missing: list[str] = []
    wer = row.get("recognition_wer")
    if applies["recognition"]:
        if wer is None:
            missing.append("no recordings of real speech here: recognition judged by the voice round trip only")
        elif wer > MAX_RECOGNITION_WER:
            poor.append(f"Whisper base gets {wer:.0f} % of real speech wrong: with internet, "
                        "`babelfish models fetch whisper-small` and recognizer.model = \"small\"")
    voice = row.get("voice_wer")
    if applies["voice"]:
        if voice is None:
            missing.append("voice not measured")
        elif voice > MAX_VOICE_WER:
            poor.append(f"its voice loses {voice:.0f} % of words on a phone line")
    if applies["translation"]:
        chrf = [row.get(k) for k in ("to_english_chrf", "from_english_chrf") if lang != "en"]
        if lang != "en" and any(c is None for c in chrf):
            missing.append("no parallel text to measure translation")
        elif any(c is not None and c < MIN_CHRF for c in chrf):
            poor.append(f"translation keeps {min(c for c in chrf if c is not None):.0f} chrF")
    if poor:
        return Verdict(lang, "poor", tuple(poor), row)
    return Verdict(lang, "usable" if missing else "good", tuple(missing), row)


def verdict(language: str, settings: Any | None = None) -> Verdict:
    """The measured verdict for ``language`` on the engines ``settings`` choose (the embedded ones when
    ``None``); parts that run on other engines (Azure, a bigger Whisper) are not judged."""
    lang = languages.primary(language)
    applies = embedded_engines(settings) if settings is not None else None
    if applies is not None and not any(applies.values()):
        return Verdict(lang, "unmeasured", ("measured for the embedded engines only",))
    return judge(lang, measured().get("languages", {}).get(lang), applies)


def offered(settings: Any | None = None) -> list[str]:
    """The menu's default: every language rated good or usable (or, with no figures at all, every language
    whose voice is neural), English first, at most :data:`MENU_SIZE`."""
    verdicts = [verdict(tag, settings) for tag in languages.NAMES]
    if all(v.rating == "unmeasured" for v in verdicts):
        chosen = [v.language for v in verdicts if not default_voice(v.language).startswith("espeak:")]
    else:
        chosen = [v.language for v in verdicts if v.offered]
    return [languages.regional(tag) for tag in chosen][:MENU_SIZE]


def menu(settings: Any) -> list[str]:
    """The menu's languages: ``menu.languages`` where set (``[]``: no menu), else :func:`offered`."""
    return settings.menu.languages if settings.menu.languages is not None else offered(settings)


def table(settings: Any | None = None) -> list[dict[str, Any]]:
    """One row per offered language: what the console and ``babelfish languages`` show (``in_menu``: whether
    the menu ``settings`` give offers it)."""
    in_menu = {languages.primary(tag) for tag in menu(settings)} if settings is not None else set()
    rows = []
    for tag in languages.NAMES:
        v = verdict(tag, settings)
        rows.append({"language": tag, "name": languages.name(tag), "voice": default_voice(tag),
                     "examples": has_examples(tag), "recognizer": RECOGNIZER_TUNING.get(tag, {}),
                     "rating": v.rating, "reasons": list(v.reasons), "offered": v.offered, "in_menu": tag in in_menu})
    return rows
