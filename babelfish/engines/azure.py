"""Azure AI Speech engines: speech translation (recognize and translate in one) and neural voices.

Azure AI Speech is the successor of the Microsoft Translator Speech API the original 2018 hack used. Both
engines go through ``azure-cognitiveservices-speech`` (``pip install 'babelfish[azure]'``):

- :class:`AzureTranslationStream`: a leg's PCM is written into a ``PushAudioInputStream`` read by a
  ``TranslationRecognizer`` in continuous mode. Azure finds the utterances itself (its end-of-turn silence is
  set to ``segmenter.end_of_turn_ms``) and reports ``recognizing`` (partial) and ``recognized`` (final)
  events with the text and a translation per target language. The SDK calls back on its own threads; each
  event is handed to the event loop with ``call_soon_threadsafe``.
- :class:`AzureSynthesizer`: ``SpeechSynthesizer`` in a raw 16-bit mono PCM output format at the leg's own
  rate (8 or 16 kHz), so nothing is resampled.

The SDK module is passed in (``sdk=``) so tests can stand fakes in for the objects that would reach the
network, while the real enums and audio formats are used.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from babelfish.config.pipeline import AzureSettings
from babelfish.config.settings import ConfigError
from babelfish.core import audio, languages
from babelfish.core.worker import EngineError
from babelfish.pipeline.speech_translate import SpeechTranslation

log = logging.getLogger(__name__)

TICKS_PER_SECOND = 10_000_000  # Azure offsets and durations are in 100 ns ticks
CLOSE_TIMEOUT_S = 10.0


def import_sdk() -> ModuleType:
    """``azure.cognitiveservices.speech``, or a startup error that says how to install it."""
    try:
        import azure.cognitiveservices.speech as speechsdk
    except ImportError as exc:
        raise ConfigError("the Azure engines need the Azure Speech SDK: pip install 'babelfish[azure]' "
                          "(azure-cognitiveservices-speech)") from exc
    return speechsdk


def check_credentials(settings: AzureSettings, chosen: str = "the Azure engines") -> None:
    """Raise :class:`ConfigError` naming the variable to set unless the credentials make a valid pair."""
    if settings.key and settings.token:
        raise ConfigError(f"{chosen}: set BABELFISH_AZURE__KEY or BABELFISH_AZURE__TOKEN, not both")
    if not settings.key and not settings.token:
        raise ConfigError(f"{chosen} needs Azure Speech credentials: set BABELFISH_AZURE__KEY (or "
                          "BABELFISH_AZURE__TOKEN) and BABELFISH_AZURE__REGION (or BABELFISH_AZURE__ENDPOINT)")
    if settings.region and settings.endpoint:
        raise ConfigError(f"{chosen}: set BABELFISH_AZURE__REGION or BABELFISH_AZURE__ENDPOINT, not both")
    if not settings.region and not settings.endpoint:
        raise ConfigError(f"{chosen} needs the Speech resource's region: set BABELFISH_AZURE__REGION (e.g. "
                          "westeurope) or BABELFISH_AZURE__ENDPOINT")
    if settings.token and not settings.region:
        raise ConfigError(f"{chosen}: an authorization token (BABELFISH_AZURE__TOKEN) goes with "
                          "BABELFISH_AZURE__REGION, not an endpoint")


def translation_code(tag: str) -> str:
    """Azure's translation target code for a leg language: ``de-DE`` -> ``de``, ``zh-CN`` -> ``zh-Hans``."""
    tag = tag.replace("_", "-")
    lang = languages.primary(tag)
    region = tag.split("-")[1].upper() if "-" in tag else ""
    if lang == "zh":
        return "zh-Hant" if region in ("TW", "HK", "MO", "HANT") else "zh-Hans"
    if (lang, region) in (("pt", "PT"), ("fr", "CA")):
        return f"{lang}-{region.lower()}"
    return lang


class AzureSpeech:
    """An Azure Speech resource: the credentials and the SDK; opens translation streams and makes voices."""

    name = "azure"

    def __init__(self, settings: AzureSettings, *, sdk: ModuleType | None = None, end_of_turn_ms: int = 500,
                 chosen: str = "the Azure engines") -> None:
        check_credentials(settings, chosen)
        self.settings = settings
        self.sdk = sdk if sdk is not None else import_sdk()
        self.end_of_turn_ms = end_of_turn_ms
        self.voices = {k.replace("_", "-").lower(): v for k, v in settings.voices.items()}

    def _auth(self) -> dict[str, str]:
        s = self.settings
        auth: dict[str, str] = {"subscription": s.key} if s.key else {"auth_token": s.token or ""}
        auth.update({"region": s.region} if s.region else {"endpoint": s.endpoint or ""})
        return auth

    def speech_config(self) -> Any:
        return self.sdk.SpeechConfig(**self._auth())

    def translation_config(self, language: str) -> Any:
        config = self.sdk.translation.SpeechTranslationConfig(**self._auth())
        config.speech_recognition_language = languages.regional(language)
        config.set_property(self.sdk.PropertyId.Speech_SegmentationSilenceTimeoutMs, str(self.end_of_turn_ms))
        return config

    def open(self, language: str, targets: list[str], rate: int,
             on_result: Callable[[SpeechTranslation], None]) -> AzureTranslationStream:
        return AzureTranslationStream(self, language, targets, rate, on_result, asyncio.get_running_loop())

    def voice_name(self, language: str) -> str:
        """The configured voice for a language (regional tag first, then primary), or ``""``."""
        tag = languages.regional(language).lower()
        return self.voices.get(tag, self.voices.get(languages.primary(tag), ""))

    def synthesizer(self, voice: str) -> AzureSynthesizer:
        return AzureSynthesizer(self, voice)


class AzureTranslationStream:
    """One leg's audio through Azure's ``TranslationRecognizer``; results go to ``on_result`` on ``loop``."""

    def __init__(self, speech: AzureSpeech, language: str, targets: list[str], rate: int,
                 on_result: Callable[[SpeechTranslation], None], loop: asyncio.AbstractEventLoop) -> None:
        sdk = speech.sdk
        self.sdk = sdk
        self.language = language
        self.rate = rate
        self._on_result = on_result
        self._loop = loop
        self._codes: dict[str, str] = {}  # listener language tag -> Azure target code
        self._ended = asyncio.Event()
        self._closed = False
        self.bytes_written = 0
        self.config = speech.translation_config(language)
        for code in self._new_codes(targets):
            self.config.add_target_language(code)
        stream_format = sdk.audio.AudioStreamFormat(samples_per_second=rate, bits_per_sample=16, channels=1)
        self.push = sdk.audio.PushAudioInputStream(stream_format=stream_format)
        self.recognizer = sdk.translation.TranslationRecognizer(
            translation_config=self.config, audio_config=sdk.audio.AudioConfig(stream=self.push))
        self.recognizer.recognizing.connect(self._recognizing)
        self.recognizer.recognized.connect(self._recognized)
        self.recognizer.canceled.connect(self._canceled)
        self.recognizer.session_stopped.connect(self._session_stopped)

    def _new_codes(self, targets: list[str]) -> list[str]:
        new = []
        known = set(self._codes.values())
        for tag in targets:
            if tag in self._codes or languages.primary(tag) == languages.primary(self.language):
                continue
            code = translation_code(tag)
            self._codes[tag] = code
            if code not in known:
                known.add(code)
                new.append(code)
        return new

    async def start(self) -> None:
        future = self.recognizer.start_continuous_recognition_async()
        await asyncio.to_thread(future.get)
        log.info("Azure speech translation started: %s -> %s", self.language, sorted(self._codes.values()))

    def write(self, pcm: bytes) -> None:
        if not self._closed:
            self.push.write(pcm)
            self.bytes_written += len(pcm)

    def add_targets(self, targets: list[str]) -> None:
        for code in self._new_codes(targets):
            self.recognizer.add_target_language(code)

    async def close(self) -> None:
        """Close the push stream (Azure finishes the utterance in progress), wait for the end, then stop."""
        if self._closed:
            return
        self._closed = True
        self.push.close()
        try:
            await asyncio.wait_for(self._ended.wait(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("Azure speech translation did not end within %.0f s", CLOSE_TIMEOUT_S)
        try:
            future = self.recognizer.stop_continuous_recognition_async()
            await asyncio.wait_for(asyncio.to_thread(future.get), CLOSE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the leg is gone either way
            log.warning("stopping Azure speech translation: %s", exc)

    # -- SDK callbacks: on the SDK's threads --------------------------------------------------------------

    def _hand(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            pass

    def _result(self, result: Any, final: bool) -> SpeechTranslation:
        found = {code.lower(): text for code, text in (result.translations or {}).items()}
        return SpeechTranslation(
            final=final, text=result.text or "",
            translations={tag: found.get(code.lower(), "") for tag, code in self._codes.items()},
            offset_s=result.offset / TICKS_PER_SECOND, duration_s=result.duration / TICKS_PER_SECOND,
        )

    def _recognizing(self, event: Any) -> None:
        if event.result.reason == self.sdk.ResultReason.TranslatingSpeech and event.result.text:
            self._hand(self._on_result, self._result(event.result, final=False))

    def _recognized(self, event: Any) -> None:
        reason = event.result.reason
        if reason in (self.sdk.ResultReason.TranslatedSpeech, self.sdk.ResultReason.RecognizedSpeech):
            if event.result.text:
                self._hand(self._on_result, self._result(event.result, final=True))
        # NoMatch: noise, nothing was said

    def _canceled(self, event: Any) -> None:
        details = event.cancellation_details
        if details.reason != self.sdk.CancellationReason.EndOfStream:
            code = getattr(details.code, "name", details.code)
            error = f"Azure speech translation canceled: {details.reason.name} ({code}): {details.error_details}"
            log.error("%s", error)
            self._hand(self._on_result, SpeechTranslation(final=True, error=error))
        self._hand(self._ended.set)

    def _session_stopped(self, event: Any) -> None:
        self._hand(self._ended.set)


class AzureSynthesizer:
    """An Azure neural voice (or the service's default voice for a locale), as raw PCM at the leg's rate."""

    name = "azure"
    rates = (8000, 16000, 24000)
    _FORMATS = {8000: "Raw8Khz16BitMonoPcm", 16000: "Raw16Khz16BitMonoPcm", 24000: "Raw24Khz16BitMonoPcm"}

    def __init__(self, speech: AzureSpeech, voice: str) -> None:
        self.speech = speech
        self.voice = voice  # a voice name ("de-DE-KatjaNeural") or a locale ("de-DE": its default voice)
        self._synthesizers: dict[int, Any] = {}

    def _synthesizer(self, rate: int) -> Any:
        if rate not in self._synthesizers:
            sdk = self.speech.sdk
            config = self.speech.speech_config()
            config.set_speech_synthesis_output_format(getattr(sdk.SpeechSynthesisOutputFormat, self._FORMATS[rate]))
            if self.voice.count("-") >= 2:
                config.speech_synthesis_voice_name = self.voice
            else:
                config.speech_synthesis_language = self.voice
            self._synthesizers[rate] = sdk.SpeechSynthesizer(speech_config=config, audio_config=None)
        return self._synthesizers[rate]

    def synthesize_pcm_sync(self, text: str, rate: int) -> bytes:
        sdk = self.speech.sdk
        result = self._synthesizer(rate).speak_text_async(text).get()
        if result.reason == sdk.ResultReason.SynthesizingAudioCompleted:
            return bytes(result.audio_data)
        if result.reason == sdk.ResultReason.Canceled:
            details = result.cancellation_details
            raise EngineError(f"Azure voice {self.voice}: {details.reason.name}: {details.error_details}")
        raise EngineError(f"Azure voice {self.voice}: unexpected result {result.reason}")

    async def synthesize_pcm(self, text: str, rate: int) -> bytes:
        """16-bit mono PCM of ``text`` at ``rate`` (one of :attr:`rates`)."""
        return await asyncio.to_thread(self.synthesize_pcm_sync, text, rate)

    async def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        return audio.pcm_to_float(await self.synthesize_pcm(text, 24000)), 24000
