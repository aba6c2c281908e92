"""Work done before the listener waits: once an utterance is remembered by its room, the translator is asked
to prepare the next prompts (the reply's direction first), with the room's context as the next translation
will see it; a stage test through tests/harness.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

from babelfish.config.pipeline import TranslatorSettings
from babelfish.config.settings import Settings

from . import harness
from .conftest import TagTranslator, double_engines


class PreparingTranslator(TagTranslator):
    def __init__(self) -> None:
        self.prepared: list[tuple[str, str, list[tuple[str, str]]]] = []

    async def prepare(self, source: str, target: str, context: object = ()) -> int:
        self.prepared.append((source, target, list(context)))  # type: ignore[call-overload]
        return 1


async def test_the_next_prompts_are_prepared_once_the_line_is_remembered(tmp_path: Path, speech) -> None:
    samples, rate = speech
    translator = PreparingTranslator()
    async with harness.Room(Settings(models_dir=tmp_path, playback_lead_ms=200),
                            double_engines(translator=translator)) as room:
        await room.say(0, samples[: rate * 2], rate)  # leg-0 speaks German
        record = (await room.wait_utterances(1))[0]
        async with asyncio.timeout(5):
            while len(translator.prepared) < 2:
                await asyncio.sleep(0.02)
    (s1, t1, c1), (s2, t2, c2) = translator.prepared[:2]
    assert (s1, t1) == ("en-GB", "de-DE") and (s2, t2) == ("de-DE", "en-GB")  # the reply first
    assert c1[-1] == (record.translations["en-GB"], record.source_text)  # the new line, seen from the reply
    assert c2[-1] == (record.source_text, record.translations["en-GB"])


async def test_nothing_is_prepared_when_the_setting_is_off(tmp_path: Path, speech) -> None:
    samples, rate = speech
    translator = PreparingTranslator()
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200,
                        translator=TranslatorSettings(prepare_context=False))
    async with harness.Room(settings, double_engines(translator=translator)) as room:
        await room.say(0, samples[: rate * 2], rate)
        await room.wait_utterances(1)
        await asyncio.sleep(0.3)
    assert translator.prepared == []


class OneModelTranslator(TagTranslator):
    """Streams clauses from one model (a lock): the first translation keeps it busy for ``busy_s``."""

    def __init__(self, busy_s: float) -> None:
        self.busy_s = busy_s
        self.model = asyncio.Lock()
        self.calls = 0

    async def stream(self, text: str, source: str, target: str, context: object = ()):  # type: ignore[no-untyped-def]
        async with self.model:
            self.calls += 1
            if self.calls == 1:
                await asyncio.sleep(self.busy_s)
            yield f"[{target}] {text}"


async def test_a_translation_stuck_behind_another_is_skipped_as_late_and_its_words_kept(tmp_path: Path,
                                                                                       speech) -> None:
    """Double talk on one model: one speaker's translation cannot begin while the other's holds the model;
    it is given up after turns.stale_after_s (not 30 s), shown as late, and its words are kept."""
    from babelfish.config.pipeline import TurnSettings
    from babelfish.core.events import Skipped

    samples, rate = speech
    settings = Settings(models_dir=tmp_path, playback_lead_ms=200, turns=TurnSettings(stale_after_s=1.0))
    translator = OneModelTranslator(busy_s=4.0)
    async with harness.Room(settings, double_engines(translator=translator)) as room:
        first = asyncio.create_task(room.say(0, samples[: rate * 2], rate))
        await asyncio.sleep(0.2)
        await room.say(1, samples[: rate * 2], rate)  # both talk at once
        await first
        records = await room.wait_utterances(2, timeout=20)
    late = [r for r in records if r.error]
    on_time = [r for r in records if not r.error]
    assert len(late) == 1 and len(on_time) == 1, records  # the one that got the model first is heard
    late_one = late[0]
    assert late_one.source_text and "too late" in late_one.error, late_one  # type: ignore[operator]
    assert late_one.latencies.get("translate", 0) < 3.0  # given up after about a second, not after 30
    skipped = [e for e in room.events if isinstance(e, Skipped)]
    assert [(e.utterance, e.reason) for e in skipped] == [(late_one.id, "late")]
    assert on_time[0].translations[next(iter(on_time[0].translations))].startswith("[")
