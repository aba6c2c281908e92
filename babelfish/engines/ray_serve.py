"""Model inference on Ray Serve: the recognizer, translator and synthesizer as deployments on a Ray cluster,
and the engines a babelfish server uses to call them.

    babelfish server(s) --DeploymentHandle--> Serve app "babelfish-recognizer"  (N replicas, CPU or GPU each)
                        --DeploymentHandle--> Serve app "babelfish-translator"  (batches across calls)
                        --DeploymentHandle--> Serve app "babelfish-synthesizer"

Each stage is its own Serve application (``<ray.app_name>-<stage>``), so one stage can be redeployed or
scaled without touching the others. A replica loads the stage's ordinary local engine (the one
``recognizer.engine`` etc. choose) once and serves every call of every server. The translator batches:
requests arriving within ``batch_wait_timeout_s`` of each other, from any call, go to the engine together
(CTranslate2 translates them in one ``translate_batch``; engines without batching run them one after another
on their worker thread, as they would locally).

The servers call the deployments through a ``DeploymentHandle`` rather than Serve's HTTP proxy: audio goes
as a numpy array through Ray's object store (no WAV or JSON encoding, no extra proxy hop), Serve's router
picks the least busy replica and applies back-pressure per replica, and errors come back as exceptions with
the replica's traceback. The price: every babelfish server joins the Ray cluster as a driver
(``ray.address``), with the same Ray and Python versions as the cluster. HTTP would suit clients outside the
cluster; these servers are not.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from ray import serve

from babelfish.config.pipeline import DeploymentSettings
from babelfish.config.settings import ConfigError, Settings

log = logging.getLogger(__name__)

STAGES = ("recognizer", "translator", "synthesizer")

# Builds a stage's engine inside a replica: (stage, settings) -> recognizer | translator | Voices.
Loader = Callable[[str, Settings], Any]


def load_local(stage: str, settings: Settings) -> Any:
    """The stage's ordinary local engine, as a server without Ray would load it."""
    if stage == "recognizer":
        from babelfish.engines.factories import load_recognizer

        return load_recognizer(settings)
    if stage == "translator":
        from babelfish.engines.factories import load_translator

        return load_translator(settings)
    from babelfish.engines.voices import Voices

    return Voices(settings.synthesizer.voices, settings.models_dir,  # the replica loads the default voices as it warms
                  kokoro_threads=settings.synthesizer.kokoro_threads, piper_threads=settings.synthesizer.piper_threads)


# -- the replicas -----------------------------------------------------------------------------------------

# A replica warms its engine in its constructor (Serve allows an async one): Serve routes calls to a replica
# only once the constructor has returned, so no caller pays for a model's first pass (pages of weights read
# in, a translator's instructions evaluated: seconds, and over a minute on cores shared with other work).

class RecognizerReplica:
    async def __init__(self, settings: Settings, loader: Loader | None = None) -> None:  # type: ignore[misc]
        self.engine = (loader or load_local)("recognizer", settings)
        await self.engine.transcribe(np.zeros(8000, dtype=np.float32), 16000, settings.default_languages[0])

    async def transcribe(self, samples: np.ndarray, rate: int, language: str, prompt: str = "") -> str:
        return await self.engine.transcribe(samples, rate, language, prompt)


class TranslatorReplica:
    async def __init__(self, settings: Settings, loader: Loader | None = None) -> None:  # type: ignore[misc]
        self.engine = (loader or load_local)("translator", settings)
        cfg = settings.ray.translator
        self.translate_batch.set_max_batch_size(cfg.max_batch_size)  # type: ignore[attr-defined]  # serve.batch adds them
        self.translate_batch.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)  # type: ignore[attr-defined]
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        for source, target in itertools.permutations(settings.default_languages, 2):
            await self.engine.translate("Hello.", source, target)  # each pair's instructions, cached from here on

    async def translate(self, text: str, source: str, target: str,
                        context: Sequence[tuple[str, str]] = ()) -> str:
        if context:  # a line with its room's context is its own prompt: nothing to batch it with
            return await self.engine.translate(text, source, target, context)
        return await self.translate_batch((text, source, target))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def translate_batch(self, items: list[tuple[str, str, str]]) -> list[str]:
        self.batch_sizes[len(items)] += 1
        many = getattr(self.engine, "translate_many", None)
        if many is not None:
            return list(await many(items))
        return list(await asyncio.gather(*(self.engine.translate(*item) for item in items)))

    def stats(self) -> dict[int, int]:
        """How many batches of each size this replica ran (for tests and benchmarks)."""
        return dict(self.batch_sizes)


class SynthesizerReplica:
    async def __init__(self, settings: Settings, loader: Loader | None = None) -> None:  # type: ignore[misc]
        self.voices = (loader or load_local)("synthesizer", settings)
        for language in settings.default_languages:
            await self.voices.get(language).synthesize("Hello.")

    async def synthesize(self, text: str, language: str) -> tuple[np.ndarray, int]:
        return await self.voices.get(language).synthesize(text)


REPLICAS: dict[str, type] = {"recognizer": RecognizerReplica, "translator": TranslatorReplica,
                             "synthesizer": SynthesizerReplica}


def app_name(settings: Settings, stage: str) -> str:
    return f"{settings.ray.app_name}-{stage}"


def application(stage: str, settings: Settings, loader: Loader | None = None) -> Any:
    """The Serve application of one stage, with the replicas, CPUs and GPUs its settings ask for."""
    cfg: DeploymentSettings = getattr(settings.ray, stage)
    deployment = serve.deployment(
        name=REPLICAS[stage].__name__.removesuffix("Replica"),
        num_replicas=cfg.num_replicas,
        max_ongoing_requests=cfg.max_ongoing_requests,
        ray_actor_options={"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus},
    )(REPLICAS[stage])
    return deployment.bind(settings, loader)


def init(settings: Settings, **ray_options: Any) -> None:
    """Join the Ray cluster at ``ray.address`` (or start a local Ray without one), once per process."""
    import ray

    if not ray.is_initialized():
        ray.init(address=settings.ray.address, namespace="babelfish", log_to_driver=False, **ray_options)


def deploy(settings: Settings, loader: Loader | None = None, stages: Sequence[str] | None = None) -> None:
    """Deploy (or update) the stages' applications; no HTTP proxy: servers use handles."""
    init(settings)
    serve.start(proxy_location="Disabled")
    targets = []
    for stage in stages or settings.ray.stages or list(STAGES):
        cfg: DeploymentSettings = getattr(settings.ray, stage)
        log.info("ray serve: deploying %s (%d replicas, %g CPU, %g GPU each)", app_name(settings, stage),
                 cfg.num_replicas, cfg.num_cpus, cfg.num_gpus)
        targets.append(serve.RunTarget(application(stage, settings, loader), name=app_name(settings, stage),
                                       route_prefix=None))
    serve.run_many(targets)  # the stages' replicas load and warm side by side; back once all are running


def reachable() -> bool:
    """Whether this process is connected to a Ray cluster (for ``/ready``)."""
    try:
        import ray
    except ImportError:
        return False
    return bool(ray.is_initialized())


# -- the engines a babelfish server uses ------------------------------------------------------------------

class RayRecognizer:
    name = "ray:recognizer"

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def transcribe(self, samples: np.ndarray, rate: int, language: str, prompt: str = "") -> str:
        return await self.handle.transcribe.remote(samples, rate, language, prompt)


class RayTranslator:
    name = "ray:translator"

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def translate(self, text: str, source: str, target: str,
                        context: Sequence[tuple[str, str]] = ()) -> str:
        return await self.handle.translate.remote(text, source, target, [tuple(pair) for pair in context])


class RaySynthesizer:
    def __init__(self, handle: Any, language: str) -> None:
        self.handle = handle
        self.language = language
        self.name = f"ray:synthesizer:{language}"

    async def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        return await self.handle.synthesize.remote(text, self.language)


def remote_voices(handle: Any, settings: Settings) -> Any:
    """A :class:`~babelfish.pipeline.synthesize.Voices` whose voices live in the synthesizer deployment."""
    from babelfish.engines.voices import Voices

    class RayVoices(Voices):
        def __init__(self) -> None:
            super().__init__(settings.synthesizer.voices, settings.models_dir)

        def get(self, language: str) -> Any:
            key = ("ray", language)
            if key not in self._loaded:
                self._loaded[key] = RaySynthesizer(handle, language)
            return self._loaded[key]

    return RayVoices()


def connect(settings: Settings, loader: Loader | None = None) -> dict[str, Any]:
    """Engines for the stages in ``ray.stages`` that call their deployments. Without ``ray.address`` a local
    Ray is started and the applications are deployed here (one machine); with it they must have been
    deployed already (``babelfish ray-serve``)."""
    stages = list(dict.fromkeys(settings.ray.stages))
    if settings.ray.address is None:
        deploy(settings, loader, stages)
    else:
        init(settings)
    engines: dict[str, Any] = {}
    for stage in stages:
        try:
            handle = serve.get_app_handle(app_name(settings, stage))
        except Exception as exc:  # noqa: BLE001 - Serve raises several kinds for "no such application"
            raise ConfigError(f"ray.stages has {stage!r} but the Ray cluster at {settings.ray.address} has no "
                              f"application {app_name(settings, stage)!r}: run `babelfish ray-serve` there "
                              f"first ({exc})") from exc
        if stage == "recognizer":
            engines[stage] = RayRecognizer(handle)
        elif stage == "translator":
            engines[stage] = RayTranslator(handle)
        else:
            engines[stage] = remote_voices(handle, settings)
    return engines
