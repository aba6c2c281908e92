"""A stand-in for ``azure.cognitiveservices.speech`` at the boundary where the SDK would reach the network.

The real SDK's enums, ``PropertyId``, ``SpeechConfig``, ``SpeechTranslationConfig`` and ``AudioStreamFormat``
are used as they are (they work offline), so the engine is checked against the real names and the real
configuration objects. Only the push stream, the recognizer and the synthesizer are fakes: the push stream
keeps what is written, the recognizer fires events shaped like the SDK's (``TranslationRecognitionEventArgs``
with a ``result`` carrying ``reason``, ``text``, ``translations``, ``offset`` and ``duration`` in 100 ns
ticks; ``TranslationRecognitionCanceledEventArgs`` with ``cancellation_details``) from its own thread, as the
SDK does, and the synthesizer answers with raw PCM.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

speechsdk = pytest.importorskip("azure.cognitiveservices.speech")
TICKS = 10_000_000


class Signal:
    """``EventSignal``: ``connect(callback)``; the SDK calls the callbacks on its own threads."""

    def __init__(self) -> None:
        self.callbacks: list[Any] = []

    def connect(self, callback: Any) -> None:
        self.callbacks.append(callback)

    def fire(self, event: Any) -> None:
        for callback in self.callbacks:
            callback(event)


class Done:
    """``ResultFuture`` of a call that has completed."""

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


class PushStream:
    """``PushAudioInputStream``: keeps the audio written into it."""

    def __init__(self, stream_format: Any) -> None:
        self.stream_format = stream_format
        self.data = bytearray()
        self.closed = False
        self.wrote = threading.Event()
        self.on_close: Any = None

    def write(self, buffer: bytes) -> None:
        assert not self.closed, "write after close"
        self.data += buffer
        self.wrote.set()

    def close(self) -> None:
        self.closed = True
        if self.on_close is not None:
            self.on_close()


class AudioConfig:
    def __init__(self, stream: PushStream) -> None:
        self.stream = stream


@dataclass
class Result:
    """``TranslationRecognitionResult`` as the SDK builds it."""

    reason: Any
    text: str = ""
    translations: dict[str, str] = field(default_factory=dict)
    offset: int = 0
    duration: int = 0


def translating(text: str, translations: dict[str, str], offset_s: float, duration_s: float) -> Any:
    return SimpleNamespace(result=Result(speechsdk.ResultReason.TranslatingSpeech, text, translations,
                                         int(offset_s * TICKS), int(duration_s * TICKS)), session_id="s1")


def translated(text: str, translations: dict[str, str], offset_s: float, duration_s: float) -> Any:
    return SimpleNamespace(result=Result(speechsdk.ResultReason.TranslatedSpeech, text, translations,
                                         int(offset_s * TICKS), int(duration_s * TICKS)), session_id="s1")


def no_match(offset_s: float) -> Any:
    return SimpleNamespace(result=Result(speechsdk.ResultReason.NoMatch, "", {}, int(offset_s * TICKS), 0),
                           session_id="s1")


def canceled(reason: Any, code: Any, details: str) -> Any:
    cancellation = SimpleNamespace(reason=reason, code=code, error_details=details)
    return SimpleNamespace(result=Result(speechsdk.ResultReason.Canceled), cancellation_details=cancellation,
                           reason=reason, error_code=code, error_details=details, session_id="s1")


class TranslationRecognizer:
    """``TranslationRecognizer`` in continuous mode. ``fire`` raises events from another thread, as the SDK
    does; closing the push stream ends the session (``final`` is recognized first, if given)."""

    instances: list[TranslationRecognizer] = []

    def __init__(self, translation_config: Any, audio_config: AudioConfig) -> None:
        assert isinstance(translation_config, speechsdk.translation.SpeechTranslationConfig)
        self.config = translation_config
        self.stream = audio_config.stream
        self.stream.on_close = self._end_of_stream
        self.recognizing, self.recognized, self.canceled = Signal(), Signal(), Signal()
        self.session_started, self.session_stopped = Signal(), Signal()
        self.started = self.stopped = False
        self.added: list[str] = []
        self.final_at_close: Any = None
        TranslationRecognizer.instances.append(self)

    @property
    def language(self) -> str:
        return self.config.speech_recognition_language

    @property
    def target_languages(self) -> list[str]:
        return [*self.config.target_languages, *self.added]

    def start_continuous_recognition_async(self) -> Done:
        self.started = True
        return Done()

    def stop_continuous_recognition_async(self) -> Done:
        self.stopped = True
        return Done()

    def add_target_language(self, language: str) -> None:
        self.added.append(language)

    def fire(self, signal: str, event: Any) -> None:
        thread = threading.Thread(target=getattr(self, signal).fire, args=(event,))
        thread.start()
        thread.join()

    def _end_of_stream(self) -> None:
        def run() -> None:
            if self.final_at_close is not None:
                self.recognized.fire(self.final_at_close)
            self.canceled.fire(canceled(speechsdk.CancellationReason.EndOfStream,
                                        speechsdk.CancellationErrorCode.NoError, ""))
            self.session_stopped.fire(SimpleNamespace(session_id="s1"))

        threading.Thread(target=run).start()


class SpeechSynthesizer:
    """``SpeechSynthesizer`` with no audio output: ``speak_text_async(text).get()`` gives raw PCM."""

    instances: list[SpeechSynthesizer] = []
    pcm = bytes(range(256)) * 5  # 1280 bytes: a pattern that resampling would not leave intact
    fail_with: str | None = None

    def __init__(self, speech_config: Any, audio_config: Any = "default speaker") -> None:
        assert audio_config is None, "audio must come back as data, not play on a speaker"
        self.config = speech_config
        self.texts: list[str] = []
        SpeechSynthesizer.instances.append(self)

    @property
    def output_format(self) -> str:
        return self.config.get_property(speechsdk.PropertyId.SpeechServiceConnection_SynthOutputFormat)

    def speak_text_async(self, text: str) -> Done:
        self.texts.append(text)
        if self.fail_with is not None:
            details = SimpleNamespace(reason=speechsdk.CancellationReason.Error, error_details=self.fail_with)
            return Done(SimpleNamespace(reason=speechsdk.ResultReason.Canceled, audio_data=b"",
                                        cancellation_details=details))
        return Done(SimpleNamespace(reason=speechsdk.ResultReason.SynthesizingAudioCompleted, audio_data=self.pcm))


def fake_sdk() -> tuple[SimpleNamespace, list[dict[str, Any]]]:
    """The module to pass as ``sdk=``, and the keyword arguments every ``AudioStreamFormat`` was made with."""
    formats: list[dict[str, Any]] = []

    def audio_stream_format(**kwargs: Any) -> Any:
        formats.append(kwargs)
        return speechsdk.audio.AudioStreamFormat(**kwargs)  # the real one: it checks the arguments

    TranslationRecognizer.instances = []
    SpeechSynthesizer.instances = []
    SpeechSynthesizer.fail_with = None
    sdk = SimpleNamespace(
        ResultReason=speechsdk.ResultReason, CancellationReason=speechsdk.CancellationReason,
        CancellationErrorCode=speechsdk.CancellationErrorCode, PropertyId=speechsdk.PropertyId,
        SpeechSynthesisOutputFormat=speechsdk.SpeechSynthesisOutputFormat, SpeechConfig=speechsdk.SpeechConfig,
        SpeechSynthesizer=SpeechSynthesizer,
        translation=SimpleNamespace(SpeechTranslationConfig=speechsdk.translation.SpeechTranslationConfig,
                                    TranslationRecognizer=TranslationRecognizer),
        audio=SimpleNamespace(AudioStreamFormat=audio_stream_format, PushAudioInputStream=PushStream,
                              AudioConfig=AudioConfig),
    )
    return sdk, formats
