"""Who hears what of one speaker's utterance: each listener the translation in their language (spoken clause
by clause while it is still being written), nothing more for a same-language listener who heard the voice
live, a short notice where it was lost. Once every listener is done, the utterance is remembered for the
room's context and its record kept (transcript) and published (captions). Sessions never reach into each
other for this: a listener is reached through its playback queue only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from babelfish.config.settings import Settings
from babelfish.core.events import CaptionHub, Final, Skipped, UtteranceDone
from babelfish.core.languages import same_language
from babelfish.core.rooms import Leg, Room, hears_live
from babelfish.core.utterance import Failure, Fault, Utterance
from babelfish.pipeline.playback import BACKLOG, STALE, Item
from babelfish.pipeline.protocols import Engines
from babelfish.pipeline.segment import Speech
from babelfish.pipeline.synthesize import speak_clauses, speak_in
from babelfish.pipeline.understand import Understood

log = logging.getLogger(__name__)

LATE = {Failure.TRANSLATE_TIMEOUT, Failure.SYNTHESIZE_TIMEOUT, Failure.RECOGNIZE_TIMEOUT}


def skip_reason(failure: Failure | None, fault: Fault | None = None) -> str:
    """Why a listener did not hear a translation, in the words the listener and the operator see."""
    if fault is BACKLOG:
        return "backlog"
    if fault is STALE or failure in LATE:
        return "late"
    return "failed"


class FanOut:
    """One speaking leg's utterances to its listeners."""

    def __init__(self, leg: Leg, engines: Engines, settings: Settings, hub: CaptionHub,
                 publish: Callable[..., None], on_record: Callable[[Leg, Utterance], None] | None) -> None:
        self.leg = leg
        self.engines = engines
        self.settings = settings
        self.hub = hub
        self._publish = publish
        self.on_record = on_record
        self.synthesize_timeout_s = settings.limits.synthesize_timeout_s
        self._captions: set[asyncio.Task[None]] = set()  # captions and records waiting for a translation
        self._remembered: set[str] = set()  # records already in the room's context (simultaneous mode)
        self._preparing: set[asyncio.Task[None]] = set()  # the translator preparing the next prompts

    def live_listeners(self) -> list[Leg]:
        """The listeners who hear the speaker's own voice, live (:func:`~babelfish.core.rooms.hears_live`:
        those of the same language, interpreters, an interpreter's callers) whose output takes our audio
        (not Vonage's talk)."""
        return [other for other in self.leg.others() if other.session is not None and other.session.hears_live
                and hears_live(other, self.leg)]

    def interpreted(self, record: Utterance, listener: Leg) -> bool:
        """The listener hears an interpreter for this utterance, not the machine (decided as it is delivered:
        an interpreter who dropped is not waited for)."""
        room = self.leg.room
        return room is not None and room.interpreter(record.language, listener.language) is not None

    def voice(self, frame: bytes, rate: int, listeners: list[Leg]) -> None:
        """One frame of the speaker's voice to each of ``listeners`` (see :meth:`live_listeners`)."""
        for listener in listeners:
            if listener.session is not None:
                listener.session.hear_directly(self.leg.id, frame, rate)

    def lost(self, record: Utterance, listeners: list[Leg]) -> None:
        """Nothing was understood of an utterance (an engine failed): they hear that something was lost,
        not silence, and the record is kept."""
        for listener in listeners:
            if listener.session is not None:
                listener.session.playback.skip_notice()
            self._skipped(record, listener, skip_reason(record.failure))
        self.finish(record)

    async def drain(self) -> None:
        """Wait for the captions and records of translations still being written."""
        while self._captions:
            await asyncio.gather(*list(self._captions), return_exceptions=True)

    def deliver(self, record: Utterance, speech: Speech, understood: Understood, listeners: list[Leg],
                heard_directly: set[str]) -> None:
        """``record``'s translations to ``listeners``; the record is finished once all have heard theirs."""
        waiting = {other.id for other in listeners}
        if self.settings.interpretation.simultaneous:
            self._remember_when_written(record, understood)
        if not listeners:
            self._publish(Final, text=record.source_text, translation=None, utterance=record.id,
                          language=record.language, confidence=record.language_confidence)
            self.finish(record)
            return
        for listener in listeners:
            target = listener.language
            interpreted = self.interpreted(record, listener)
            if target in understood.clauses:
                self._speak_clauses(record, speech, listener, understood, waiting, interpreted)
                continue
            translation = record.translations.get(target, "")
            self._publish(Final, text=record.source_text, translation=translation, target=target,
                          listener=listener.id, utterance=record.id, language=record.language,
                          confidence=record.language_confidence)
            heard_live = listener.session is not None and listener.session.hears_live
            if (not translation or listener.session is None or (heard_live and listener.id in heard_directly)
                    or interpreted):
                if record.error and not translation:
                    if listener.session is not None:
                        listener.session.playback.skip_notice()
                    self._skipped(record, listener, skip_reason(record.failure))
                # nothing to say, gone, heard the speaker's own voice live, or an interpreter speaks for us
                waiting.discard(listener.id)
                continue
            ready = time.monotonic()
            listener.session.playback.enqueue(Item(
                source=speak_in(self.engines.voices, target, translation, listener.session.rate,
                                self.synthesize_timeout_s),
                label=f"utterance {record.id} for {listener.id}", text=translation, language=target,
                on_first_frame=self._first_frame_callback(record, speech, ready),
                on_done=self._done_callback(record, listener, waiting, understood),
                deadline=speech.ended_at + self.settings.turns.stale_after_s,
            ))
        if not waiting:
            self.finish(record, understood)

    def _speak_clauses(self, record: Utterance, speech: Speech, listener: Leg, understood: Understood,
                       waiting: set[str], interpreted: bool = False) -> None:
        """A translation still being written: the listener hears each clause as it comes (unless an
        interpreter speaks for the machine); its caption goes out once it is complete."""
        target = listener.language
        clauses = understood.clauses[target]

        async def caption() -> None:
            translation = await clauses.wait()
            record.translations[target] = translation
            self._publish(Final, text=record.source_text, translation=translation, target=target,
                          listener=listener.id, utterance=record.id, language=record.language,
                          confidence=record.language_confidence)
            if not translation and clauses.error:
                if listener.session is not None:
                    listener.session.playback.skip_notice()
                self._skipped(record, listener, skip_reason(clauses.failure))

        task = asyncio.create_task(caption(), name=f"caption-{record.id}-{listener.id}")
        self._captions.add(task)
        task.add_done_callback(self._captions.discard)
        if listener.session is None or interpreted:
            waiting.discard(listener.id)
            return
        ready = time.monotonic()
        listener.session.playback.enqueue(Item(
            source=speak_clauses(self.engines.voices, target, clauses, listener.session.rate,
                                 self.synthesize_timeout_s),
            label=f"utterance {record.id} for {listener.id}", text="", language=target,
            on_first_frame=self._first_frame_callback(record, speech, ready),
            on_done=self._done_callback(record, listener, waiting, understood),
            deadline=speech.ended_at + self.settings.turns.stale_after_s,
        ))

    def _skipped(self, record: Utterance, listener: Leg, reason: str) -> None:
        """Tell the listener, the speaker and the operator that ``listener`` did not hear ``record``."""
        self._publish(Skipped, text=record.source_text, utterance=record.id, target=listener.language,
                      listener=listener.id, language=record.language, reason=reason)

    def _first_frame_callback(self, record: Utterance, speech: Speech, ready: float) -> Callable[[float], None]:
        def first_frame(at: float) -> None:
            if "first_frame" not in record.latencies:
                # with Vonage talk: when Vonage accepted the talk (its speech starts about then)
                record.latencies["talk" if self.engines.talk else "synthesize"] = at - ready
                record.latencies["first_frame"] = at - speech.ended_at
        return first_frame

    def _done_callback(self, record: Utterance, listener: Leg, waiting: set[str],
                       understood: Understood) -> Callable[[int, Fault | None], None]:
        def done(frames: int, fault: Fault | None) -> None:
            if fault is not None:
                record.fail(fault, where=f"playback to {listener.id}: ")
                if fault.kind is Failure.PLAYBACK_DROPPED and not frames:
                    self._skipped(record, listener, skip_reason(fault.kind, fault))
            waiting.discard(listener.id)
            if not waiting:
                self.finish(record, understood)
        return done

    def finish(self, record: Utterance, understood: Understood | None = None, wait: bool = True) -> None:
        """The utterance is over for every listener: remember it for context, keep and publish its record
        (once the translations still being written are complete)."""
        if wait and understood is not None and understood.writing is not None and not understood.writing.done():
            task = asyncio.create_task(self._finish_when_written(record, understood))
            self._captions.add(task)
            task.add_done_callback(self._captions.discard)
            return
        if understood is not None:
            for target, clauses in understood.clauses.items():
                record.translations[target] = clauses.text
            record.latencies.update({k: v for k, v in understood.latencies.items() if k not in record.latencies})
            record.terms_checked, record.terms_missed = understood.terms_checked, list(understood.terms_missed)
            if understood.fault is not None:
                record.fail(understood.fault)
        if record.id in self._remembered:
            self._remembered.discard(record.id)
        else:
            self._remember(record, understood)
        self._keep(record)

    def _remember(self, record: Utterance, understood: Understood | None) -> None:
        room = self.leg.room
        if room is None or not record.source_text or self.leg.interprets is not None:
            return  # an interpreter's words are not the room's lines: they say again what a caller said
        translations = dict(record.translations)
        if understood is not None:
            translations.update({t: c.text for t, c in understood.clauses.items() if c.text})
        room.remember(record.language, record.source_text, translations)
        self._prepare(room, record.language)

    def _prepare(self, room: Room, spoken: str) -> None:
        """While nobody speaks, let the translator evaluate the room's lines, new line included, for the
        next utterance: the reply's direction first, then the speaker's own (translator.prepare_context)."""
        translator = self.engines.translator
        prepare = getattr(translator, "prepare", None)
        n = self.settings.translator.context_lines
        if prepare is None or not self.settings.translator.prepare_context or not n:
            return
        heard = [leg.language for leg in room.callers if not same_language(leg.language, spoken)]
        pairs = [*((t, spoken) for t in dict.fromkeys(heard)), *((spoken, t) for t in dict.fromkeys(heard))]

        async def run() -> None:
            for source, target in pairs:
                try:
                    await prepare(source, target, room.context(source, target, n))
                except Exception:  # noqa: BLE001 - an optimisation: the next translation evaluates it all
                    log.exception("preparing the %s->%s context failed", source, target)
                    return

        task = asyncio.create_task(run(), name=f"prepare-{room.id}")
        self._preparing.add(task)
        task.add_done_callback(self._preparing.discard)

    def _remember_when_written(self, record: Utterance, understood: Understood) -> None:
        """Simultaneous mode: the next clause is translated while this one still plays, with this one as
        its context, so the room remembers it once its translations are written, not once it was heard.
        (:class:`Understanding` starts the next clause's translation after this one's is written.)"""
        self._remembered.add(record.id)
        if understood.writing is None or understood.writing.done():
            self._remember(record, understood)
        else:
            understood.writing.add_done_callback(lambda _: self._remember(record, understood))

    async def _finish_when_written(self, record: Utterance, understood: Understood) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(understood.writing)  # type: ignore[arg-type]
        self.finish(record, understood, wait=False)

    def _keep(self, record: Utterance) -> None:
        if self.on_record is not None:
            try:
                self.on_record(self.leg, record)
            except Exception:  # noqa: BLE001 - the transcript must not take the call down
                log.exception("leg %s: keeping the record failed", self.leg.id)
        self.hub.publish(UtteranceDone(room=record.room, leg=record.leg, record=record))
