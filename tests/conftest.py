"""Shared fixtures. The test doubles here stand in for the model engines in server tests that check
plumbing (pairing, framing, hang-ups, bad input); tests marked ``e2e`` run the real engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from babelfish.config.settings import Settings
from babelfish.core import audio
from babelfish.core.worker import Worker
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_call import FakeCall
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.engines.registry import load_engines
from babelfish.engines.voices import Voices
from babelfish.pipeline.protocols import Engines
from babelfish.pipeline.segment import SileroDetector
from babelfish.server.serving import background

ASTERISK = Path("/usr/share/asterisk/sounds/en")
OPERATOR_TOKEN = "test-operator-token-of-24-chars"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}  # headers for /rooms, /metrics, /phone/links
# The fake Vonage streams faster than real time in plumbing tests (pace > 1), which a server refuses by
# default (limits.audio_speed): tests that build their own LimitsSettings pass these.
FAST_AUDIO = {"audio_speed": 1000.0, "audio_ahead_s": 1e6}
PACE = 4.0  # plumbing tests stream four times faster than real time


def asterisk(name: str) -> Path:
    path = ASTERISK / f"{name}.wav"
    if not path.exists():
        pytest.skip(f"{path} missing: install asterisk-core-sounds-en-wav (make test does)")
    return path


class EchoRecognizer:
    """Test double: 'recognizes' an utterance as its duration, so tests can tell utterances apart."""

    name = "test-recognizer"

    def __init__(self) -> None:
        self.calls = 0
        self.fail_next = False
        self.failing = False  # every call fails while set (a speculative pass cannot use the failure up)

    async def transcribe(self, samples: np.ndarray, rate: int, language: str, prompt: str = "") -> str:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.fail_next or self.failing:
            self.fail_next = False
            raise RuntimeError("recognizer exploded")
        return f"speech of {samples.size / rate:.1f} seconds in {language}"


class TagTranslator:
    """Test double: marks the text with the target language."""

    name = "test-translator"

    async def translate(self, text: str, source: str, target: str, context: object = ()) -> str:
        await asyncio.sleep(0.01)
        return f"[{target}] {text}"


class ToneSynthesizer:
    """Test double: a 440 Hz tone, 50 ms per word, at 22.05 kHz (a rate no leg uses, to exercise
    resampling and framing)."""

    name = "test-synthesizer"
    rate = 22050

    async def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        n = int(0.05 * len(text.split()) * self.rate)
        t = np.arange(n) / self.rate
        return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), self.rate


class RecordedSynthesizer:
    """Test double: 'speaks' any text as a real recording, so echo and barge-in are tested on speech."""

    name = "test-recorded-synthesizer"

    def __init__(self, samples: np.ndarray, rate: int) -> None:
        self.samples, self.rate = samples, rate

    async def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        return self.samples, self.rate


class ToneVoices(Voices):
    def __init__(self, voice: object | None = None) -> None:
        super().__init__({}, Path("."))
        self.voice = voice or ToneSynthesizer()

    def get(self, language: str) -> ToneSynthesizer:  # type: ignore[override]
        return self.voice


def double_engines(voice: object | None = None, translator: object | None = None) -> Engines:
    return Engines(recognizer=EchoRecognizer(), translator=translator or TagTranslator(),
                   voices=ToneVoices(voice), detector_factory=SileroDetector, vad_worker=Worker("vad-test"))


# -- how `make test` spreads the tests over its workers (pytest-xdist, --dist loadgroup) ----------------------
HEAVY = pytest.mark.xdist_group("heavy")  # a file whose tests keep both cores busy for a minute or more


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Whole files go to the workers, as ``--dist loadfile`` would (a module's fixtures, such as a loaded
    translator or a local Ray, are set up once), except that the files marked :data:`HEAVY` form one unit:
    they run one after another on one worker, never beside each other. Beside each other they starve every
    engine on two cores until real-time tests and stage timeouts fail."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FilesAndHeavyApart(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return scope if scope != nodeid else nodeid.split("::", 1)[0]

    return FilesAndHeavyApart(config, log)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's settings keep transcripts in its own folder, callers go straight into a room (the
    language menu is on by default; tests/test_calls.py turns it on where it is under test), the operator
    token is known, and the fake may stream faster than real time."""
    monkeypatch.setenv("BABELFISH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BABELFISH_MENU__LANGUAGES", "[]")
    monkeypatch.setenv("BABELFISH_SECURITY__OPERATOR_TOKEN", OPERATOR_TOKEN)
    monkeypatch.setenv("BABELFISH_LIMITS__AUDIO_SPEED", str(FAST_AUDIO["audio_speed"]))
    monkeypatch.setenv("BABELFISH_LIMITS__AUDIO_AHEAD_S", str(FAST_AUDIO["audio_ahead_s"]))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Plumbing tests dial unmapped numbers straight into a room: no language menu (tests/test_menu.py has
    it), and a transcript database of their own."""
    return Settings(models_dir=tmp_path / "models", data_dir=tmp_path / "data", playback_lead_ms=200,
                    menu={"languages": []})


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[tuple[str, Engines]]:
    """A real babelfish server (uvicorn, real HTTP and websockets) with test-double engines."""
    engines = double_engines()
    async with background(settings, engines) as url:
        yield url, engines


@pytest.fixture
async def vonage(server: tuple[str, Engines]) -> AsyncIterator[FakeVonage]:
    """The fake Vonage, placing calls to the ``server`` fixture (its calls hang up at the end)."""
    async with FakeVonage(server[0]) as fake:
        yield fake


@pytest.fixture
async def feed(server: tuple[str, Engines]) -> AsyncIterator[CaptionFeed]:
    """The ``server`` fixture's caption feed, followed from the start of the test."""
    captions = CaptionFeed(server[0])
    await captions.start()
    yield captions
    await captions.stop()


async def dial_pair(vonage: FakeVonage, pace: float = PACE) -> tuple[FakeCall, FakeCall]:
    """A German caller, then an English one (unmapped numbers: the default languages in turn), connected:
    the two legs of one room."""
    german = await vonage.dial("4915100000001", pace=pace)
    english = await vonage.dial("447700900002", pace=pace)
    assert german.headers["room"] == english.headers["room"]
    return german, english


@pytest.fixture(scope="session")
def speech() -> tuple[np.ndarray, int]:
    """A real recorded telephone prompt (8 kHz), about 5.5 s."""
    return audio.read_wav(asterisk("agent-alreadyon"))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def engines(models_dir: Path) -> Engines:
    """The real embedded engines, loaded once for every e2e test."""
    return load_engines(Settings(models_dir=models_dir))


def held_out_pairs(n: int) -> list[tuple[str, str]]:
    """The first ``n`` en/de pairs of the game scripts' held-out test split (never used for tuning)."""
    from babelfish.devtools import corpus

    try:
        corpus.ensure_installed(["fillets-ng-data"])
    except RuntimeError as exc:
        pytest.skip(str(exc))
    _, test = corpus.dev_test_split(corpus.sentence_pairs("en", "de"), dev_size=50, test_size=200, seed=0)
    return test[:n]


def check_corpus_translation(translator: object, pairs: list[tuple[str, str]], source: str, target: str, *,
                             min_chrf: float, max_copies: int, above_copying: float) -> None:
    """Translate the held-out ``pairs`` (en, de) from ``source`` to ``target``: every sentence gets a
    translation, at most ``max_copies`` merely copy the source, and the corpus chrF is at least ``min_chrf``
    and ``above_copying`` points above what copying the sources would score."""
    import sacrebleu

    from babelfish.engines.llama import is_copy

    pairs = pairs if source == "en" else [(de, en) for en, de in pairs]
    hyps = [translator.translate_sync(src, source, target) for src, _ in pairs]  # type: ignore[attr-defined]
    refs = [ref for _, ref in pairs]
    chrf = sacrebleu.corpus_chrf(hyps, [refs]).score
    copied = sacrebleu.corpus_chrf([src for src, _ in pairs], [refs]).score
    assert all(h.strip() for h in hyps), hyps
    assert sum(is_copy(src, h) for (src, _), h in zip(pairs, hyps, strict=True)) <= max_copies, hyps
    assert chrf >= min_chrf, (chrf, list(zip(hyps, refs, strict=True)))
    assert chrf > copied + above_copying, (chrf, copied)
