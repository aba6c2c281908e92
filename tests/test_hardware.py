"""The engines scale with the hardware (config/hardware.py): the device and thread settings reach the engines'
constructors (patched here: no GPU on the test machines), the startup log names what runs where, and
``scripts/gpu-check.sh`` runs its CPU half."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import ctranslate2
import faster_whisper
import llama_cpp
import pytest
from starlette.testclient import TestClient

from babelfish.config import hardware
from babelfish.config.settings import ConfigError, Settings, load_settings
from babelfish.devtools import gpu_check
from babelfish.engines.factories import load_recognizer, load_translator
from tests.conftest import double_engines


class Recorder:
    """Stands in for an engine library's model class: remembers how it was built."""

    calls: list[dict[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).calls.append({"args": args, **kwargs})


def recorder() -> type[Recorder]:
    return type("Recorded", (Recorder,), {"calls": []})


def cores(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)))


def gpus(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """CTranslate2 sees ``n`` CUDA devices; llama.cpp can offload where n > 0."""
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: n)
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: n > 0)


@pytest.fixture
def whisper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[type[Recorder], dict[str, Any]]:
    """faster_whisper.WhisperModel patched; recognizer settings naming a model directory (nothing to assemble)."""
    model = recorder()
    monkeypatch.setattr(faster_whisper, "WhisperModel", model)
    (tmp_path / "whisper").mkdir()
    return model, {"model": str(tmp_path / "whisper")}


@pytest.fixture
def llama(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[type[Recorder], dict[str, Any]]:
    """llama_cpp.Llama patched; translator settings naming a GGUF file (nothing to assemble)."""
    model = recorder()
    monkeypatch.setattr(llama_cpp, "Llama", model)
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    return model, {"model_path": str(tmp_path / "model.gguf")}


@pytest.mark.parametrize(("n", "expected"), [
    (1, {"whisper": 1, "llama": 1, "gemma": 1, "kokoro": 1, "piper": 1, "ctranslate2": 1}),
    (2, {"whisper": 2, "llama": 2, "gemma": 1, "kokoro": 2, "piper": 2, "ctranslate2": 2}),  # measured: today's
    (4, {"whisper": 2, "llama": 2, "gemma": 1, "kokoro": 2, "piper": 2, "ctranslate2": 2}),
    (16, {"whisper": 8, "llama": 8, "gemma": 4, "kokoro": 4, "piper": 4, "ctranslate2": 8}),
    (64, {"whisper": 8, "llama": 8, "gemma": 4, "kokoro": 4, "piper": 4, "ctranslate2": 8}),
])
def test_unset_threads_are_derived_from_the_cores_this_process_may_use(n, expected, monkeypatch) -> None:
    cores(monkeypatch, n)
    assert {engine: hardware.default_threads(engine) for engine in expected} == expected
    settings = Settings()
    assert (settings.recognizer.whisper_threads, settings.translator.llama_threads) == (expected["whisper"],
                                                                                      expected["llama"])
    assert Settings(translator={"model": "gemma-270m"}).translator.llama_threads == expected["gemma"]


@pytest.mark.parametrize("n", [2, 4, 16])
def test_the_derived_threads_reach_the_engines_and_an_explicit_number_wins(n, whisper, llama, monkeypatch) -> None:
    cores(monkeypatch, n)
    gpus(monkeypatch, 0)
    (model, recognizer), (llm, translator) = whisper, llama
    load_recognizer(Settings(recognizer=recognizer))
    load_recognizer(Settings(recognizer={**recognizer, "cpu_threads": 3}))
    assert [call["cpu_threads"] for call in model.calls] == [hardware.default_threads("whisper", n), 3]
    load_translator(Settings(translator=translator))
    load_translator(Settings(translator={**translator, "model": "gemma-270m"}))
    load_translator(Settings(translator={**translator, "threads": 5}))
    assert [call["n_threads"] for call in llm.calls] == [{2: 2, 4: 2, 16: 8}[n], {2: 1, 4: 1, 16: 4}[n], 5]


@pytest.mark.parametrize(("device", "gpu_count", "expected"), [
    ("cuda", 1, ("cuda", "float16", -1)),
    ("cpu", 1, ("cpu", "int8", 0)),
    ("auto", 1, ("cuda", "float16", -1)),
    ("auto", 0, ("cpu", "int8", 0)),
])
def test_the_device_reaches_whisper_and_llama(device, gpu_count, expected, whisper, llama, monkeypatch) -> None:
    gpus(monkeypatch, gpu_count)
    (model, recognizer), (llm, translator) = whisper, llama
    engine = load_recognizer(Settings(recognizer={**recognizer, "device": device}))
    load_translator(Settings(translator={**translator, "device": device}))
    (built,), (loaded,) = model.calls, llm.calls
    assert (built["device"], built["compute_type"], loaded["n_gpu_layers"]) == expected
    assert getattr(engine, "device", None) == expected[0]


def test_explicit_compute_type_and_gpu_layers_win(whisper, llama, monkeypatch) -> None:
    gpus(monkeypatch, 1)
    (model, recognizer), (llm, translator) = whisper, llama
    load_recognizer(Settings(recognizer={**recognizer, "device": "cuda", "compute_type": "int8_float16"}))
    load_translator(Settings(translator={**translator, "device": "cuda", "gpu_layers": 20}))
    load_translator(Settings(translator={**translator, "device": "cpu", "gpu_layers": 20}))  # the CPU offloads none
    assert model.calls[0]["compute_type"] == "int8_float16"
    assert [call["n_gpu_layers"] for call in llm.calls] == [20, 0]


def test_the_device_reaches_a_ctranslate2_translator(monkeypatch, tmp_path) -> None:
    import sentencepiece

    translator = recorder()
    monkeypatch.setattr(ctranslate2, "Translator", translator)
    monkeypatch.setattr(sentencepiece, "SentencePieceProcessor", lambda **kwargs: object())
    model = tmp_path / "opus-mt-de-en"
    model.mkdir()
    for name in ("model.bin", "source.spm", "target.spm"):
        (model / name).write_bytes(b"")
    for device, gpu_count in (("cuda", 1), ("cpu", 1), ("auto", 0), ("auto", 2)):
        gpus(monkeypatch, gpu_count)
        settings = Settings(translator={"engine": "ctranslate2", "device": device, "threads": 3,
                                        "ctranslate2_models": {"de-en": str(model)}})
        load_translator(settings).load("de", "en")  # type: ignore[attr-defined]
    assert [(c["device"], c["compute_type"], c["intra_threads"]) for c in translator.calls] == [
        ("cuda", "float16", 3), ("cpu", "int8", 3), ("cpu", "int8", 3), ("cuda", "float16", 3)]


def test_cuda_where_there_is_none_stops_startup_naming_the_setting(whisper, llama, monkeypatch) -> None:
    gpus(monkeypatch, 0)
    with pytest.raises(ConfigError, match=r"^recognizer\.device is 'cuda' but CTranslate2 finds no CUDA device"):
        load_recognizer(Settings(recognizer={**whisper[1], "device": "cuda"}))
    with pytest.raises(ConfigError, match=r"^translator\.device is 'cuda' but this llama-cpp-python build cannot "
                                          r"offload.*-DGGML_CUDA=on"):
        load_translator(Settings(translator={**llama[1], "device": "cuda"}))
    assert whisper[0].calls == llama[0].calls == []


@pytest.mark.parametrize("env", ["BABELFISH_RECOGNIZER__DEVICE", "BABELFISH_TRANSLATOR__DEVICE"])
def test_a_device_that_does_not_exist_is_a_one_line_settings_error(env, monkeypatch) -> None:
    monkeypatch.setenv(env, "gpu")
    with pytest.raises(ConfigError) as error:
        load_settings()
    section = env.split("__")[0].removeprefix("BABELFISH_").lower()
    assert str(error.value) == f"{section}.device: Input should be 'auto', 'cpu' or 'cuda'"


def test_the_voices_get_the_derived_threads(monkeypatch, tmp_path) -> None:
    import onnxruntime

    from babelfish.engines.kokoro import KokoroModel
    from babelfish.engines.piper import PiperSynthesizer, packaged_voice

    sessions: list[int] = []

    class Session:
        def __init__(self, path: str, sess_options: Any, providers: list[str]) -> None:
            sessions.append(sess_options.intra_op_num_threads)

        def get_inputs(self) -> list[Any]:
            return []

    monkeypatch.setattr(onnxruntime, "InferenceSession", Session)
    cores(monkeypatch, 16)
    model = tmp_path / "kokoro.onnx"
    model.write_bytes(b"")
    kokoro = KokoroModel(tmp_path, model_path=model)
    piper = PiperSynthesizer(*packaged_voice())
    KokoroModel(tmp_path, model_path=model, threads=1)
    cores(monkeypatch, 2)
    KokoroModel(tmp_path, model_path=model)
    assert sessions == [4, 4, 1, 2]
    assert (kokoro.describe(), piper.describe()) == ("kokoro kokoro.onnx on cpu, 4 threads",
                                                     "piper en_US-joe-medium.onnx on cpu, 4 threads")


def test_the_startup_log_names_each_engine_and_the_browser_addresses(whisper, llama, monkeypatch, caplog,
                                                                      tmp_path) -> None:
    from babelfish.server.app import create_app

    gpus(monkeypatch, 1)
    cores(monkeypatch, 16)
    settings = Settings(recognizer=whisper[1], translator={**llama[1], "model": "gemma-270m"},
                        data_dir=tmp_path / "data", port=8123)
    engines = double_engines()
    engines.recognizer, engines.translator = load_recognizer(settings), load_translator(settings)
    caplog.set_level(logging.INFO, logger="babelfish")
    with TestClient(create_app(settings, engines)):
        pass
    lines = [r.getMessage() for r in caplog.records]
    assert "recognizer: whisper " + whisper[1]["model"] + " on cuda (float16), 8 threads" in lines
    assert "translator: gemma model.gguf on cuda, all layers on the GPU, 4 threads" in lines
    assert ("browser phone: http://127.0.0.1:8123/phone (open to anyone who reaches it); operator console: "
            "http://127.0.0.1:8123/console") in lines

    caplog.clear()
    monkeypatch.delenv("BABELFISH_SECURITY__OPERATOR_TOKEN")
    public = Settings(public_url="https://bf.example.org/", security={"signature_secret": "s"},
                      data_dir=tmp_path / "data")
    with TestClient(create_app(public, engines)):
        pass
    assert ("browser phone: https://bf.example.org/phone (with a join link from the console); operator console: "
            "https://bf.example.org/console (off until security.operator_token is set)") in [
        r.getMessage() for r in caplog.records]


def test_the_voices_say_which_languages_each_kind_speaks(monkeypatch, tmp_path) -> None:
    from babelfish.engines.voices import Voices

    class Fake:
        def __init__(self, spec: str) -> None:
            self.spec = spec

        def describe(self) -> str:
            return f"{self.spec.partition(':')[0]} model on cpu, 2 threads"

    monkeypatch.setattr(Voices, "_load", lambda self, spec, language="": Fake(spec))
    voices = Voices({"de": "espeak:de", "fr": "espeak:de", "en": "piper:joe"}, tmp_path)
    for tag in ("de-DE", "fr-FR", "en-GB"):
        voices.get(tag)
    assert voices.describe() == ["espeak model on cpu, 2 threads: de (espeak:de), fr (espeak:de)",
                                 "piper model on cpu, 2 threads: en (piper:joe)"]


def test_gpu_check_without_a_gpu_says_what_is_missing(monkeypatch, capsys) -> None:
    gpus(monkeypatch, 0)
    assert gpu_check.main(["--translator", "gemma-270m"]) == gpu_check.NO_GPU
    err = capsys.readouterr().err
    assert "no GPU path" in err and "finds no CUDA device" in err and "-DGGML_CUDA=on" in err
    with pytest.raises(SystemExit):
        gpu_check.main(["--translator", "gpt-9"])
    with pytest.raises(SystemExit):
        gpu_check.main(["--repeat", "0"])


@pytest.mark.e2e
def test_gpu_check_runs_its_cpu_half_on_the_smallest_models(models_dir, tmp_path, capsys) -> None:
    """The real recognizer and Gemma on the recorded prompt: what the GPU machine runs, on the CPU only."""
    from babelfish.devtools import corpus

    if corpus.missing_packages(["asterisk-core-sounds-en-wav", "asterisk-core-sounds-en"]):
        pytest.skip("the recorded prompts are missing: install asterisk-core-sounds-en-wav and -en (make test does)")
    out = tmp_path / "gpu-check.json"
    assert gpu_check.main(["--cpu-only", "--translator", "gemma-270m", "--repeat", "1",
                           "--models-dir", str(models_dir), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    recognizer, translator = result["engines"]["recognizer"], result["engines"]["translator"]
    assert "agent" in recognizer["cpu"]["output"].lower() and translator["cpu"]["output"]
    assert recognizer["cpu"]["engine"].startswith("whisper base on cpu (int8)")
    assert recognizer["speedup"] is None and recognizer["cpu"]["seconds"] > 0
    assert "speed-up" in capsys.readouterr().out
