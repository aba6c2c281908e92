"""The server's caption feed as a client sees it: every event of ``/captions``, kept for checks and for
``transcript.json``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)


class CaptionFeed:
    """Listens to the server's ``/captions`` websocket, keeping every event (for transcript.json)."""

    def __init__(self, server: str, printer: Any = None, token: str | None = None) -> None:
        """``token``: the server's operator token (default: ``BABELFISH_SECURITY__OPERATOR_TOKEN``)."""
        token = token or os.environ.get("BABELFISH_SECURITY__OPERATOR_TOKEN", "")
        self.url = server.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + "/captions"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.events: list[dict[str, Any]] = []
        self.printer = printer
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({ready, self._task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if not self._ready.is_set():
            ready.cancel()
            if self._task.done():
                self._task.result()  # the refusal (no or wrong operator token)
            raise TimeoutError(f"no caption feed from {self.url}")

    async def _run(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async with connect(self.url, additional_headers=self.headers) as ws:
                self._ready.set()
                async for message in ws:
                    event = json.loads(message)
                    self.events.append(event)
                    if self.printer is not None:
                        self.printer(event)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def utterances(self, leg: str | None = None) -> list[dict[str, Any]]:
        """The utterance records published so far (``leg``: of that leg only)."""
        return [e["record"] for e in self.events if e.get("type") == "utterance"
                and (leg is None or e["record"]["leg"] == leg)]

    async def wait_utterances(self, n: int, timeout: float = 30.0, leg: str | None = None) -> list[dict[str, Any]]:
        """Until ``n`` utterance records (of ``leg``, if given) are published, or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while len(self.utterances(leg)) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.utterances(leg)
