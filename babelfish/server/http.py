"""What every route shares: JSON bodies read safely, error responses, and the bounded caption-feed socket."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from babelfish.config.settings import LimitsSettings
from babelfish.core.events import CaptionHub
from babelfish.telephony import wire


class FeedSlots:
    """The caption feeds each kind of subscriber holds. Every feed claims a slot in one or more pools, each
    with its cap: the operator's feeds and the browser phones' are counted apart (guests cannot fill the
    operator's), and one guest's leg and one client address hold a few each (one join link cannot fill the
    guests' pool). (A counter per pool: nothing a library does for a websocket server.)"""

    def __init__(self) -> None:
        self.held: collections.Counter[str] = collections.Counter()

    def take(self, claims: Sequence[tuple[str, int]]) -> str | None:
        """Hold a slot in every pool of ``claims`` (pool, cap); the first full pool's name when one is full."""
        for pool, cap in claims:
            if self.held[pool] >= cap:
                return pool
        for pool, _ in claims:
            self.held[pool] += 1
        return None

    def give_back(self, claims: Sequence[tuple[str, int]]) -> None:
        for pool, _ in claims:
            self.held[pool] -= 1
            if self.held[pool] <= 0:
                del self.held[pool]


def operator_feed(limits: LimitsSettings) -> list[tuple[str, int]]:
    return [("operator", limits.max_subscribers)]


def guest_feed(limits: LimitsSettings, leg: str, address: str) -> list[tuple[str, int]]:
    return [("guests", limits.max_subscribers), (f"leg {leg}", limits.feeds_per_leg),
            (f"address {address}", limits.feeds_per_address)]


async def subscribe(ws: WebSocket, hub: CaptionHub, limits: LimitsSettings, slots: FeedSlots,
                    claims: Sequence[tuple[str, int]], *, room: str | None = None,
                    pick: Callable[[dict[str, Any]], bool] | None = None,
                    first: Callable[[], Awaitable[None]] | None = None,
                    tick: Callable[[], Awaitable[bool]] | None = None, tick_s: float = 1.0) -> None:
    """Serve one caption-feed websocket (``/captions``, ``/phone/events``) until the client leaves. Refused
    with 1013 while a pool it claims is full (:class:`FeedSlots`); closed once it had nothing to send for
    ``limits.subscriber_idle_s`` (a bounded number of sockets, none held open forever by a silent client).
    ``pick`` filters the events sent; ``first`` sends what comes before them; ``tick``, called after each
    event and every ``tick_s``, may send more and ends the feed by returning False."""
    full = slots.take(claims)
    if full is not None:
        shared = full in ("operator", "guests")
        reason = "too many subscribers" if shared else f"too many feeds for this {full.split()[0]}"
        await ws.accept()  # then closed: a browser page reads the reason only from an accepted socket
        await ws.close(code=wire.CLOSE_TRY_AGAIN, reason=reason)
        return
    try:
        await _feed(ws, hub, limits, room, pick, first, tick, tick_s)
    finally:
        slots.give_back(claims)


async def _feed(ws: WebSocket, hub: CaptionHub, limits: LimitsSettings, room: str | None,
                pick: Callable[[dict[str, Any]], bool] | None, first: Callable[[], Awaitable[None]] | None,
                tick: Callable[[], Awaitable[bool]] | None, tick_s: float) -> None:
    queue = hub.subscribe(room)
    await ws.accept()
    receiver = asyncio.create_task(wait_closed(ws))
    last_sent = time.monotonic()
    try:
        if first is not None:
            await first()
        while not receiver.done():
            wait = limits.subscriber_idle_s - (time.monotonic() - last_sent)
            if wait <= 0:
                await ws.close(code=wire.CLOSE_NORMAL, reason="idle")
                break
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, timeout=min(wait, tick_s) if tick else wait,
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                event = getter.result()
                if pick is None or pick(event):
                    await ws.send_text(json.dumps(event, default=str))
                    last_sent = time.monotonic()
            else:
                getter.cancel()
            if tick is not None and not await tick():
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        receiver.cancel()
        hub.unsubscribe(queue)
        if ws.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.close()



async def wait_closed(ws: WebSocket) -> None:
    """Returns when the client closes the socket (run beside a sender)."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return



async def read_json(request: Request) -> Any:
    """The request's JSON body, or a 400 response (returned): not JSON, or nested too deeply to parse."""
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error_response(400, "body is not JSON")
    except RecursionError:
        return error_response(400, "body is nested too deeply")



def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
