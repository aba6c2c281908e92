"""Vonage talk as the output: Vonage itself speaks each translation into the listener's call.

Instead of synthesizing audio and streaming it down the leg's websocket, the server asks Vonage to speak the
text into the call (``PUT /v1/calls/{uuid}/talk``, the successor of the original's 2018 ``send_speech``):
natural voices in 40+ languages with no model on our side. The websocket still carries the caller's audio in.

Vonage does not report when a talk has finished, so its end is estimated from the length of the text; the
next translation waits for it (a talk sent while another plays would talk over it) and barge-in within it
stops the talk (``DELETE /v1/calls/{uuid}/talk``). A failed request costs that utterance, not the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from babelfish.config.settings import ConfigError, VonageSettings
from babelfish.core import languages
from babelfish.core.utterance import Failure, Fault
from babelfish.pipeline.playback import BACKLOG, CLEARED, ENDED, STALE, Item
from babelfish.telephony.rest import VonageRest

log = logging.getLogger(__name__)

CHARS_PER_SECOND = 14.0  # Vonage's voices speak about 150 words a minute
MAX_TEXT = 1500  # Vonage's limit for one talk


def estimated_duration(text: str) -> float:
    """Seconds Vonage takes to speak ``text`` (an estimate: Vonage does not say when a talk ends)."""
    return 0.3 + len(text) / CHARS_PER_SECOND


class VonageTalk:
    """The talk output for every leg of this server: the REST client and the voice for each language."""

    def __init__(self, rest: VonageRest, styles: dict[str, int] | None = None, premium: bool = False) -> None:
        self.rest = rest
        self.styles = {k.replace("_", "-").lower(): v for k, v in (styles or {}).items()}
        self.premium = premium

    @classmethod
    def from_settings(cls, settings: VonageSettings) -> VonageTalk:
        if not settings.application_id or not settings.private_key:
            raise ConfigError("synthesizer.engine 'vonage-talk' needs the Vonage application: set "
                              "BABELFISH_VONAGE__APPLICATION_ID and BABELFISH_VONAGE__PRIVATE_KEY (PEM or file path)")
        rest = VonageRest(settings.application_id, settings.private_key, settings.api_url)
        return cls(rest, settings.talk_styles, settings.talk_premium)

    def voice(self, language: str) -> tuple[str, int, bool]:
        """Vonage's language code, style and premium flag for a leg language (``de`` -> ``de-DE``, style 0)."""
        tag = languages.regional(language)
        style = self.styles.get(tag.lower(), self.styles.get(languages.primary(tag), 0))
        return tag, style, self.premium

    def playback(self, call_uuid: str, language: str, *, max_items: int = 3) -> TalkPlayback:
        return TalkPlayback(self, call_uuid, language, max_items=max_items)

    async def aclose(self) -> None:
        await self.rest.aclose()


class TalkPlayback:
    """What a leg hears in talk mode, with the interface of :class:`babelfish.pipeline.playback.Playback`: utterances
    queue, one talk plays at a time, stale ones are dropped with a short notice, ``clear()`` stops the talk."""

    def __init__(self, talk: VonageTalk, call_uuid: str, language: str, *, max_items: int = 3) -> None:
        self.talk = talk
        self.call_uuid = call_uuid
        self.language = language
        self._items: asyncio.Queue[Item] = asyncio.Queue(max_items)
        self._playhead = 0.0  # monotonic time at which the talk in progress is expected to end
        self._generation = 0
        self._cleared = CLEARED  # why the talk in progress stopped
        self._wake = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._owe_notice = False
        self.talks = 0
        self.failed = 0
        self.dropped_items = 0
        self.stale_items = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"talk-{self.call_uuid}")

    async def stop(self) -> None:
        """The leg is over: each item still waiting says it is done (see :meth:`Playback.stop`)."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._stopping is not None:
            await asyncio.gather(self._stopping, return_exceptions=True)
        while not self._items.empty():
            self._items.get_nowait().done(0, ENDED)

    @property
    def playing(self) -> bool:
        return self._playhead > time.monotonic() or not self._items.empty()

    @property
    def idle(self) -> bool:
        """Nothing waiting and no talk expected to be still speaking (for the server's drain)."""
        return not self.playing

    @property
    def queued(self) -> int:
        return self._items.qsize()

    def skip_notice(self) -> None:
        """A translation for this leg was lost: Vonage says the short "skipped" notice in its place."""
        if self._items.full():
            self._owe_notice = True  # said before the next item
            return
        text, lang = languages.prompt("skipped", self.language)
        self._items.put_nowait(Item(source=_nothing(), label="notice: translation skipped", text=text,
                                    language=lang))

    def enqueue(self, item: Item) -> None:
        while self._items.full():
            old = self._items.get_nowait()
            self.dropped_items += 1
            self._owe_notice = True
            log.warning("talk queue full: dropped %s", old.label)
            old.done(0, BACKLOG)
        self._items.put_nowait(item)

    async def clear(self, why: Fault = CLEARED) -> None:
        """Barge-in: drop what waits and stop the talk in progress (the DELETE runs beside the caller's audio
        path; the next talk waits for it)."""
        self._generation += 1
        self._cleared = why
        while not self._items.empty():
            self._items.get_nowait().done(0, why)
        if self._playhead > time.monotonic() and (self._stopping is None or self._stopping.done()):
            self._stopping = asyncio.create_task(self._stop_talk())
        self._playhead = time.monotonic()
        self._wake.set()

    async def _stop_talk(self) -> None:
        try:
            await self.talk.rest.stop_talk(self.call_uuid)
        except Exception as exc:  # noqa: BLE001 - the talk may have ended already; the call goes on
            log.warning("call %s: stopping the talk failed: %s", self.call_uuid, exc)

    async def _run(self) -> None:
        while True:
            if self._owe_notice:
                self._owe_notice = False
                text, lang = languages.prompt("skipped", self.language)
                await self._speak(Item(source=_nothing(), label="notice: translation skipped", text=text,
                                       language=lang))
            item = await self._items.get()
            try:
                await self._take(item)
            except asyncio.CancelledError:  # stop(): the leg ended while this waited or was spoken
                item.done(0, ENDED)
                raise

    async def _take(self, item: Item) -> None:
        generation = self._generation
        await self._wait_until(self._playhead, generation)  # the previous talk is still speaking
        if generation != self._generation:
            item.done(0, self._cleared)
            return
        if item.deadline is not None and time.monotonic() > item.deadline:
            self.stale_items += 1
            self._owe_notice = True
            log.info("dropped %s: too late to speak", item.label)
            item.done(0, STALE)
            return
        await self._speak(item)

    async def _wait_until(self, at: float, generation: int) -> None:
        while generation == self._generation and time.monotonic() < at:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), at - time.monotonic())

    async def _speak(self, item: Item) -> None:
        await self._wait_until(self._playhead, self._generation)
        if self._stopping is not None:
            await asyncio.gather(self._stopping, return_exceptions=True)
        generation = self._generation
        error: Fault | None = None
        try:
            text = item.text.strip()[:MAX_TEXT]
            if text:
                language, style, premium = self.talk.voice(item.language or self.language)
                await self.talk.rest.talk(self.call_uuid, text, language, style=style, premium=premium or None)
                accepted = time.monotonic()
                self.talks += 1
                if item.on_first_frame:
                    item.on_first_frame(accepted)
                if generation == self._generation:
                    self._playhead = accepted + estimated_duration(text)
                    await self._wait_until(self._playhead, generation)
                if generation != self._generation:
                    error = self._cleared
        except Exception as exc:  # a refused or failed request costs this utterance only
            self.failed += 1
            log.warning("call %s: talk failed for %s: %s", self.call_uuid, item.label, exc)
            error = Fault(Failure.SYNTHESIZE_ERROR, f"talk: {exc}")
        finally:
            aclose = getattr(item.source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        item.done(0, error)


async def _nothing() -> AsyncIterator[bytes]:
    """An empty audio source: in talk mode no audio passes through us."""
    return
    yield b""
