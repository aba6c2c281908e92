"""Fetching one file over HTTP for ``babelfish models fetch``: streamed to disk with a progress line, the hub
token sent where set, and HTTP failures turned into a :class:`~babelfish.engines.catalog.FetchError` that
says what to do."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from babelfish.engines.catalog import FetchError, hf_endpoint


class Progress:
    """Bytes and percentage of one download on stderr, at most a few updates a second."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.25) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._last = 0.0

    def update(self, label: str, done: int, total: int | None, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < self.interval:
            return
        self._last = now
        if total:
            line = f"  {label}: {_human(done)} / {_human(total)} ({100 * done // total:3d}%)"
        else:
            line = f"  {label}: {_human(done)}"
        self.stream.write(f"\r{line:<70}" + ("\n" if final else ""))
        self.stream.flush()



def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover



def _status_message(status: int, url: str) -> str:
    gated = status in (401, 403) and url.startswith(hf_endpoint())
    hint = " (gated or private: set HF_TOKEN)" if gated else ""
    return f"HTTP {status} for {url}{hint}"



class Downloader:
    """httpx streaming downloads with one-line errors."""

    def __init__(self, progress: Progress | None = None, timeout: float = 30.0) -> None:
        import httpx

        self.progress = progress or Progress()
        self.client = httpx.Client(follow_redirects=True, timeout=httpx.Timeout(timeout, read=120.0),
                                   headers={"User-Agent": "babelfish-models/0.1"})

    def close(self) -> None:
        self.client.close()

    def _headers(self, url: str) -> dict[str, str]:
        token = os.environ.get("HF_TOKEN")
        if token and url.startswith(hf_endpoint()):
            return {"Authorization": f"Bearer {token}"}
        return {}

    def get_json(self, url: str) -> Any:
        import httpx

        try:
            response = self.client.get(url, headers=self._headers(url))
            response.raise_for_status()
            return response.json()
        except httpx.HTTPStatusError as exc:
            raise FetchError(_status_message(exc.response.status_code, url)) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"network error for {url}: {str(exc) or type(exc).__name__} "
                             "(fetching models needs internet)") from None
        except ValueError:
            raise FetchError(f"{url} did not return JSON") from None

    def file(self, url: str, dest: Path, *, optional: bool = False) -> bool:
        """Stream ``url`` into ``dest``; ``False`` when ``optional`` and the server has no such file."""
        import httpx

        label = dest.name
        try:
            with self.client.stream("GET", url, headers=self._headers(url)) as response:
                if optional and response.status_code == 404:
                    return False
                response.raise_for_status()
                total = int(response.headers.get("content-length") or 0) or None
                done = 0
                with dest.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
                        done += len(chunk)
                        self.progress.update(label, done, total)
                self.progress.update(label, done, total, final=True)
                if total is not None and done != total:
                    raise FetchError(f"download of {url} ended early ({done} of {total} bytes)")
        except httpx.HTTPStatusError as exc:
            raise FetchError(_status_message(exc.response.status_code, url)) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"network error for {url}: {str(exc) or type(exc).__name__} "
                             "(fetching models needs internet)") from None
        return True
