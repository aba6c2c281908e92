"""Seed compatibility: the original 2018 hack's settings, mapped onto ours.

The original (``npentrel/babelfish``: Nexmo + the Microsoft Translator Speech API) was configured in two
Python files. ``config.py``: ``HOSTNAME`` (its ngrok host), ``CALLER`` (the caller's number), ``LANGUAGE1`` /
``VOICE1`` (the caller's language and Nexmo voice), ``LANGUAGE2`` / ``VOICE2`` (the other person's);
``secrets.py``: ``NEXMO_NUMBER``, ``NEXMO_APPLICATION_ID``, ``NEXMO_PRIVATE_KEY``, ``NEXMO_API_KEY``,
``NEXMO_API_SECRET``, ``MICROSOFT_TRANSLATION_SPEECH_CLIENT_SECRET``.

They are read from those files (``--config path/to/config.py``; a ``secrets.py`` beside it is read too; the
files are parsed, never executed) and from environment variables of the same names (except ``HOSTNAME``,
which shells and containers set to the machine's name). ``BABELFISH_*`` variables and a TOML file win.

=====================================  =================================================================
original                               babelfish
=====================================  =================================================================
``NEXMO_NUMBER``                       ``vonage.number``
``NEXMO_APPLICATION_ID``               ``vonage.application_id``
``NEXMO_PRIVATE_KEY``                  ``vonage.private_key`` (PEM text or a file path)
``CALLER`` + ``LANGUAGE1``             ``numbers = {CALLER: LANGUAGE1}``
``LANGUAGE1``, ``LANGUAGE2``           ``default_languages = [LANGUAGE1, LANGUAGE2]``: the other person
                                       (an unmapped number) gets ``LANGUAGE2``
``VOICE1``, ``VOICE2``                 the voice for ``LANGUAGE1`` / ``LANGUAGE2``: ``piper:…`` /
                                       ``espeak:…`` -> ``synthesizer.voices``; an Azure neural voice
                                       (``de-DE-KatjaNeural``) -> ``azure.voices``. A Nexmo voice name
                                       (``Marlene``, ``Kimberly``) is retired: Vonage's talk now picks
                                       the voice by language and ``vonage.talk_styles``; it is ignored
                                       with a warning
``HOSTNAME``                           ``public_url = https://HOSTNAME``
``NEXMO_API_KEY``, ``_SECRET``         not needed: REST calls use the application's JWT
``MICROSOFT_TRANSLATION_SPEECH_...``   not mapped: that API was retired and its key does not work with
                                       Azure AI Speech (``azure.key``, ``azure.region``); a warning says so
=====================================  =================================================================
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from babelfish.core import languages

log = logging.getLogger(__name__)

NAMES = ("NEXMO_NUMBER", "NEXMO_APPLICATION_ID", "NEXMO_PRIVATE_KEY", "NEXMO_API_KEY", "NEXMO_API_SECRET",
         "MICROSOFT_TRANSLATION_SPEECH_CLIENT_SECRET", "HOSTNAME", "CALLER", "LANGUAGE1", "VOICE1", "LANGUAGE2",
         "VOICE2")
NOT_FROM_ENVIRONMENT = ("HOSTNAME",)
_AZURE_VOICE = re.compile(r"^[a-z]{2,3}-[A-Za-z]{2,4}(-[A-Za-z]+)?-\w+Neural\w*$")


def read_file(path: Path) -> dict[str, str]:
    """The string (or number) constants a legacy ``config.py`` / ``secrets.py`` assigns at top level."""
    values: dict[str, str] = {}
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in NAMES and node.value.value is not None:
                    values[target.id] = str(node.value.value)
    return values


def collect(config: Path | None, environ: Mapping[str, str]) -> dict[str, str]:
    """Legacy values from ``config`` (and a ``secrets.py`` beside it), then the environment."""
    values: dict[str, str] = {}
    if config is not None:
        for path in (config, config.with_name("secrets.py")):
            if path.is_file():
                values.update(read_file(path))
    values.update({name: environ[name] for name in NAMES if name in environ and name not in NOT_FROM_ENVIRONMENT})
    return {k: v.strip() for k, v in values.items() if v.strip()}


def to_settings(values: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The settings the legacy ``values`` stand for, as nested data, and warnings about what was not mapped."""
    out: dict[str, Any] = {}
    warnings: list[str] = []
    vonage = {key: values[name] for key, name in (("number", "NEXMO_NUMBER"), ("application_id",
              "NEXMO_APPLICATION_ID"), ("private_key", "NEXMO_PRIVATE_KEY")) if name in values}
    if vonage:
        out["vonage"] = vonage
    if "HOSTNAME" in values:
        host = values["HOSTNAME"]
        out["public_url"] = host if "://" in host else f"https://{host}"
    pair = [values[name] for name in ("LANGUAGE1", "LANGUAGE2") if name in values]
    if pair:
        out["default_languages"] = pair
    if "CALLER" in values and "LANGUAGE1" in values:
        out["numbers"] = {values["CALLER"].lstrip("+"): values["LANGUAGE1"]}
    for voice_name, language_name in (("VOICE1", "LANGUAGE1"), ("VOICE2", "LANGUAGE2")):
        voice, language = values.get(voice_name), values.get(language_name)
        if not voice or not language:
            continue
        lang = languages.primary(language)
        if ":" in voice:
            out.setdefault("synthesizer", {}).setdefault("voices", {})[lang] = voice
        elif _AZURE_VOICE.match(voice):
            out.setdefault("azure", {}).setdefault("voices", {})[lang] = voice
        else:
            warnings.append(f"{voice_name}={voice!r} is a retired Nexmo voice name: Vonage's talk picks the voice "
                            f"by language ({language}) and style (vonage.talk_styles); the local voice for {lang} "
                            "is set with synthesizer.voices")
    if "MICROSOFT_TRANSLATION_SPEECH_CLIENT_SECRET" in values:
        warnings.append("MICROSOFT_TRANSLATION_SPEECH_CLIENT_SECRET is for the retired Microsoft Translator Speech "
                        "API: for the Azure engines create an Azure AI Speech resource and set BABELFISH_AZURE__KEY "
                        "and BABELFISH_AZURE__REGION")
    return out, warnings


class LegacySource(PydanticBaseSettingsSource):
    """A settings source of the lowest priority: the original's settings."""

    def __init__(self, settings_cls: type[BaseSettings], config: Path | None, environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.config: Path | None = config  # type: ignore[assignment]  # the base class names its model_config so
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is produced at once in __call__

    def __call__(self) -> dict[str, Any]:
        values = collect(self.config, self.environ)
        if not values:
            return {}
        data, warnings = to_settings(values)
        for warning in warnings:
            log.warning("%s", warning)
        log.info("read the original's settings: %s", ", ".join(sorted(values)))
        return data
