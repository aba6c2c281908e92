"""A headless Chromium driven over the Chrome DevTools Protocol, for the browser tests (the phone, the
console). The ``websockets`` package the project already uses speaks the protocol, so no browser-automation
package or browser download is needed; Debian's chromium is installed by ``make test``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--mute-audio", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--remote-debugging-port=0", "--window-size=760,900",
]


class CdpError(RuntimeError):
    pass


class Browser:
    """One headless Chromium, driven over the DevTools protocol."""

    def __init__(self, process: asyncio.subprocess.Process, ws: ClientConnection) -> None:
        self.process = process
        self.ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.console: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def launch(cls, profile: Path, microphone: Path, allow_microphone: bool = True) -> Browser:
        """``allow_microphone``: every page may use the microphone (else as the permission says)."""
        if not Path(CHROMIUM).exists():
            pytest.skip(f"{CHROMIUM} missing: install Debian's chromium (make test does)")
        profile.mkdir(parents=True)
        process = await asyncio.create_subprocess_exec(
            CHROMIUM, *FLAGS, *(["--use-fake-ui-for-media-stream"] if allow_microphone else []),
            f"--user-data-dir={profile}", f"--use-file-for-fake-audio-capture={microphone}", "about:blank",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (active.exists() and len(active.read_text().split()) == 2):
            if process.returncode is not None or time.monotonic() > deadline:
                raise CdpError(f"chromium did not start (exit {process.returncode})")
            await asyncio.sleep(0.1)
        port, path = active.read_text().split()
        ws = await connect(f"ws://127.0.0.1:{port}{path}", max_size=2**26, open_timeout=30)
        return cls(process, ws)

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                message = json.loads(raw)
                future = self._pending.pop(message.get("id", -1), None)
                if future is not None and not future.done():
                    future.set_result(message)
                elif message.get("method") == "Runtime.consoleAPICalled":
                    args = message["params"]["args"]
                    self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
                elif message.get("method") == "Runtime.exceptionThrown":
                    self.console.append(json.dumps(message["params"]["exceptionDetails"])[:500])

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
                   timeout: float = 60) -> dict[str, Any]:
        key = next(self._ids)
        message: dict[str, Any] = {"id": key, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        await self.ws.send(json.dumps(message))
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def page(self, url: str, *, app: str | None = "window.babelfish", width: int = 760,
                   height: int = 900) -> Page:
        """A new tab at ``url``, once its script's state object ``app`` is ready (None: once loaded)."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"], app or "null", width, height)
        await page.send("Runtime.enable")
        await page.send("Page.enable")
        await page.send("Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        await page.send("Page.navigate", {"url": url})
        await page.wait_for(f"document.readyState === 'complete' && {'!!' + app if app else 'true'}", 30)
        if app:
            await page.evaluate(f"{app}.ready")
        return page

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send("Browser.close", timeout=5)
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class Page:
    def __init__(self, browser: Browser, session: str, app: str = "null", width: int = 760,
                 height: int = 900) -> None:
        self.browser = browser
        self.session = session
        self.app = app  # the page script's state, shown when a wait times out
        self.width, self.height = width, height

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, self.session)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                      "awaitPromise": True, "userGesture": True})
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, condition: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(condition)
            if value:
                return value
            if time.monotonic() > deadline:
                state = await self.evaluate(f"JSON.stringify({self.app} || null)")
                raise AssertionError(f"timed out waiting for {condition!r}; page: {str(state)[:3000]}; console: "
                                     f"{self.browser.console[-20:]}")
            await asyncio.sleep(0.5)

    async def screenshot(self, path: Path) -> None:
        height = await self.evaluate("Math.ceil(document.querySelector('main').getBoundingClientRect().bottom)")
        shot = await self.send("Page.captureScreenshot", {"format": "png", "clip": {
            "x": 0, "y": 0, "width": self.width, "height": min(int(height), self.height), "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def browsers(tmp_path: Path, mics: list[Path], allow_microphone: bool = True) -> AsyncIterator[list[Browser]]:
    launched: list[Browser] = []
    try:
        for i, mic in enumerate(mics):
            launched.append(await Browser.launch(tmp_path / f"profile-{i}", mic, allow_microphone))
        yield launched
    finally:
        for browser in launched:
            await browser.close()
