"""The chain for one connected leg: its audio in, segmented, recognized, translated for every other leg of
the room and played to them.

    websocket frames -> [inbound queue] -> segmenter -> [utterance queue] -> recognizer
        -> translator (once per listener language) -> synthesizer -> listener's playback queue

How speech becomes utterances is :mod:`babelfish.pipeline.listen`'s: segmented here, with speculation on
pauses, or streamed to a speech translator (Azure), whose final results enter the utterance queue already
understood. With Vonage talk as the output,
the listener's playback queue hands the text to Vonage instead of synthesizing it.

Queues are bounded; when one overflows the oldest entry is dropped and logged, never memory grown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid as uuidlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from babelfish.config.settings import ConfigError, Settings
from babelfish.core import audio, languages
from babelfish.core.events import BargeIn, CaptionHub, LanguageSwitched, LegEvent, Speaking
from babelfish.core.glossary import GlossaryBook
from babelfish.core.languages import same_language
from babelfish.core.utterance import Utterance
from babelfish.pipeline.echo import EchoCanceller
from babelfish.pipeline.fanout import FanOut
from babelfish.pipeline.identify import LanguageFollower
from babelfish.pipeline.listen import Listening, SegmentedListening, StreamedListening
from babelfish.pipeline.playback import Item, Playback
from babelfish.pipeline.protocols import Engines, Output
from babelfish.pipeline.recognize import Heard
from babelfish.pipeline.segment import (
    Event,
    Segmenter,
    Speech,
    SpeechStarted,
)
from babelfish.pipeline.synthesize import speak, speak_in
from babelfish.pipeline.understand import Understanding, Understood

if TYPE_CHECKING:
    from babelfish.core.rooms import Leg

log = logging.getLogger(__name__)

GATE_LEVEL = 160  # about -46 dBFS peak: below it a frame is line noise, not a voice
GATE_HOLD_FRAMES = 25  # 0.5 s: pauses between words pass through


class LegSession:
    """A leg while its websocket is open."""

    def __init__(self, leg: Leg, engines: Engines, hub: CaptionHub, settings: Settings, rate: int,
                 playback: Playback, on_record: Callable[[Leg, Utterance], None] | None = None,
                 on_language: Callable[[Leg, str], None] | None = None, language_decided: bool = True,
                 glossary: GlossaryBook | None = None) -> None:
        self.leg = leg
        self.on_record = on_record  # every finished utterance, for the transcript
        self.on_language = on_language  # the leg switched to the language it is heard speaking
        self.follower = LanguageFollower(settings.languages, decided=language_decided)
        self.understand = Understanding(leg, engines, settings, self.follower, glossary)
        self.fanout = FanOut(leg, engines, settings, hub, self._publish, on_record)
        self.engines = engines
        self.hub = hub
        self.settings = settings
        self.rate = rate  # the socket's rate: what the leg sends and hears
        # what the segmenter, echo canceller and recognizer run at (Silero takes 8 or 16 kHz: 24 kHz is halved)
        self.listen_rate = audio.listen_rate(rate)
        self._down = audio.StreamResampler(rate, self.listen_rate) if self.listen_rate != rate else None
        self.playback: Output = playback
        interpretation = settings.interpretation
        self.segmenter = Segmenter(
            engines.detector_factory(self.listen_rate), self.listen_rate, settings.segmenter,
            turn_model=engines.turn_model,
            clause_pause_ms=interpretation.clause_pause_ms if interpretation.simultaneous else 0,
            max_clause_s=interpretation.max_clause_s if interpretation.simultaneous else 0.0)
        limits = settings.limits
        self.synthesize_timeout_s = limits.synthesize_timeout_s
        self.echo = (EchoCanceller(self.listen_rate) if settings.turns.echo_suppression and engines.talk is None
                     else None)
        self.on_queue_wait: Callable[[float], None] | None = None  # seconds a frame waited for the segmenter
        self.last_voice = time.monotonic()  # when this leg last started speaking
        if engines.talk is not None:  # Vonage speaks into the call: no frames go out (and none can echo)
            self.playback = engines.talk.playback(leg.id, leg.language, max_items=settings.turns.max_pending)
        else:
            if self.echo is not None:
                echo = self.echo
                if self._down is None:
                    playback.on_frame = lambda frame, at: echo.played(audio.pcm_to_float(frame), at)
                else:
                    played = audio.StreamResampler(rate, self.listen_rate)
                    playback.on_frame = lambda frame, at: echo.played(audio.pcm_to_float(played.push(frame)), at)
            def notice() -> AsyncIterator[bytes]:  # in the leg's language of the moment
                text, lang = languages.prompt("skipped", leg.language)
                return speak_in(engines.voices, lang, text, rate, self.synthesize_timeout_s)

            playback.notice = notice
        self.inbound: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue(limits.inbound_frames)
        self.utterances: asyncio.Queue[tuple[Speech, Understood | None]] = asyncio.Queue(limits.pending_utterances)
        self.listening = True  # False once the server drains: the speech in progress is the last
        self.started = time.monotonic()
        self.dropped_frames = 0
        self.dropped_utterances = 0
        # wall clock = monotonic + offset, for records
        self._wall_offset = time.time() - time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self.hearing: Listening = (
            StreamedListening(leg, engines, settings, self._queue_utterance, self._publish, self.listen_rate)
            if engines.speech_translator is not None else
            SegmentedListening(leg, engines, settings, self.segmenter, self.understand, self._queue_utterance,
                               self._publish, lambda: not self.utterances.empty() or self._interpreting,
                               self.listen_rate))
        self._converters: dict[str, audio.StreamResampler] = {}
        self._gate_hold = 0

    def start(self) -> None:
        self.playback.start()
        self._tasks = [
            asyncio.create_task(self._segment_loop(), name=f"segment-{self.leg.id}"),
            asyncio.create_task(self._interpret_loop(), name=f"interpret-{self.leg.id}"),
        ]
        self.hearing.start()

    def feed(self, frame: bytes) -> None:
        """One inbound 20 ms frame (called by the websocket receive loop). Listeners who share this leg's
        language hear it directly; the others get it translated."""
        if not self.listening:
            return
        live = self.fanout.live_listeners()
        if live and self._gate_open(frame):  # the gate's level is only worth measuring for a listener
            self.fanout.voice(frame, self.rate, live)
        if self._down is not None:
            frame = self._down.push(frame)
            if not frame:
                return
        if self.inbound.full():
            self.inbound.get_nowait()
            self.dropped_frames += 1
            if self.dropped_frames % 50 == 1:
                log.warning("leg %s: segmenter behind, dropped %d frames", self.leg.id, self.dropped_frames)
        self.inbound.put_nowait((frame, time.monotonic()))

    def _gate_open(self, frame: bytes) -> bool:
        """A noise gate for the live voice: a silent line is not forwarded (it would only add its hiss to
        the listener's mix); speech opens it and it stays open ``GATE_HOLD_FRAMES`` after."""
        if np.abs(np.frombuffer(frame, dtype="<i2")).max(initial=0) >= GATE_LEVEL:
            self._gate_hold = GATE_HOLD_FRAMES
        elif self._gate_hold > 0:
            self._gate_hold -= 1
        return self._gate_hold > 0

    @property
    def hears_live(self) -> bool:
        """Whether other callers' voices can be mixed into what this leg hears (not when Vonage's talk
        speaks into the call instead of our frames: same-language legs then hear the words spoken)."""
        return isinstance(self.playback, Playback)

    def hear_directly(self, source: str, frame: bytes, rate: int) -> None:
        """A frame of a same-language leg's voice, played live to this leg (resampled when rates differ)."""
        if not isinstance(self.playback, Playback):
            return  # Vonage's talk speaks into this call: no frames of ours reach it
        if rate != self.rate:
            converter = self._converters.get(source)
            if converter is None:
                converter = self._converters[source] = audio.StreamResampler(rate, self.rate)
            frame = converter.push(frame)
            if not frame:
                return
        self.playback.hear(source, frame)

    async def close(self, drain_s: float = 30.0) -> None:
        """The socket is gone: finish the speech in progress (the transcript keeps it), then stop."""
        self.hearing.flushed(self.segmenter.flush(time.monotonic()))
        await self.hearing.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_s):
                while not self.utterances.empty() or self._interpreting:
                    await asyncio.sleep(0.05)
                await self.fanout.drain()
        self.hearing.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.playback.stop()

    def say(self, text: str, language: str, label: str = "notice") -> None:
        """Speak a fixed sentence (a notice) to this leg."""
        self.playback.enqueue(Item(source=speak_in(self.engines.voices, language, text, self.rate,
                                                   self.synthesize_timeout_s),
                                   label=label, text=text, language=language))

    async def stop_listening(self) -> None:
        """Take no more speech from this leg; the speech in progress becomes its last utterance."""
        if not self.listening:
            return
        self.listening = False
        # the segmenter belongs to the VAD worker thread: flush it there, after any push in progress
        self.hearing.flushed(await self.engines.vad_worker.run(self.segmenter.flush, time.monotonic()))

    @property
    def idle(self) -> bool:
        """Nothing left to do: no utterance waiting or being interpreted, nothing left to play."""
        return self.utterances.empty() and not self._interpreting and self.playback.idle

    @property
    def dropped(self) -> dict[str, int]:
        """Work shed by this leg because a stage fell behind (for metrics)."""
        return {"frames": self.dropped_frames, "utterances": self.dropped_utterances,
                "playback_backlog": self.playback.dropped_items, "playback_stale": self.playback.stale_items}

    # -- segmenting -------------------------------------------------------------------------------------

    async def _segment_loop(self) -> None:
        while True:
            frame, at = await self.inbound.get()
            if self.on_queue_wait is not None:
                self.on_queue_wait(time.monotonic() - at)
            batch = [frame]
            while not self.inbound.empty() and len(batch) < 50:
                frame, at = self.inbound.get_nowait()
                batch.append(frame)
            samples = audio.pcm_to_float(b"".join(batch))
            events = await self.engines.vad_worker.run(self._segment, samples, at)
            for event in events:
                if isinstance(event, SpeechStarted):
                    self.last_voice = time.monotonic()
                    self.hearing.speech_started()
                    self._publish(Speaking)
                    if self.settings.turns.barge_in and self.playback.playing:
                        log.info("leg %s: barge-in, clearing playback", self.leg.id)
                        await self.playback.clear()
                        self._publish(BargeIn)
                else:
                    self.hearing.turn(event)
            self.hearing.after_batch()

    def _segment(self, samples: np.ndarray, at: float) -> list[Event]:
        """Runs on the VAD worker thread: remove our own echo, then segment what is left (and stream it to
        the speech translator, if there is one)."""
        if self.echo is not None:
            samples = self.echo.clean(samples, at)
        self.hearing.hear(samples, at)
        return self.segmenter.push(samples, at)

    def _queue_utterance(self, speech: Speech, understood: Understood | None = None) -> None:
        if self.utterances.full():
            self.utterances.get_nowait()
            self.dropped_utterances += 1
            log.warning("leg %s: recognizer behind, dropped an utterance", self.leg.id)
        self.utterances.put_nowait((speech, understood))

    # -- interpreting -----------------------------------------------------------------------------------

    _interpreting = False

    async def _interpret_loop(self) -> None:
        while True:
            speech, understood = await self.utterances.get()
            self._interpreting = True
            try:
                await self.interpret(speech, understood)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("leg %s: utterance failed", self.leg.id)
            finally:
                self._interpreting = False

    def _follow(self, heard: Heard | None) -> None:
        """The utterance's language, heard: switch the leg when the follower says so."""
        if heard is None:
            return
        was_decided = self.follower.decided
        new = self.follower.observe(self.leg.language, heard)
        if new is None:
            return
        previous, self.leg.language = self.leg.language, new
        log.info("leg %s: heard speaking %s (%.2f), was %s", self.leg.id, new, heard.confidence or 0.0, previous)
        self._publish(LanguageSwitched, previous=previous, confidence=heard.confidence)
        if was_decided:  # a caller who chose, or was followed already, is told; a first guess is just fixed
            text, lang = languages.prompt("language_switched", new)
            self.say(text, lang, label="language notice")
        if self.on_language is not None:
            try:
                self.on_language(self.leg, new)
            except Exception:  # noqa: BLE001 - remembering it must not take the call down
                log.exception("leg %s: remembering the language failed", self.leg.id)

    async def interpret(self, speech: Speech, understood: Understood | None = None) -> Utterance:
        """One utterance to every listener; ``understood`` when a speech translator already did the work."""
        leg = self.leg
        record = Utterance(
            id=uuidlib.uuid4().hex[:12], room=leg.room.id if leg.room else "", leg=leg.id,
            language=leg.language, started_at=speech.started_at + self._wall_offset,
            ended_at=speech.ended_at + self._wall_offset, cut=speech.cut, clause=speech.clause,
        )
        record.latencies["end_of_turn"] = speech.detected_at - speech.ended_at
        listeners = [other for other in leg.listeners() if other.session is not None]
        targets = [other.language for other in listeners]
        # same-language listeners heard this utterance's frames directly (as languages were while it was said)
        heard_directly = {other.id for other in listeners if same_language(leg.language, other.language)}
        understood, record.speculated = await self.hearing.understood(speech, understood, targets)
        record.source_text = understood.text
        if understood.heard is not None:
            record.language = understood.language or record.language
            record.language_confidence = understood.heard.confidence
            if leg.interprets is None:  # an interpreter speaks both languages: theirs is not followed
                self._follow(understood.heard)
            # a listener whose first guess moved off the speaker's language now wants another one
            moved = [other.language for other in listeners if other.language not in targets]
            if moved and understood.text:
                await self.understand.translate_now(understood, moved)
                targets = [*targets, *moved]
        record.translations = {t: understood.translations.get(t, "") for t in targets} if understood.text else {}
        record.latencies.update(understood.latencies)
        record.terms_checked, record.terms_missed = understood.terms_checked, list(understood.terms_missed)
        if understood.fault is not None:
            record.fail(understood.fault)
        if record.error and not record.source_text:
            self.fanout.lost(record, listeners)
            return record
        if not record.source_text:
            return record  # noise, breath, a cough: nothing was said
        self.fanout.deliver(record, speech, understood, listeners, heard_directly)
        return record

    def _publish(self, event: type[LegEvent], **fields: Any) -> None:
        """An event about this leg's speech on the caption feed (in its language unless ``fields`` say)."""
        fields.setdefault("language", self.leg.language)
        self.hub.publish(event(room=self.leg.room.id if self.leg.room else "", leg=self.leg.id, **fields))


async def one_shot(engines: Engines, samples: np.ndarray, rate: int, source: str,
                   target: str) -> tuple[str, str, np.ndarray, dict[str, float]]:
    """One recording through recognizer, translator and synthesizer (``babelfish translate``)."""
    if engines.recognizer is None or engines.translator is None:
        raise ConfigError("babelfish translate needs a recognizer and a translator of its own: "
                          "recognizer.engine 'whisper' (a speech translator works on calls only)")
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    text = await engines.recognizer.transcribe(samples, rate, source)
    timings["recognize"] = time.monotonic() - t0
    t1 = time.monotonic()
    if same_language(source, target):
        translation = text
    else:
        translation = await engines.translator.translate(text, source, target) if text else ""
    timings["translate"] = time.monotonic() - t1
    t2 = time.monotonic()
    voice = engines.voices.get(target)
    out_rate = 22050
    chunks: list[np.ndarray] = []
    first: float | None = None
    pieces: AsyncIterator[bytes] = speak(voice, translation, out_rate)
    async for pcm in pieces:
        if first is None:
            first = time.monotonic() - t2
        chunks.append(audio.pcm_to_float(pcm))
    timings["synthesize"] = time.monotonic() - t2
    timings["synthesize_first_sentence"] = first or 0.0
    out = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    log.debug("one-shot %s->%s: %r -> %r", languages.primary(source), languages.primary(target), text,
              translation)
    return text, translation, out, timings
