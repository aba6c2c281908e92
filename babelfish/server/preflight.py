"""``babelfish check-config``: whether a settings file is ready to serve a public number, before the server
starts (the systemd unit runs it as ``ExecStartPre``, and an upgrade runs it before the restart).

It loads the settings as ``babelfish serve`` does (unknown keys, bad language tags and ports are errors
there), checks the engine choice (:func:`babelfish.engines.choice.check`), and then what a server on the
internet needs on top of what a developer's does: the operator's token and Vonage's signature secret set, an
``https`` public URL, and every model the settings name present on this machine, without loading any.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from babelfish.config.settings import Settings


@dataclass
class Report:
    """What :func:`check` found: ``errors`` (each one line; any of them stops a production start) and the
    summary lines of a good configuration."""

    errors: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def read_env_file(path: str | Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a systemd ``EnvironmentFile`` (``#``/``;`` comments, optional quotes), so that
    the secrets the unit gives the server can be checked with it."""
    values: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"{path}:{number}: not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def offered_languages(settings: Settings) -> list[str]:
    """Every language a caller can be given: the menu's, the numbers map's and the defaults (in that order)."""
    from babelfish.engines import support

    tags = [*support.menu(settings), *settings.numbers.values(), *settings.default_languages]
    return list(dict.fromkeys(tags))


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_models(settings: Settings, languages: list[str]) -> list[str]:
    """One line per model the settings need for ``languages`` that is not on this machine (nothing loaded)."""
    from babelfish.core.languages import primary
    from babelfish.core.worker import EngineError
    from babelfish.engines.catalog import resolve

    models_dir = Path(settings.models_dir)
    missing: list[str] = []

    def packaged(name: str, setting: str) -> None:
        model = resolve(name)
        if model is None or not model.installed(models_dir):
            missing.append(f"{setting}: the packaged model {name} is not installed (pip install babelfish again)")

    served = set(settings.ray.stages)  # those stages' models live on the Ray cluster, not here
    recognizer = settings.recognizer
    if recognizer.engine == "whisper" and "recognizer" not in served:
        if recognizer.model == "base":
            packaged("whisper-base", "recognizer.model")
        elif not Path(recognizer.model).is_dir() and not (models_dir / f"whisper-{recognizer.model}" /
                                                          "model.bin").is_file():
            missing.append(f"recognizer.model {recognizer.model!r} is not in {models_dir}: "
                           f"babelfish models fetch whisper-{recognizer.model}")
    translator = settings.translator
    local_translator = "translator" not in served
    if translator.engine == "llama" and local_translator:
        if not _have("llama_cpp"):
            missing.append("translator.engine 'llama' needs llama-cpp-python (scripts/install-llama.sh)")
        if translator.model_path is not None:
            if not Path(translator.model_path).is_file():
                missing.append(f"translator.model_path: no file {translator.model_path}")
        else:
            packaged("gemma-3-270m" if translator.model == "gemma-270m" else translator.model, "translator.model")
    elif translator.engine == "ctranslate2" and local_translator:
        from babelfish.engines.ctranslate2_mt import CTranslate2Translator

        ct2 = CTranslate2Translator(translator.ctranslate2_models, models_dir)
        lacking = []
        for source, target in itertools.permutations(sorted({primary(tag) for tag in languages}), 2):
            try:
                ct2.model_path(source, target)
            except EngineError:
                lacking.append(f"{source}-{target}")
        if lacking:
            missing.append(f"translator.engine 'ctranslate2' has no model for {', '.join(lacking)}: babelfish models "
                           f"fetch opus-mt-{lacking[0]} (or argos-{lacking[0]}), or set translator.ctranslate2_models")
    if settings.synthesizer.engine == "local" and "synthesizer" not in served:
        missing += _missing_voices(settings, languages)
    return missing


def _missing_voices(settings: Settings, languages: list[str]) -> list[str]:
    from babelfish.core.worker import EngineError
    from babelfish.engines.catalog import resolve
    from babelfish.engines.piper import voice_files
    from babelfish.engines.voices import Voices, mbrola_installed

    voices = Voices(settings.synthesizer.voices, Path(settings.models_dir))
    missing: list[str] = []
    for spec in dict.fromkeys(voices.spec(tag) for tag in languages):
        engine, _, voice = spec.partition(":")
        if engine == "kokoro":
            kokoro = resolve("kokoro-82m")
            if kokoro is None or not kokoro.installed(Path(settings.models_dir)):
                missing.append("the Kokoro voices' packaged model is not installed (pip install babelfish again)")
        elif engine == "piper":
            try:
                voice_files(voice, Path(settings.models_dir))
            except (EngineError, ImportError) as exc:
                missing.append(str(exc))
        elif engine == "mbrola" and not mbrola_installed(voice):
            missing.append(f"MBROLA voice {voice!r} is not installed (make voices-nonfree)")
        if engine in ("kokoro", "piper", "espeak", "mbrola") and not shutil.which("espeak-ng"):
            missing.append(f"voice {spec!r} needs espeak-ng: apt-get install espeak-ng")
    return list(dict.fromkeys(missing))


def _writable(path: Path) -> bool:
    """Whether this user can create ``path`` or write in it (the nearest existing folder decides)."""
    for folder in (path, *path.parents):
        if folder.exists():
            return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
    return False


def check(settings: Settings) -> Report:
    """Everything a production start needs, after the settings loaded; cheap (no model, no network)."""
    from babelfish.config.settings import ConfigError
    from babelfish.engines import choice, support

    report = Report()
    try:
        choice.check(settings)
    except ConfigError as exc:
        report.errors.append(str(exc))
    security = settings.security
    if not security.operator_token:
        report.errors.append("security.operator_token is not set: the console and /rooms, /captions, /metrics are "
                             "off (set BABELFISH_SECURITY__OPERATOR_TOKEN in the environment file)")
    if not security.signature_secret:  # empty, as the install script leaves it, is unset too
        report.errors.append("security.signature_secret is not set: anyone could post webhooks (set "
                             "BABELFISH_SECURITY__SIGNATURE_SECRET to the Vonage account's signature secret)")
    if not (settings.public_url or "").startswith("https://"):
        report.errors.append(f"public_url must be the https:// address Vonage reaches (now {settings.public_url!r})")
    for name, path in (("data_dir", Path(settings.data_dir)), ("models_dir", Path(settings.models_dir))):
        if not _writable(path):
            report.errors.append(f"{name} {path} is not writable by this user")
    languages = offered_languages(settings)
    report.errors += missing_models(settings, languages)

    base = (settings.public_url or "").rstrip("/")
    voices = ""
    if settings.synthesizer.engine == "local":
        from babelfish.engines.voices import Voices

        chosen = Voices(settings.synthesizer.voices, Path(settings.models_dir))
        by_engine: dict[str, list[str]] = {}
        for tag in languages:
            by_engine.setdefault(chosen.spec(tag).partition(":")[0], []).append(tag)
        voices = " (" + "; ".join(f"{engine}: {', '.join(tags)}" for engine, tags in by_engine.items()) + ")"
    translator = settings.translator.engine + (f" {settings.translator.model}" if settings.translator.engine == "llama"
                                               else "")
    report.summary = [
        f"listens on    {settings.host}:{settings.port}",
        f"public URL    {base} (answer URL {base}/answer, event URL {base}/event)",
        f"languages     {', '.join(languages)}" + (" (the menu offers them)" if support.menu(settings) else
                                                       " (menu off: numbers map and default_languages)"),
        f"engines       recognizer {settings.recognizer.engine} {settings.recognizer.model}, translator "
        f"{translator}, synthesizer {settings.synthesizer.engine}{voices}",
        f"operator      console on, signed webhooks on, transcript API "
        f"{'on' if settings.transcripts.token else 'off (transcripts.token unset)'}",
        f"state         {settings.database_url}, models in {settings.models_dir}",
    ]
    return report
