"""The leg watchdog: every second, each leg against its limits: a websocket that never opened
(``limits.connect_within_s``), a call too long (``limits.max_call_s``: the caller hears why, then the leg
ends) and a browser leg that went silent (``phone.idle_s``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from babelfish.core import languages
from babelfish.core.polling import until
from babelfish.core.rooms import Leg
from babelfish.server.phonelinks import BROWSER_CALLER

if TYPE_CHECKING:
    from babelfish.server.app import Server

log = logging.getLogger("babelfish")

WATCH_EVERY_S = 1.0  # how often legs are checked against the call-length and connect-within limits
NOTICE_WAIT_S = 15.0  # longest wait for a closing notice (time limit) to play before the leg ends


class Watchdog:
    def __init__(self, server: Server) -> None:
        self.server = server
        self._timing_out: set[str] = set()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            try:
                self.check_legs(time.time())
            except Exception:
                log.exception("leg watchdog failed")

    def check_legs(self, now: float) -> None:
        server = self.server
        limits = server.settings.limits
        for leg in list(server.switchboard.legs.values()):
            age = now - leg.created
            if leg.session is None and leg.id not in server.sockets and age > limits.connect_within_s:
                log.info("leg %s: websocket never opened (%.0f s after the answer): ended", leg.id, age)
                server.spawn(server.end_leg(leg, reason="websocket never opened", hang_up=True))
            elif leg.session is not None and age > limits.max_call_s and leg.id not in self._timing_out:
                self._timing_out.add(leg.id)
                server.spawn(self._time_limit(leg))
            elif (leg.caller == BROWSER_CALLER and leg.session is not None and leg.id not in self._timing_out
                  and time.monotonic() - leg.session.last_voice > server.settings.phone.idle_s):
                log.info("leg %s: browser leg sent no voice for %g s: ended", leg.id, server.settings.phone.idle_s)
                server.spawn(server.end_leg(leg, reason="browser leg idle"))

    async def _time_limit(self, leg: Leg) -> None:
        """The call reached ``limits.max_call_s``: say so, let the notice play, end the leg."""
        server = self.server
        try:
            session = leg.session
            log.info("leg %s: call time limit (%g s) reached", leg.id, server.settings.limits.max_call_s)
            server.metrics.error("call_time_limit")
            if session is not None:
                text, lang = languages.prompt("time_limit", leg.language)
                session.say(text, lang, label="notice: time limit")
                await session.stop_listening()
                await until(lambda: session.idle, NOTICE_WAIT_S)
            await server.end_leg(leg, reason="call time limit reached", hang_up=True)
        finally:
            self._timing_out.discard(leg.id)
