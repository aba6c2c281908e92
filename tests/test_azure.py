"""The Azure engines at the SDK boundary (no key is available here): a fake recognizer fires events shaped
like the SDK's from its own threads, a fake push stream keeps the audio, the real SDK's enums and
configuration objects are used. See ``tests/azure_fake.py``."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from babelfish.config.pipeline import AzureSettings
from babelfish.config.settings import Settings
from babelfish.core import audio
from babelfish.core.worker import EngineError
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.engines.azure import AzureSpeech, translation_code
from babelfish.engines.voices import Voices
from babelfish.pipeline.speech_translate import SpeechTranslation
from babelfish.pipeline.synthesize import speak
from babelfish.server.serving import background
from tests import azure_fake
from tests.azure_fake import canceled, fake_sdk, no_match, speechsdk, translated, translating
from tests.conftest import dial_pair, double_engines

AZURE = AzureSettings(key="k" * 32, region="westeurope", voices={"de": "de-DE-KatjaNeural"})



def test_translation_codes() -> None:
    assert [translation_code(t) for t in ("de-DE", "en-GB", "zh-CN", "zh-TW", "pt-PT", "pt-BR", "fr-CA")] == [
        "de", "en", "zh-Hans", "zh-Hant", "pt-pt", "pt", "fr-ca"]


async def test_events_from_sdk_threads_reach_the_loop_as_partial_and_final_results() -> None:
    sdk, formats = fake_sdk()
    speech = AzureSpeech(AZURE, sdk=sdk, end_of_turn_ms=450)
    results: list[tuple[SpeechTranslation, int]] = []
    stream = speech.open("de-DE", ["en-GB", "de-DE", "en-US", "fr-FR"], 8000,
                         lambda r: results.append((r, threading.get_ident())))
    recognizer = azure_fake.TranslationRecognizer.instances[0]
    # the real configuration objects, as the engine set them up
    assert recognizer.language == "de-DE"
    assert recognizer.target_languages == ["en", "fr"]  # one per language, not the speaker's own
    assert recognizer.config.get_property(speechsdk.PropertyId.Speech_SegmentationSilenceTimeoutMs) == "450"
    assert formats == [{"samples_per_second": 8000, "bits_per_sample": 16, "channels": 1}]
    await stream.start()
    assert recognizer.started

    stream.write(b"\x01\x00" * 160)
    assert bytes(recognizer.stream.data) == b"\x01\x00" * 160
    recognizer.fire("recognizing", translating("Guten", {"en": "Good"}, 1.5, 0.3))
    recognizer.fire("recognized", no_match(2.0))  # noise: nothing to say
    recognizer.fire("recognized", translated("Guten Tag.", {"en": "Good day.", "fr": "Bonjour."}, 1.5, 0.8))
    await asyncio.sleep(0.05)

    loop_thread = threading.get_ident()
    assert [thread for _, thread in results] == [loop_thread, loop_thread]  # handed over to the loop
    partial, final = (r for r, _ in results)
    assert partial == SpeechTranslation(final=False, text="Guten", translations={
        "en-GB": "Good", "en-US": "Good", "fr-FR": ""}, offset_s=1.5, duration_s=0.3)
    assert final.final and final.text == "Guten Tag." and final.error is None
    assert final.translations == {"en-GB": "Good day.", "en-US": "Good day.", "fr-FR": "Bonjour."}
    assert (final.offset_s, final.duration_s) == (1.5, 0.8)

    stream.add_targets(["en-GB", "it-IT"])  # a new partner's language, added once
    assert recognizer.added == ["it"]

    # the end of the audio: Azure finishes the utterance in progress, then the session ends
    recognizer.final_at_close = translated("Tschüss.", {"en": "Bye.", "fr": "Salut.", "it": "Ciao."}, 3.0, 0.5)
    await stream.close()
    assert recognizer.stream.closed and recognizer.stopped
    assert results[-1][0].text == "Tschüss." and results[-1][0].translations["it-IT"] == "Ciao."
    stream.write(b"\x00\x00")  # late audio after the end is ignored, not an error


async def test_a_canceled_session_reports_the_error() -> None:
    sdk, _ = fake_sdk()
    results: list[SpeechTranslation] = []
    AzureSpeech(AZURE, sdk=sdk).open("en-GB", ["de-DE"], 16000, results.append)
    recognizer = azure_fake.TranslationRecognizer.instances[0]
    recognizer.fire("canceled", canceled(speechsdk.CancellationReason.Error,
                                         speechsdk.CancellationErrorCode.AuthenticationFailure,
                                         "WebSocket upgrade failed: Authentication error (401)"))
    await asyncio.sleep(0.05)
    assert len(results) == 1 and results[0].final and not results[0].text
    assert results[0].error == ("Azure speech translation canceled: Error (AuthenticationFailure): "
                                "WebSocket upgrade failed: Authentication error (401)")


async def test_token_and_endpoint_credentials_reach_the_sdk_config() -> None:
    sdk, _ = fake_sdk()
    AzureSpeech(AzureSettings(token="tok", region="westeurope"), sdk=sdk).open("de-DE", ["en-GB"], 8000, print)
    endpoint = "wss://westeurope.stt.speech.microsoft.com/speech/universal/v2"
    AzureSpeech(AzureSettings(key="k", endpoint=endpoint), sdk=sdk).open("de-DE", ["en-GB"], 8000, print)
    by_token, by_endpoint = (r.config for r in azure_fake.TranslationRecognizer.instances)
    assert by_token.authorization_token == "tok"
    assert by_token.region == "westeurope"
    assert by_endpoint.get_property(speechsdk.PropertyId.SpeechServiceConnection_Endpoint) == endpoint


@pytest.mark.parametrize("rate, fmt", [(8000, "raw-8khz-16bit-mono-pcm"), (16000, "raw-16khz-16bit-mono-pcm")])
async def test_azure_voice_returns_raw_pcm_at_the_legs_rate(rate: int, fmt: str) -> None:
    sdk, _ = fake_sdk()
    voices = Voices({}, models_dir=None, azure=AzureSpeech(AZURE, sdk=sdk))  # type: ignore[arg-type]
    assert voices.spec("de-DE") == "azure:de-DE-KatjaNeural"
    assert voices.spec("fr-FR") == "azure:fr-FR"  # no voice set: the service's default for the locale
    chunks = [c async for c in speak(voices.get("de-DE"), "Guten Tag. Wie geht es?", rate)]
    synthesizer = azure_fake.SpeechSynthesizer.instances[0]
    assert synthesizer.texts == ["Guten Tag.", "Wie geht es?"]  # sentence by sentence
    assert synthesizer.config.speech_synthesis_voice_name == "de-DE-KatjaNeural"
    assert synthesizer.output_format == fmt
    size = audio.frame_bytes(rate)
    padded = azure_fake.SpeechSynthesizer.pcm + b"\x00" * (-len(azure_fake.SpeechSynthesizer.pcm) % size)
    assert chunks == [padded, padded]  # Azure's own samples, only cut into 20 ms frames: nothing resampled

    [c async for c in speak(voices.get("fr-FR"), "Bonjour.", rate)]
    french = azure_fake.SpeechSynthesizer.instances[1]
    assert french.config.speech_synthesis_language == "fr-FR" and not french.config.speech_synthesis_voice_name


async def test_a_canceled_synthesis_is_an_engine_error() -> None:
    sdk, _ = fake_sdk()
    azure_fake.SpeechSynthesizer.fail_with = "Unsupported voice de-DE-Nobody."
    synth = AzureSpeech(AZURE, sdk=sdk).synthesizer("de-DE-Nobody")
    with pytest.raises(EngineError, match="Azure voice de-DE-Nobody: Error: Unsupported voice de-DE-Nobody."):
        await synth.synthesize_pcm("Hallo.", 8000)


async def test_a_call_through_azure_speech_translation(settings: Settings, speech) -> None:
    """The leg's audio streams to the (fake) service; its partial result is a caption, its final result an
    utterance the partner hears, with the times Azure reported."""
    samples, rate = speech
    sdk, _ = fake_sdk()
    engines = double_engines()
    engines.recognizer = engines.translator = None  # the speech translator does both: nothing else may run
    engines.speech_translator = AzureSpeech(AZURE, sdk=sdk)
    async with background(settings, engines) as url:
        feed = CaptionFeed(url)
        await feed.start()
        async with FakeVonage(url) as vonage:
            german, english = await dial_pair(vonage)
            async with asyncio.timeout(5):
                while len(azure_fake.TranslationRecognizer.instances) < 2:  # one per connected leg
                    await asyncio.sleep(0.02)
            recognizers = {r.language: r for r in azure_fake.TranslationRecognizer.instances}
            assert recognizers["de-DE"].target_languages == ["en"] and recognizers["en-GB"].target_languages == ["de"]
            german_azure = recognizers["de-DE"]
            assert german_azure.started

            turn = await german.say(samples, rate)
            pcm = bytes(german_azure.stream.data)
            assert len(pcm) >= samples.size * 2 * german.rate // rate // 2  # the leg's audio, at its rate
            assert np.abs(audio.pcm_to_float(pcm)).max() > 0.1  # speech, not just the silence between turns
            # (times in the stream are audio time: the events below stay within what has already streamed)
            german_azure.fire("recognizing", translating("Guten", {"en": "Good"}, 0.2, 0.3))
            german_azure.fire("recognized", translated("Guten Tag.", {"en": "Good day."}, 0.2, 0.6))
            assert await english.wait_heard(after=turn.started, quiet_s=0.5, timeout=20)

            record = (await feed.wait_utterances(1))[0]
            assert record["leg"] == german.leg and record["source_text"] == "Guten Tag."
            assert record["translations"] == {"en-GB": "Good day."} and record["error"] is None
            assert record["ended_at"] - record["started_at"] == pytest.approx(0.6, abs=0.01)
            assert record["started_at"] < time.time() and record["latencies"]["first_frame"] > 0
            partials = [e for e in feed.events if e["type"] == "partial"]
            assert partials and partials[0]["text"] == "Guten" and partials[0]["translations"] == {"en-GB": "Good"}
            finals = [e for e in feed.events if e["type"] == "final"]
            assert finals[0]["text"] == "Guten Tag." and finals[0]["translation"] == "Good day."

            await german.hang_up()
            await asyncio.sleep(0.3)
            assert german_azure.stream.closed and german_azure.stopped  # the stream ends with the leg
        await feed.stop()
