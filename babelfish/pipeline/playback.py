"""What a leg hears: translated speech played one utterance at a time, as exact 20 ms frames.

Frames are sent ahead of real time, but only up to a lead (``playback_lead_ms``): Vonage would buffer a
minute of audio, yet audio already handed over can only be dropped wholesale with ``clear``, and a short
lead keeps barge-in and stale-translation handling precise.

In a room where others speak the listener's language, their voices come in live (``hear``) and are mixed
into what the listener hears: sent as they arrive when no translation plays, mixed into the translation's
frames when one does. Each live voice is buffered for at most half a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from babelfish.core import audio
from babelfish.core.utterance import Failure, Fault
from babelfish.pipeline.synthesize import SynthesisTimeout

log = logging.getLogger(__name__)

CLEARED = Fault(Failure.PLAYBACK_CLEARED, "cleared")
HANDED_OVER = Fault(Failure.PLAYBACK_CLEARED, "cleared: handed over to the interpreter")
STALE = Fault(Failure.PLAYBACK_DROPPED, "dropped: stale")
BACKLOG = Fault(Failure.PLAYBACK_DROPPED, "dropped: backlog")
ENDED = Fault(Failure.PLAYBACK_HUNG_UP, "the listener's leg ended")

LIVE_FRAMES = 25  # per live voice: 0.5 s; older frames are dropped rather than delaying the voice further


@dataclass
class Item:
    source: AsyncIterator[bytes]  # PCM chunks at the leg's rate (e.g. one sentence each)
    label: str = ""
    text: str = ""  # what is said, for outputs that speak text themselves (Vonage talk)
    language: str = ""  # the language it is said in
    on_first_frame: Callable[[float], None] | None = None
    on_done: Callable[[int, Fault | None], None] | None = None  # (frames sent, what went wrong)
    created: float = field(default_factory=time.monotonic)
    deadline: float | None = None  # monotonic time after which starting to play it is too late
    is_notice: bool = False

    def done(self, frames: int, fault: Fault | None) -> None:
        """Tell ``on_done`` once, however the item ended."""
        on_done, self.on_done = self.on_done, None
        if on_done is not None:
            on_done(frames, fault)


class Playback:
    def __init__(self, send_audio: Callable[[bytes], Awaitable[None]],
                 send_clear: Callable[[], Awaitable[None]], rate: int, *, lead_s: float = 1.0,
                 max_items: int = 8,
                 notice: Callable[[], AsyncIterator[bytes]] | None = None,
                 on_frame: Callable[[bytes, float], None] | None = None) -> None:
        self._send_audio = send_audio
        self._send_clear = send_clear  # tells the far end to drop what it buffered (Vonage: a `clear` command)
        self.rate = rate
        self.lead_s = lead_s
        self._items: asyncio.Queue[Item] = asyncio.Queue(max_items)
        self._playhead = 0.0  # monotonic time at which the far end has played all we sent
        self._generation = 0  # bumped by clear(): the item being sent stops
        self._cleared = CLEARED  # why it stopped
        self.dropped_items = 0
        self.stale_items = 0
        self.notice = notice  # a short spoken notice played where translations were dropped
        self._owe_notice = False
        self._notice_waiting = False
        self._busy = False  # an item is being synthesized or sent
        self.on_frame = on_frame  # (frame, time it starts playing at the far end): for echo suppression
        self._task: asyncio.Task[None] | None = None
        self._live_task: asyncio.Task[None] | None = None
        self._live: dict[str, deque[bytes]] = {}
        self._live_ready = asyncio.Event()
        self._item_playing = False
        self._item_playhead = 0.0  # when the translation audio we sent will have played
        self._send_lock = asyncio.Lock()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="playback")
        self._live_task = asyncio.create_task(self._run_live(), name="playback-live")

    async def stop(self) -> None:
        """The leg is over: what is playing stops and what is queued is not played. Each item still says
        it is done, so the speaker's utterance is finished and kept in the transcript all the same."""
        tasks = [t for t in (self._task, self._live_task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while not self._items.empty():
            item = self._items.get_nowait()
            item.done(0, ENDED)

    @property
    def playing(self) -> bool:
        """True while a translation or notice we sent is still playing (or queued to play) at the far end;
        live voices do not count (talking over them is a conversation, not a barge-in)."""
        return self._item_playhead > time.monotonic() or not self._items.empty()

    def hear(self, source: str, frame: bytes) -> None:
        """One 20 ms frame of another caller's voice, at this leg's rate, to be heard live."""
        buffer = self._live.get(source)
        if buffer is None:
            buffer = self._live[source] = deque(maxlen=LIVE_FRAMES)
        buffer.append(frame)
        self._live_ready.set()

    def _mix_live(self, frame: bytes | None) -> bytes | None:
        parts = [buffer.popleft() for buffer in self._live.values() if buffer]
        if not parts:
            return frame
        if frame is not None:
            parts.append(frame)
        if len(parts) == 1:
            return parts[0]
        mixed = np.sum([np.frombuffer(p, dtype="<i2").astype(np.int32) for p in parts], axis=0)
        return np.clip(mixed, -32768, 32767).astype("<i2").tobytes()

    async def _run_live(self) -> None:
        while True:
            if not any(self._live.values()):
                self._live_ready.clear()
                await self._live_ready.wait()
                continue
            if self._item_playing:  # the item's frames carry the live voices now
                await asyncio.sleep(audio.FRAME_MS / 1000)
                continue
            async with self._send_lock:
                if self._item_playing:
                    continue
                frame = self._mix_live(None)
                if frame is not None:
                    try:
                        await self._send_frame(frame)
                    except Exception as exc:  # noqa: BLE001 - the socket is gone; the leg is ending
                        log.debug("live audio stopped: %s", exc)
                        return

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing being synthesized or sent, nothing still playing at the far end."""
        return not self._busy and not self.playing

    @property
    def queued(self) -> int:
        return self._items.qsize()

    def enqueue(self, item: Item) -> None:
        """Queue an utterance for this leg; when the queue is full the oldest waiting one is dropped (and
        the listener hears a short notice in its place)."""
        while self._items.full():
            old = self._items.get_nowait()
            self.dropped_items += 1
            self._owe_notice = True
            log.warning("playback queue full: dropped %s", old.label)
            old.done(0, BACKLOG)
        self._items.put_nowait(item)

    def skip_notice(self) -> None:
        """A translation meant for this leg was lost (an engine failed or timed out): the listener hears a
        short notice instead of silence. Several losses in a row give one notice."""
        if self.notice is None or self._owe_notice:
            return
        if self._items.full() or self._notice_waiting:
            self._owe_notice = True  # played before the next item
            return
        self._notice_waiting = True
        self._items.put_nowait(Item(source=self.notice(), label="notice: translation skipped", is_notice=True))

    async def clear(self, why: Fault = CLEARED) -> None:
        """Drop everything queued or playing, here and in Vonage's buffer (``why``: a barge-in, a hand-over)."""
        self._generation += 1
        self._cleared = why
        while not self._items.empty():
            item = self._items.get_nowait()
            item.done(0, why)
        self._playhead = self._item_playhead = time.monotonic()
        await self._send_clear()

    async def _send_item_frame(self, frame: bytes) -> None:
        async with self._send_lock:
            await self._send_frame(self._mix_live(frame) or frame)
            self._item_playhead = self._playhead

    async def _send_frame(self, frame: bytes) -> None:
        now = time.monotonic()
        ahead = self._playhead - now
        if ahead > self.lead_s:
            await asyncio.sleep(ahead - self.lead_s)
            now = time.monotonic()
        await self._send_audio(frame)
        start = max(self._playhead, now)
        self._playhead = start + audio.FRAME_MS / 1000
        if self.on_frame is not None:
            self.on_frame(frame, start)

    async def _run(self) -> None:
        while True:
            if self._owe_notice and self.notice is not None:
                self._owe_notice = False
                self._busy = True
                try:
                    await self._play(Item(source=self.notice(), label="notice: translation skipped", is_notice=True))
                finally:
                    self._busy = False
            item = await self._items.get()
            if item.is_notice:
                self._notice_waiting = False
            if item.deadline is not None and time.monotonic() > item.deadline:
                self.stale_items += 1
                self._owe_notice = True
                log.info("dropped %s: too late to play", item.label)
                item.done(0, STALE)
                continue
            self._busy = True
            try:
                error = await self._play(item)
            except asyncio.CancelledError:  # stop(): the leg ended while this played
                item.done(0, ENDED)
                raise
            finally:
                self._busy = False
            if error and error.kind not in (Failure.PLAYBACK_CLEARED, Failure.PLAYBACK_HUNG_UP) and not item.is_notice:
                self._owe_notice = True

    async def _play(self, item: Item) -> Fault | None:
        generation = self._generation
        sent, error = 0, None
        self._item_playing = True
        try:
            async for chunk in item.source:
                for frame in audio.frames(chunk, self.rate):
                    if generation != self._generation:
                        raise _Cleared
                    try:
                        await self._send_item_frame(frame)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        raise _SocketGone(f"{type(exc).__name__}: {exc}") from None
                    if sent == 0 and item.on_first_frame:
                        item.on_first_frame(time.monotonic())
                    sent += 1
        except _Cleared:
            error = self._cleared
        except _SocketGone as exc:  # the caller hung up while we spoke: nothing is wrong with the engines
            log.info("playback of %s stopped: socket closed (%s)", item.label, exc)
            error = Fault(Failure.PLAYBACK_HUNG_UP, "socket closed")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an engine failed on this utterance: the leg carries on
            log.exception("playback of %s failed", item.label)
            timed_out = isinstance(exc, SynthesisTimeout | TimeoutError)
            kind = Failure.SYNTHESIZE_TIMEOUT if timed_out else Failure.SYNTHESIZE_ERROR
            error = Fault(kind, f"{type(exc).__name__}: {exc}")
        finally:
            self._item_playing = False
            aclose = getattr(item.source, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:  # noqa: BLE001 - closing a failed generator must not kill playback
                    pass
        item.done(sent, error)
        return error


class _Cleared(Exception):
    pass


class _SocketGone(Exception):
    pass
