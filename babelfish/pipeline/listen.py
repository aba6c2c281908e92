"""How a leg's speech becomes utterances to interpret: two ways, one interface (:class:`Listening`).

- :class:`SegmentedListening` (recognizer and translator of our own): the segmenter finds the turns. A pause
  inside a turn starts understanding it at once (a speculation), kept if the pause turns out to be the end
  of the turn; while the speaker talks, partial captions are recognized every ``partial_every_ms``.
- :class:`StreamedListening` (a speech translator, Azure): the leg's audio streams to the service as it
  comes, the service finds the utterances itself, and its final results arrive already understood.

Either hands ``(speech, understood or None)`` to the leg's utterance queue, and :meth:`Listening.understood`
gives the interpreter what was said in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from babelfish.config.settings import Settings
from babelfish.core import audio
from babelfish.core.events import EngineFailed, Partial
from babelfish.core.languages import same_language
from babelfish.pipeline.agreement import LocalAgreement
from babelfish.pipeline.protocols import Engines
from babelfish.pipeline.segment import Event, Pause, Segmenter, Speech
from babelfish.pipeline.speech_translate import SpeechTranslation, TranslationStream
from babelfish.pipeline.understand import Understanding, Understood

if TYPE_CHECKING:
    from babelfish.core.rooms import Leg

log = logging.getLogger(__name__)

Queue = Callable[[Speech, "Understood | None"], None]  # into the leg's utterance queue
Publish = Callable[..., None]  # a caption event about this leg: its type, then its fields


class Listening(Protocol):
    def start(self) -> None: ...

    def hear(self, samples: np.ndarray, at: float) -> None:
        """The leg's audio, echo removed (on the VAD worker thread, before the segmenter sees it)."""

    def speech_started(self) -> None: ...

    def turn(self, event: Event) -> None:
        """A segmenter event other than the start of speech: a pause, or the end of a turn."""

    def after_batch(self) -> None:
        """A batch of frames went through the segmenter (the moment for a partial caption)."""

    def flushed(self, speeches: list[Speech]) -> None:
        """The speech in progress when the leg stopped listening or its socket closed."""

    async def close(self) -> None:
        """The socket is gone: finish the speech in progress (its utterance still joins the queue)."""

    def stop(self) -> None:
        """The last utterance was interpreted: stop all work."""

    async def understood(self, speech: Speech, given: Understood | None,
                         targets: list[str]) -> tuple[Understood, bool]:
        """What was said in ``speech`` and its translations into ``targets``; True when a speculation
        started on it was kept."""
        ...


class SegmentedListening:
    def __init__(self, leg: Leg, engines: Engines, settings: Settings, segmenter: Segmenter,
                 understand: Understanding, queue: Queue, publish: Publish, busy: Callable[[], bool],
                 rate: int) -> None:
        self.leg = leg
        self.engines = engines
        self.settings = settings
        self.segmenter = segmenter
        self.understand = understand
        self.queue = queue
        self.publish = publish
        self.busy = busy  # an utterance is waiting or being interpreted: no partial caption meanwhile
        self.rate = rate
        self._speculation: tuple[float, list[str], asyncio.Task[Understood]] | None = None
        self._last_partial = 0.0
        self._partial_task: asyncio.Task[None] | None = None
        interpretation = settings.interpretation
        # simultaneous mode: partials of the clause in progress, their stable words by LocalAgreement
        self._agreement = LocalAgreement() if interpretation.simultaneous else None
        self._partial_every = (interpretation.partial_every_ms if interpretation.simultaneous
                               else settings.segmenter.partial_every_ms) / 1000

    def start(self) -> None:
        pass

    def hear(self, samples: np.ndarray, at: float) -> None:
        pass

    def speech_started(self) -> None:
        self._drop_speculation()
        if self._agreement is not None:
            self._agreement.reset()

    def turn(self, event: Event) -> None:
        if isinstance(event, Pause):
            self._speculate(event)
        elif isinstance(event, Speech):
            if self._agreement is not None:
                self._agreement.reset()  # the next partial is of the next clause
                if self._partial_task is not None:
                    self._partial_task.cancel()
            self.queue(event, None)

    def flushed(self, speeches: list[Speech]) -> None:
        for speech in speeches:
            self.queue(speech, None)

    async def close(self) -> None:
        pass

    def stop(self) -> None:
        self._drop_speculation()
        if self._partial_task is not None:
            self._partial_task.cancel()

    async def understood(self, speech: Speech, given: Understood | None,
                         targets: list[str]) -> tuple[Understood, bool]:
        speculation, self._speculation = self._speculation, None
        if (given is None and speculation is not None and speculation[0] == speech.ended_at and not speech.cut
                and set(targets) <= set(speculation[1])):
            with contextlib.suppress(asyncio.CancelledError):
                given = await speculation[2]
            return given or await self.understand(speech.audio, speech.rate, targets), True
        if speculation is not None:
            self._speculation = speculation
            self._drop_speculation()
        return given or await self.understand(speech.audio, speech.rate, targets), False

    def _speculate(self, pause: Pause) -> None:
        """The speaker paused: start understanding now; kept if the pause becomes the end of the turn."""
        self._drop_speculation()
        targets = [other.language for other in self.leg.listeners() if other.session is not None]
        task = asyncio.create_task(self.understand(pause.audio, pause.rate, targets))
        self._speculation = (pause.ended_at, targets, task)

    def _drop_speculation(self) -> None:
        if self._speculation is not None:
            task = self._speculation[2]
            task.cancel()
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result().cancel()  # recognized already: stop the translations it is writing
            self._speculation = None

    def after_batch(self) -> None:
        every = self._partial_every
        if not every or not self.segmenter.in_speech:
            return
        now = time.monotonic()
        running = self._partial_task is not None and not self._partial_task.done()
        if running or now - self._last_partial < every or self.busy() or self.understand.writing:
            return
        self._last_partial = now
        pcm = self.segmenter.current_audio()
        if pcm.size < self.rate // 2:
            return
        self._partial_task = asyncio.create_task(self._partial(pcm))

    async def _partial(self, pcm: np.ndarray) -> None:
        recognizer = self.engines.recognizer
        if recognizer is None:
            return
        try:
            async with asyncio.timeout(self.settings.limits.recognize_timeout_s):
                text = await recognizer.transcribe(pcm, self.rate, self.leg.language)
        except Exception:  # noqa: BLE001 - a partial caption is best effort (a timeout included)
            log.exception("partial recognition failed")
            return
        if not text or not self.segmenter.in_speech:
            return
        if self._agreement is None:
            self.publish(Partial, text=text)
            return
        stable, tentative = self._agreement.update(text)
        self.publish(Partial, text=" ".join(filter(None, (stable, tentative))), stable=stable)


class StreamedListening:
    def __init__(self, leg: Leg, engines: Engines, settings: Settings, queue: Queue, publish: Publish,
                 rate: int) -> None:
        self.leg = leg
        self.engines = engines
        self.settings = settings
        self.queue = queue
        self.publish = publish
        self.rate = rate
        self.stream: TranslationStream | None = None  # from start() on
        self._t0: float | None = None  # monotonic time of the stream's first sample
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        assert self.engines.speech_translator is not None
        settings = self.settings
        targets = [*settings.default_languages, *settings.numbers.values(),
                   *(other.language for other in self.leg.listeners())]
        self.stream = self.engines.speech_translator.open(self.leg.language, targets, self.rate,
                                                          self._on_translation)
        self._task = asyncio.create_task(self._start(self.stream), name=f"stream-{self.leg.id}")

    async def _start(self, stream: TranslationStream) -> None:
        try:
            await stream.start()
        except Exception:  # noqa: BLE001 - the leg stays up; its speech is not translated
            log.exception("leg %s: speech translation did not start", self.leg.id)

    def hear(self, samples: np.ndarray, at: float) -> None:
        if self.stream is None:
            return
        if self._t0 is None:
            self._t0 = at - samples.size / self.rate
        self.stream.write(audio.float_to_pcm(samples))

    def speech_started(self) -> None:
        if self.stream is not None:
            self.stream.add_targets([other.language for other in self.leg.listeners()])

    def turn(self, event: Event) -> None:
        pass  # the speech translator finds the utterances itself

    def after_batch(self) -> None:
        pass  # partial captions come from the service

    def flushed(self, speeches: list[Speech]) -> None:
        pass  # the service finishes the utterance in progress when the stream closes

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.close()  # the utterance in progress joins the queue

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def understood(self, speech: Speech, given: Understood | None,
                         targets: list[str]) -> tuple[Understood, bool]:
        return given or Understood(), False

    def _on_translation(self, result: SpeechTranslation) -> None:
        """A result of the speech translator, on the event loop: a partial caption, or an utterance."""
        if result.error:
            self.publish(EngineFailed, text=result.error)
            return
        if not result.final:
            self.publish(Partial, text=result.text, translations=result.translations)
            return
        now = time.monotonic()
        started = (self._t0 if self._t0 is not None else now) + result.offset_s
        speech = Speech(np.zeros(0, dtype=np.float32), self.rate, started_at=started,
                        ended_at=min(started + result.duration_s, now), detected_at=now)
        translations = dict(result.translations)
        for other in self.leg.listeners():
            if same_language(self.leg.language, other.language):
                translations[other.language] = result.text
        self.queue(speech, Understood(text=result.text, translations=translations))
