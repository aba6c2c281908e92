"""The engines as Ray Serve deployments on a local Ray: calls through the fake Vonage translated by replicas in
other processes (test doubles for the plumbing; the packaged real engines in the e2e test)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from babelfish.config.settings import Settings
from babelfish.core.worker import Worker
from babelfish.devtools.caption_feed import CaptionFeed
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.engines.registry import load_engines
from babelfish.pipeline.protocols import Engines
from babelfish.pipeline.segment import SileroDetector
from babelfish.server.serving import background

from .conftest import HEAVY, EchoRecognizer, TagTranslator, ToneVoices

pytestmark = HEAVY  # a local Ray, and the real engines in its replica processes

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
ray_serve = pytest.importorskip("babelfish.engines.ray_serve")

ROOT = Path(__file__).resolve().parents[1]
PACE = 4.0
STAGES = ["recognizer", "translator", "synthesizer"]


class ReplicaTranslator(TagTranslator):
    """Says which process translated, so the test sees the work happen in a replica."""

    async def translate(self, text: str, source: str, target: str, context: object = ()) -> str:
        await asyncio.sleep(0.01)
        return f"[{target} by {os.getpid()}] {text}"


def doubles(stage: str, settings: Settings) -> Any:
    """Loader for the replicas: the test doubles instead of the models."""
    return {"recognizer": EchoRecognizer, "translator": ReplicaTranslator, "synthesizer": ToneVoices}[stage]()


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, namespace="babelfish-test", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    serve.start(proxy_location="Disabled")
    try:
        yield
    finally:
        serve.shutdown()
        ray.shutdown()


def delete_apps(settings: Settings) -> None:
    """Delete the stages' applications without waiting for each replica's graceful shutdown (3 s an
    application, one after another): they wind down while the next test runs, and the module's Serve
    shutdown ends whatever is left."""
    for stage in STAGES:
        serve.delete(ray_serve.app_name(settings, stage), _blocking=False)


def ray_settings(tmp_path: Path, app: str, **overrides: Any) -> Settings:
    small = {"num_replicas": 1, "num_cpus": 0.25}
    overrides.setdefault("models_dir", tmp_path / "models")
    return Settings(data_dir=tmp_path / "data", playback_lead_ms=200,
                    menu={"languages": []}, numbers={"447700900001": "en-GB", "4915100000002": "de-DE"},
                    ray={"stages": STAGES, "app_name": app, "recognizer": small, "translator": small,
                         "synthesizer": small}, **overrides)


async def test_calls_are_translated_by_ray_serve_replicas_and_translations_batch_across_calls(
        local_ray: None, tmp_path: Path, speech: tuple[np.ndarray, int]) -> None:
    settings = ray_settings(tmp_path, "doubles")
    settings.ray.translator.batch_wait_timeout_s = 0.05
    remote = ray_serve.connect(settings, loader=doubles)
    engines = Engines(recognizer=remote["recognizer"], translator=remote["translator"], voices=remote["synthesizer"],
                      detector_factory=SileroDetector, vad_worker=Worker("vad-ray"))
    assert isinstance(engines.recognizer, ray_serve.RayRecognizer)
    try:
        async with background(settings, engines) as url, FakeVonage(url) as vonage:
            feed = CaptionFeed(url)
            await feed.start()
            english = await vonage.dial("447700900001", pace=PACE)
            german = await vonage.dial("4915100000002", pace=PACE)
            turn = await english.say(*speech)
            assert await german.wait_heard(turn.ended, quiet_s=0.8, timeout=30)
            records = await feed.wait_utterances(1, timeout=10)
            assert len(records) == 1, [(r["source_text"], r["started_at"], r["ended_at"]) for r in feed.utterances()]
            [record] = records
            await feed.stop()
            assert record["source_text"].startswith("speech of 5.")
            translation = record["translations"]["de-DE"]
            assert translation.startswith("[de-DE by ") and f"by {os.getpid()}]" not in translation
        # requests from many calls at once reach the replica's engine in batches
        texts = await asyncio.gather(*(engines.translator.translate(f"line {i}", "en-GB", "de-DE")  # type: ignore[union-attr]
                                       for i in range(16)))
        assert [t.split("] ")[1] for t in texts] == [f"line {i}" for i in range(16)]
        sizes = await serve.get_app_handle(ray_serve.app_name(settings, "translator")).stats.remote()
        assert max(sizes) > 1, sizes
    finally:
        delete_apps(settings)


@pytest.mark.e2e
async def test_a_real_call_is_translated_by_the_packaged_engines_on_ray_serve(
        local_ray: None, tmp_path: Path, models_dir: Path, speech: tuple[np.ndarray, int]) -> None:
    # The replicas share two cores with the other test worker: this tests where the work happens, not its speed
    # (and so translates with the packaged Gemma, which a replica loads and warms in a fraction of Qwen's time).
    settings = ray_settings(tmp_path, "real", models_dir=models_dir, translator={"model": "gemma-270m"},
                            limits={f"{stage}_timeout_s": 120 for stage in ("recognize", "translate", "synthesize")})
    engines = load_engines(settings)  # deploys the applications on the local Ray: Whisper, Gemma, Piper/espeak
    try:
        async with background(settings, engines) as url, FakeVonage(url) as vonage:
            feed = CaptionFeed(url)
            await feed.start()
            english = await vonage.dial("447700900001", pace=PACE)
            german = await vonage.dial("4915100000002", pace=PACE)
            turn = await english.say(*speech)
            assert await german.wait_heard(turn.ended, quiet_s=1.0, timeout=180)
            [record] = await feed.wait_utterances(1, timeout=30)
            await feed.stop()
        assert len(record["source_text"].split()) >= 3, record  # the recorded prompt, recognized in a replica
        assert record["translations"]["de-DE"].strip(), record
        assert german.received_frames > 50
    finally:
        delete_apps(settings)


def test_bench_replicas_settings_put_every_stage_on_ray_with_the_count_asked() -> None:
    from babelfish.devtools.bench.replicas import parse_counts, table, with_replicas

    assert parse_counts("2,1,2") == [1, 2]
    with pytest.raises(ValueError):
        parse_counts("0,1")
    settings = with_replicas(Settings(ray={"address": "ray://elsewhere:10001"}), 3)
    assert settings.ray.stages == STAGES and settings.ray.address is None
    assert [getattr(settings.ray, stage).num_replicas for stage in STAGES] == [3, 3, 3]
    level = {"conversations": 1, "p90_s": 1.5}
    text = table({"limit": 2, "results": [{"replicas": 1, "max_conversations": 1, "p90_s_at_max": 1.5,
                                           "total_cpu_percent_at_max": 80.0, "driver_cpu_percent_at_max": 20.0,
                                           "levels": [level]}]})
    assert "1: 1.5" in text.splitlines()[-1]


def test_ray_serves_local_engines_only_and_says_which_setting_to_fix() -> None:
    from babelfish.config.settings import ConfigError
    from babelfish.engines import choice

    with pytest.raises(ConfigError, match="synthesizer.engine 'local'"):
        choice.check(Settings(ray={"stages": ["synthesizer"]}, synthesizer={"engine": "azure"},
                              azure={"key": "k", "region": "westeurope"}))
    with pytest.raises(ConfigError, match="Azure speech translation is a cloud service"):
        choice.check(Settings(ray={"stages": ["recognizer"]}, recognizer={"engine": "azure"},
                              translator={"engine": "azure"}, azure={"key": "k", "region": "westeurope"}))
    choice.check(Settings(ray={"stages": STAGES}))  # the default engines: fine
