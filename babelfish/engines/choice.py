"""Which engine runs each stage (``recognizer.engine``, ``translator.engine``, ``synthesizer.engine``).

The choice is checked before any model loads: a chosen engine that lacks its credentials or its package stops
the server at startup with a one-line :class:`ConfigError` that names the setting to set. Nothing falls back
to an engine the user did not choose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from babelfish.config.settings import ConfigError, Settings

if TYPE_CHECKING:
    from babelfish.engines.azure import AzureSpeech
    from babelfish.telephony.talk import VonageTalk


def azure_stages(settings: Settings) -> list[str]:
    """The stages that chose Azure, as settings names."""
    chosen = [("recognizer.engine", settings.recognizer.engine), ("translator.engine", settings.translator.engine),
              ("synthesizer.engine", settings.synthesizer.engine)]
    return [f"{name} 'azure'" for name, engine in chosen if engine == "azure"]


def check(settings: Settings) -> None:
    """Raise :class:`ConfigError` for a choice that cannot work; cheap (no model, no network)."""
    recognizer, translator = settings.recognizer.engine, settings.translator.engine
    if (recognizer == "azure") != (translator == "azure"):
        raise ConfigError("Azure speech translation recognizes and translates in one step: set both "
                          "BABELFISH_RECOGNIZER__ENGINE=azure and BABELFISH_TRANSLATOR__ENGINE=azure "
                          f"(now {recognizer!r} and {translator!r})")
    stages = azure_stages(settings)
    if stages:
        from babelfish.engines.azure import check_credentials, import_sdk

        check_credentials(settings.azure, " and ".join(stages))
        import_sdk()
    served = set(settings.ray.stages)
    if served & {"recognizer", "translator"} and (recognizer == "azure" or translator == "azure"):
        raise ConfigError("ray.stages: Azure speech translation is a cloud service already; serve only local "
                          "engines on Ray (recognizer.engine 'whisper', translator.engine 'llama' or 'ctranslate2')")
    if "synthesizer" in served and settings.synthesizer.engine != "local":
        raise ConfigError(f"ray.stages has 'synthesizer' but synthesizer.engine is {settings.synthesizer.engine!r}: "
                          "Ray serves the local voices only (synthesizer.engine 'local')")
    if served:
        try:
            import ray.serve  # noqa: F401
        except ImportError:
            raise ConfigError("ray.stages needs Ray Serve: pip install 'babelfish[scale]'") from None
    if settings.synthesizer.engine == "vonage-talk":
        from babelfish.telephony.rest import read_private_key

        vonage = settings.vonage
        if not vonage.application_id or not vonage.private_key:
            raise ConfigError("synthesizer.engine 'vonage-talk' needs the Vonage application: set "
                              "BABELFISH_VONAGE__APPLICATION_ID and BABELFISH_VONAGE__PRIVATE_KEY (PEM or file path)")
        read_private_key(vonage.private_key)


def load_azure(settings: Settings) -> AzureSpeech | None:
    """The Azure Speech resource, when any stage chose Azure."""
    stages = azure_stages(settings)
    if not stages:
        return None
    from babelfish.engines.azure import AzureSpeech

    return AzureSpeech(settings.azure, end_of_turn_ms=settings.segmenter.end_of_turn_ms, chosen=" and ".join(stages))


def load_ray(settings: Settings) -> dict[str, Any]:
    """Engines calling the Ray Serve deployments of the stages in ``ray.stages`` (none: all local)."""
    if not settings.ray.stages:
        return {}
    from babelfish.engines import ray_serve

    return ray_serve.connect(settings)


def load_talk(settings: Settings) -> VonageTalk | None:
    """Vonage's talk into the call, when ``synthesizer.engine`` is ``vonage-talk``."""
    if settings.synthesizer.engine != "vonage-talk":
        return None
    from babelfish.telephony.talk import VonageTalk

    return VonageTalk.from_settings(settings.vonage)
