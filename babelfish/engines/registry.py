"""Loading the engines the settings choose, once per process: the one place that turns engine names into
objects. The pipeline only sees the interfaces (:class:`babelfish.pipeline.stream.Engines`)."""

from __future__ import annotations

import logging
import time

from babelfish.config.settings import Settings
from babelfish.core.worker import Worker
from babelfish.engines import choice
from babelfish.engines.factories import load_recognizer, load_translator
from babelfish.engines.smart_turn import SmartTurn
from babelfish.engines.voices import Voices
from babelfish.pipeline.protocols import Engines
from babelfish.pipeline.recognize import IdentifyingRecognizer
from babelfish.pipeline.segment import SileroDetector

log = logging.getLogger(__name__)


def load_engines(settings: Settings) -> Engines:
    """The engines the settings choose; a choice that cannot work raises :class:`ConfigError` first."""
    t0 = time.monotonic()
    choice.check(settings)
    azure = choice.load_azure(settings)
    combined = azure if settings.recognizer.engine == "azure" else None
    remote = choice.load_ray(settings)  # stages served by Ray Serve deployments (ray.stages)
    engines = Engines(
        recognizer=None if combined else remote.get("recognizer") or load_recognizer(settings),
        translator=None if combined else remote.get("translator") or load_translator(settings),
        voices=remote.get("synthesizer") or Voices(
            settings.synthesizer.voices, settings.models_dir,
            azure=azure if settings.synthesizer.engine == "azure" else None,
            kokoro_threads=settings.synthesizer.kokoro_threads, piper_threads=settings.synthesizer.piper_threads),
        detector_factory=SileroDetector,
        vad_worker=Worker("vad"),
        speech_translator=combined,
        talk=choice.load_talk(settings),
        turn_model=SmartTurn() if settings.segmenter.end_of_turn == "smart-turn" else None,
    )
    if settings.languages.detect != "off" and not isinstance(engines.recognizer, IdentifyingRecognizer):
        log.warning("languages.detect = %r, but the recognizer (%s) does not identify languages: every "
                    "utterance is taken to be in its leg's language", settings.languages.detect,
                    getattr(engines.recognizer or engines.speech_translator, "name", "none"))
    if engines.talk is None:
        for tag in settings.default_languages:
            engines.voices.get(tag)  # load the default voices now rather than on the first utterance
    log.info("engines loaded in %.1f s", time.monotonic() - t0)
    return engines
