"""What every engine shares: one worker thread that owns the model, awaited from the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class EngineError(RuntimeError):
    """An engine could not be loaded or failed on one input."""


class Worker:
    """A single thread per model: inference is serialised per model (llama.cpp and espeak are not
    thread-safe, and on a small machine parallel runs of one model only thrash), while different stages
    still overlap."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending = 0

    @property
    def busy(self) -> bool:
        return self._pending > 0

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        self._pending += 1
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
