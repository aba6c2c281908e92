"""What the machine offers the engines: the cores this process may use, and a GPU if there is one.

**Threads.** A thread setting left unset is derived from the cores this process may use
(``os.sched_getaffinity``: a container's or ``taskset``'s limit, not the host's count). In a call recognition
and translation run at the same time (one caller is recognized while the other's words are translated), so
each gets half of the cores, never less than the two-core values they were measured with and never more than
their model gains from (``CAPS``); the voice shares the translator's half (it speaks while the translator
writes the rest of the turn). On 2 cores that gives exactly the measured defaults (recognizer 2, Qwen 2,
Gemma 1, Kokoro 2); :func:`default_threads` is the rule, and an explicit setting always wins.

**Device.** ``auto`` picks CUDA where the engine's library finds a GPU (CTranslate2 for faster-whisper and
OPUS-MT: ``get_cuda_device_count() > 0``; llama.cpp: a build that can offload layers), else the CPU.
``cuda`` where there is none is an error at startup, not a silent fall back to the CPU.
"""

from __future__ import annotations

import os
from typing import Literal

Device = Literal["auto", "cpu", "cuda"]
Resolved = Literal["cpu", "cuda"]
Engine = Literal["whisper", "llama", "gemma", "ctranslate2", "kokoro", "piper"]

# Most threads each engine gets by default: past these the models measured here stop getting faster (and
# the threads would only take cores from the other stages).
CAPS: dict[Engine, int] = {"whisper": 8, "llama": 8, "gemma": 4, "ctranslate2": 8, "kokoro": 4, "piper": 4}


def cores() -> int:
    """The CPUs this process may run on (its affinity mask; the CPU count where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def default_threads(engine: Engine, available: int | None = None) -> int:
    """Threads for ``engine`` on ``available`` cores (default: :func:`cores`): half the cores each for
    recognition and translation, at least 2 (Gemma-270M: a quarter, at least 1), never more than the cores
    nor ``CAPS[engine]``."""
    n = max(1, available if available is not None else cores())
    half = n // 2
    share, floor = (half // 2, 1) if engine == "gemma" else (half, 2)
    return min(n, CAPS[engine], max(floor, share))


def threads(engine: Engine, explicit: int | None) -> int:
    """The setting if given, else :func:`default_threads`."""
    return explicit if explicit is not None else default_threads(engine)


def say_threads(n: int) -> str:
    """``"1 thread"``, ``"2 threads"``: for the startup log."""
    return f"{n} thread{'' if n == 1 else 's'}"


def cuda_devices() -> int:
    """CUDA devices CTranslate2 can use (0 without a CUDA build or driver)."""
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # noqa: BLE001 - not installed, no driver: no GPU for us
        return 0


def llama_offloads() -> bool:
    """Whether the installed llama-cpp-python can put layers on a GPU (a CUDA, Metal, ... build)."""
    try:
        import llama_cpp
    except ImportError:
        return False
    probe = getattr(llama_cpp, "llama_supports_gpu_offload", None)
    return bool(probe()) if probe is not None else False


def _resolve(device: Device, has_gpu: bool, setting: str, missing: str) -> Resolved:
    if device == "auto":
        return "cuda" if has_gpu else "cpu"
    if device == "cuda" and not has_gpu:
        from babelfish.config.errors import ConfigError

        raise ConfigError(f"{setting} is 'cuda' but {missing}: set it to 'auto' or 'cpu', or see docs/scaling.md "
                          "(GPUs)")
    return device


def ctranslate2_device(device: Device, setting: str = "recognizer.device") -> Resolved:
    """The device faster-whisper or a CTranslate2 translator runs on."""
    return _resolve(device, device != "cpu" and cuda_devices() > 0, setting,
                    "CTranslate2 finds no CUDA device (ctranslate2.get_cuda_device_count() is 0)")


def llama_device(device: Device, setting: str = "translator.device") -> Resolved:
    """The device llama.cpp puts the model's layers on."""
    return _resolve(device, device != "cpu" and llama_offloads(), setting,
                    "this llama-cpp-python build cannot offload to a GPU (reinstall it built with "
                    "CMAKE_ARGS=-DGGML_CUDA=on: scripts/gpu-check.sh)")


def compute_type(explicit: str | None, device: Resolved) -> str:
    """CTranslate2's weights: the setting, else int8 on the CPU and float16 on CUDA."""
    return explicit or ("float16" if device == "cuda" else "int8")


def gpu_layers(explicit: int | None, device: Resolved) -> int:
    """llama.cpp's ``n_gpu_layers``: none on the CPU; on CUDA the setting, else all (-1)."""
    if device == "cpu":
        return 0
    return explicit if explicit is not None else -1
