"""What the pipeline runs on: the engines of each stage, as interfaces (the stage modules define them;
:mod:`babelfish.engines` implements them and :func:`babelfish.engines.registry.load_engines` loads them),
and the output a listener hears through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from babelfish.core.utterance import Fault
from babelfish.core.worker import Worker
from babelfish.pipeline.playback import Item
from babelfish.pipeline.recognize import Recognizer
from babelfish.pipeline.segment import TurnModel, VoiceDetector
from babelfish.pipeline.speech_translate import SpeechTranslator
from babelfish.pipeline.synthesize import VoiceLibrary
from babelfish.pipeline.translate import Translator


class Output(Protocol):
    """What a listener hears through, one item at a time: our frames on its websocket
    (:class:`babelfish.pipeline.playback.Playback`) or Vonage speaking into its call
    (:class:`babelfish.telephony.talk.TalkPlayback`)."""

    dropped_items: int  # items dropped because the queue was full
    stale_items: int  # items dropped because they would have started too late

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def playing(self) -> bool: ...

    @property
    def idle(self) -> bool: ...

    def enqueue(self, item: Item) -> None: ...

    def skip_notice(self) -> None: ...

    async def clear(self, why: Fault = ...) -> None: ...


class TalkService(Protocol):
    """Something that speaks translations into the listener's call itself (Vonage talk): no frames of ours
    go out, so each listener's :class:`Output` comes from it."""

    def playback(self, call_uuid: str, language: str, *, max_items: int = 3) -> Output: ...


@dataclass
class Engines:
    """Everything model-backed, loaded once per process and shared by every call."""

    recognizer: Recognizer | None  # None when a speech translator does its work
    translator: Translator | None
    voices: VoiceLibrary
    detector_factory: Callable[[int], VoiceDetector]
    vad_worker: Worker
    speech_translator: SpeechTranslator | None = None  # recognizes and translates in one (Azure)
    talk: TalkService | None = None  # Vonage speaks translations into the call instead of our voices
    turn_model: TurnModel | None = None  # whether a turn sounds complete (segmenter.end_of_turn)
