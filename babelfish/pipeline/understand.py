"""Understanding one utterance of a leg: recognized (in the room language it was spoken in, with
``languages.detect``), then translated into each listener's language, whole or clause by clause as the
translator writes (a streaming translator and our own voices). A failing or slow engine costs this
utterance, recorded in :attr:`Understood.error`, never the call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np

from babelfish.config.pipeline import GlossarySettings
from babelfish.config.settings import Settings
from babelfish.core.glossary import Glossary, GlossaryBook, Rendering, unmark
from babelfish.core.languages import same_language
from babelfish.core.rooms import Leg
from babelfish.core.utterance import Failure, Fault
from babelfish.pipeline.identify import LanguageFollower
from babelfish.pipeline.protocols import Engines
from babelfish.pipeline.recognize import Heard, IdentifyingRecognizer, recognize
from babelfish.pipeline.translate import Clauses

log = logging.getLogger(__name__)


class TranslationLate(Exception):
    """A translation whose first words did not come within turns.stale_after_s."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds

# a llama.cpp translator's profile of an utterance's first clause -> the record's latencies (seconds, except
# the two token counts)
PROFILE = {"restore_s": "translate_restore", "first_token_s": "translate_first_token",
           "to_first_clause_s": "translate_to_first_clause", "evaluated_tokens": "translate_prompt_tokens",
           "first_clause_tokens": "translate_first_clause_tokens"}


@dataclass
class Asked:
    """One translation as the translator is asked for it, with the glossary's renderings it must contain."""

    text: str
    glossary: Glossary
    renderings: list[Rendering]
    kwargs: dict[str, object]  # {"terms": renderings} for a translator that takes them in its prompt
    repair: bool
    marked: bool = False  # the renderings went in quotation marks (glossary.translator = marked)

    def repaired(self, translation: str) -> str:
        """A clause with a term the translator left as it was said written in its rendering (glossary.repair)."""
        if self.marked:
            translation = unmark(translation, self.renderings)
        return self.glossary.repair(translation, self.renderings) if self.repair and self.renderings else translation

    def checked(self, translation: str, target: str, result: Understood) -> str:
        """The whole translation, repaired; a rendering still missing is logged and kept in ``result``."""
        translation = self.repaired(translation)
        if self.renderings:
            missed = self.glossary.missing(translation, self.renderings)
            result.terms_checked += len(self.renderings)
            result.terms_missed += [f"{target}: {r.required}" for r in missed]
            if missed:
                log.info("the translation into %s lacks the glossary's %s", target,
                         ", ".join(repr(r.required) for r in missed))
        return translation


def ask(glossary: Glossary, text: str, source: str, target: str, settings: GlossarySettings,
        translator: object) -> Asked:
    """What ``translator`` is given for ``text`` (settings.glossary.translator: the renderings in its prompt,
    if it takes them, and/or written inline) and how its output is checked."""
    style = settings.translator
    renderings = glossary.renderings(text, source, target) if glossary and style != "off" else []
    if not renderings:
        return Asked(text, glossary, [], {}, settings.repair)
    inline = (glossary.inline(text, source, target, marked=style == "marked") if style in ("inline", "both", "marked")
              else text)
    prompt = style in ("prompt", "both") and getattr(translator, "takes_terms", False)
    return Asked(inline, glossary, renderings, {"terms": renderings} if prompt else {}, settings.repair,
                 style == "marked")


@dataclass
class Understood:
    """What was said in an utterance and its translations, with how long each took."""

    text: str = ""
    translations: dict[str, str] = field(default_factory=dict)
    latencies: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # the last failure, in words
    failure: Failure | None = None  # and its kind
    heard: Heard | None = None  # the recognizer's answer: the language it was recognized in, if identified
    # translations still being written, clause by clause (a streaming translator), and the task writing them
    clauses: dict[str, Clauses] = field(default_factory=dict)
    writing: asyncio.Task[None] | None = None
    terms_checked: int = 0  # the glossary renderings the translations had to contain
    terms_missed: list[str] = field(default_factory=list)  # and those they lacked ("de: Zuzahlung")

    @property
    def language(self) -> str:
        """The language the text was recognized in ("" when the recognizer was not asked: the leg's)."""
        return self.heard.language if self.heard is not None else ""

    def fail(self, kind: Failure, text: str) -> None:
        self.error, self.failure = text, kind

    @property
    def fault(self) -> Fault | None:
        return Fault(self.failure, self.error) if self.failure is not None and self.error else None

    def cancel(self) -> None:
        """Stop writing translations nobody will hear (a speculation that the speaker talked over)."""
        if self.writing is not None:
            self.writing.cancel()


class Understanding:
    """Understands a leg's utterances: its recognizer and translator, its room's context, its follower."""

    def __init__(self, leg: Leg, engines: Engines, settings: Settings, follower: LanguageFollower,
                 glossary: GlossaryBook | None = None) -> None:
        self.leg = leg
        self.glossary = glossary  # the operator's, read per utterance: an edit applies to the next one
        self.engines = engines
        self.settings = settings
        self.follower = follower
        self._writing: asyncio.Task[None] | None = None  # the last translation being written

    async def __call__(self, samples: np.ndarray, rate: int, targets: list[str]) -> Understood:
        """Recognize, then translate into each listener language. Failures are recorded, not raised."""
        result = Understood()
        limits = self.settings.limits
        t0 = time.monotonic()
        candidates = self._candidates(samples.size / rate)
        try:
            async with asyncio.timeout(limits.recognize_timeout_s):
                assert self.engines.recognizer is not None
                result.heard = await recognize(self.engines.recognizer, samples, rate, self.leg.language,
                                               self._recognition_prompt(), candidates, self.follower.min_confidence)
                result.text = result.heard.text
        except TimeoutError:
            log.warning("leg %s: recognition timed out after %g s", self.leg.id, limits.recognize_timeout_s)
            result.fail(Failure.RECOGNIZE_TIMEOUT, f"recognizer: timed out after {limits.recognize_timeout_s:g} s")
            return result
        except Exception as exc:  # noqa: BLE001 - one utterance is lost, not the call
            log.exception("leg %s: recognition failed", self.leg.id)
            result.fail(Failure.RECOGNIZE_ERROR, f"recognizer: {type(exc).__name__}: {exc}")
            return result
        result.latencies["recognize"] = time.monotonic() - t0
        if not result.text:
            return result
        t1 = time.monotonic()
        source = result.language or self.leg.language
        glossary = self._glossary()
        if glossary and self.settings.glossary.recognizer:
            result.text = glossary.correct(result.text, source)
        for target in targets:
            if same_language(source, target):
                result.translations[target] = result.text
        to_translate = [t for t in dict.fromkeys(targets) if t not in result.translations]
        if to_translate and self._streams_translations:
            result.clauses = {target: Clauses() for target in to_translate}
            previous = self._writing if self.settings.interpretation.simultaneous else None
            result.writing = asyncio.create_task(self._write_translations(result, t1, previous),
                                                 name=f"translate-{self.leg.id}")
            self._writing = result.writing
            # however it ends (cancelled before it began included), nobody waits on a translation forever
            def unblock(_: object) -> None:
                for clauses in result.clauses.values():
                    if not clauses.done:
                        clauses.finish("cancelled")

            result.writing.add_done_callback(unblock)
            return result
        await self.translate_now(result, to_translate)
        result.latencies["translate"] = time.monotonic() - t1
        return result

    @property
    def writing(self) -> bool:
        """A translation of this leg's is still being written (a partial caption would slow it down)."""
        return self._writing is not None and not self._writing.done()

    async def translate_now(self, result: Understood, targets: list[str]) -> None:
        """Translate ``result`` into each target, whole (not clause by clause); failures are recorded."""
        source = result.language or self.leg.language
        for target in targets:
            if same_language(source, target):
                result.translations[target] = result.text
                continue
            faults: list[Fault] = []
            async with self._guarded(target, faults):
                assert self.engines.translator is not None
                asked = self._asked(result.text, source, target)
                translation = await self.engines.translator.translate(
                    asked.text, source, target, self._context(source, target), **asked.kwargs)
                result.translations[target] = asked.checked(translation, target, result)
                self._profile(result)
            if faults:
                result.fail(faults[0].kind, faults[0].text)
                result.translations[target] = ""

    @property
    def _streams_translations(self) -> bool:
        """Translations are spoken clause by clause as they are written: with a streaming translator and
        our own voices (Vonage talk speaks a whole text)."""
        return self.engines.talk is None and hasattr(self.engines.translator, "stream")

    async def _write_translations(self, result: Understood, t0: float,
                                  previous: asyncio.Task[None] | None = None) -> None:
        """Stream each translation into its :class:`Clauses`, one target after the other; after
        ``previous`` (the clause before, simultaneous mode), whose text is then in the room's context."""
        if previous is not None and not previous.done():
            await asyncio.wait([previous])  # however it ended; our own cancellation still raises
            await asyncio.sleep(0)  # the fan-out's callback remembers it first
        source = result.language or self.leg.language
        stale_s = self.settings.turns.stale_after_s
        for target, clauses in result.clauses.items():
            faults: list[Fault] = []
            asked = self._asked(result.text, source, target)
            async with self._guarded(target, faults):
                stream = self.engines.translator.stream(  # type: ignore[union-attr]
                    asked.text, source, target, self._context(source, target), **asked.kwargs)
                async with contextlib.aclosing(stream):
                    # Bounded under load: a translation whose first clause is not out within
                    # turns.stale_after_s (waiting behind other legs' translations on the model) is given up
                    # and shown as late; once it speaks, translate_timeout_s bounds the rest.
                    try:
                        async with asyncio.timeout(stale_s) as first_clause:
                            async for clause in stream:
                                if not clauses.parts:
                                    result.latencies.setdefault("translate_first_clause", time.monotonic() - t0)
                                    self._profile(result)
                                    first_clause.reschedule(None)
                                clauses.add(asked.repaired(clause))
                    except TimeoutError:
                        if clauses.parts:
                            raise
                        raise TranslationLate(stale_s) from None
            clauses.finish(faults[0].text if faults else None, faults[0].kind if faults else None)
            asked.checked(clauses.text, target, result)
            result.translations[target] = clauses.text
            if faults:
                result.fail(faults[0].kind, faults[0].text)
        result.latencies["translate"] = time.monotonic() - t0

    def _profile(self, result: Understood) -> None:
        """The translator's own account of its first clause (llama.cpp translators: restoring the pair's
        state, evaluating the prompt, the first token, the tokens to the first clause), once per utterance."""
        profile = getattr(self.engines.translator, "profile", None)
        if not isinstance(profile, dict) or "translate_first_token" in result.latencies:
            return
        for key, name in PROFILE.items():
            if key in profile:
                result.latencies[name] = float(profile[key])

    @contextlib.asynccontextmanager
    async def _guarded(self, target: str, faults: list[Fault]) -> AsyncIterator[None]:
        """One translation within ``limits.translate_timeout_s``: a failure is appended to ``faults`` and
        logged, never raised (this utterance's translation is lost, not the call)."""
        limit = self.settings.limits.translate_timeout_s
        try:
            async with asyncio.timeout(limit):
                yield
        except TranslationLate as late:
            log.warning("leg %s: translation to %s not begun within %g s (the translator is busy): skipped",
                        self.leg.id, target, late.seconds)
            faults.append(Fault(Failure.TRANSLATE_TIMEOUT, f"translator: no first words within {late.seconds:g} s "
                                "(busy): skipped as too late"))
        except TimeoutError:
            log.warning("leg %s: translation to %s timed out after %g s", self.leg.id, target, limit)
            faults.append(Fault(Failure.TRANSLATE_TIMEOUT, f"translator: timed out after {limit:g} s"))
        except Exception as exc:  # noqa: BLE001
            log.exception("leg %s: translation failed", self.leg.id)
            faults.append(Fault(Failure.TRANSLATE_ERROR, f"translator: {type(exc).__name__}: {exc}"))

    def _recognition_prompt(self) -> str:
        """The room's last lines in this leg's language (settings.recognizer.context_lines), then the glossary's
        spellings in it, for Whisper (which keeps the end of a long prompt)."""
        room, n = self.leg.room, self.settings.recognizer.context_lines
        said = [text for line in list(room.lines)[-n:] if (text := line.text_in(self.leg.language))] if (
            room is not None and n) else []
        glossary = self._glossary()
        if glossary and self.settings.glossary.recognizer:
            said.append(glossary.recognition_hint(self.leg.language))
        return " ".join(t for t in said if t)

    def _glossary(self) -> Glossary:
        """The operator's glossary for this leg's room, as it is now (an edit applies to the next utterance)."""
        book, room = self.glossary, self.leg.room
        if book is None:
            return Glossary()
        try:
            return book.glossary(room.code if room is not None else None)
        except Exception:  # noqa: BLE001 - the call goes on without it
            log.exception("leg %s: reading the glossary failed", self.leg.id)
            return Glossary()

    def _asked(self, text: str, source: str, target: str) -> Asked:
        return ask(self._glossary(), text, source, target, self.settings.glossary, self.engines.translator)

    def _context(self, source: str, target: str) -> list[tuple[str, str]]:
        """The room's last lines in ``source`` and ``target`` (settings.translator.context_lines)."""
        room, n = self.leg.room, self.settings.translator.context_lines
        return room.context(source, target, n) if room is not None and n else []

    def _candidates(self, seconds: float) -> list[str]:
        """The languages this utterance may be in (languages.detect; none: it is in the leg's)."""
        if not self.follower.on or not isinstance(self.engines.recognizer, IdentifyingRecognizer):
            return []
        return self.follower.candidates(self.leg.language, [other.language for other in self.leg.others()],
                                        self.settings.menu.options, seconds)
