"""What the pipeline runs on: the engines of each stage, as interfaces (the stage modules define them;
:mod:`babelfish.engines` implements them and :func:`babelfish.engines.registry.load_engines` loads them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from babelfish.core.worker import Worker
from babelfish.pipeline.recognize import Recognizer
from babelfish.pipeline.segment import VoiceDetector
from babelfish.pipeline.speech_translate import SpeechTranslator
from babelfish.pipeline.synthesize import VoiceLibrary
from babelfish.pipeline.translate import Translator

if TYPE_CHECKING:
    from babelfish.telephony.talk import VonageTalk


@dataclass
class Engines:
    """Everything model-backed, loaded once per process and shared by every call."""

    recognizer: Recognizer | None  # None when a speech translator does its work
    translator: Translator | None
    voices: VoiceLibrary
    detector_factory: Callable[[int], VoiceDetector]
    vad_worker: Worker
    speech_translator: SpeechTranslator | None = None  # recognizes and translates in one (Azure)
    talk: VonageTalk | None = None  # Vonage speaks translations into the call instead of our voices
