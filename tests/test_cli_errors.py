"""Every user mistake on the command line is one line that says what to do, with exit status 2 and no
traceback (the traceback only with --debug)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from babelfish import cli
from babelfish.core.worker import EngineError


def said(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture(autouse=True)
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BABELFISH_MODELS_DIR", str(tmp_path / "models"))


def test_a_missing_recording_for_translate(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.wav"
    assert cli.main(["translate", str(missing), "--from", "en", "--to", "de", "--out", str(tmp_path / "o.wav")]) == 2
    assert f"no such recording: {missing}" in said(capsys)


def test_a_port_in_use_is_said_before_any_model_loads(monkeypatch, capsys) -> None:
    import babelfish.engines.registry as registry

    loaded = []
    monkeypatch.setattr(registry, "load_engines", lambda settings: loaded.append(settings))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert cli.main(["serve", "--port", str(taken.getsockname()[1])]) == 2
    err = said(capsys)
    assert "Address already in use" in err and "--port" in err
    assert loaded == []  # nothing was loaded for a server that could not listen


def test_a_missing_model_at_serve_is_one_line_with_the_command_that_fetches_it(monkeypatch, capsys) -> None:
    monkeypatch.setenv("BABELFISH_RECOGNIZER__MODEL", "small")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert cli.main(["serve", "--port", str(port)]) == 2
    assert "babelfish models fetch whisper-small" in said(capsys)


@pytest.mark.parametrize("variable", ["BABELFISH_DEFAULT_LANGUAGES", "BABELFISH_LIMITS", "BABELFISH_NUMBERS"])
def test_bad_json_in_an_environment_variable_names_the_variable(monkeypatch, capsys, variable: str) -> None:
    monkeypatch.setenv(variable, "[en" if variable.endswith("LANGUAGES") else "{bad")
    assert cli.main(["languages"]) == 2
    err = said(capsys)
    assert f"environment variable {variable} is not valid JSON" in err


def test_call_against_a_server_without_its_operator_token(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("BABELFISH_SECURITY__OPERATOR_TOKEN", raising=False)
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    assert cli.main(["call", "--server", "http://127.0.0.1:9", "--party", f"en:{wav}", "--party", f"de:{wav}"]) == 2
    assert "BABELFISH_SECURITY__OPERATOR_TOKEN" in said(capsys)


def test_debug_shows_the_traceback(monkeypatch) -> None:
    monkeypatch.setenv("BABELFISH_RECOGNIZER__MODEL", "small")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(EngineError):
        cli.main(["--debug", "serve", "--port", str(port)])


def test_an_unexpected_error_is_one_line_pointing_at_debug(monkeypatch, capsys) -> None:
    def broken(args: object) -> int:
        raise KeyError("surprise")

    monkeypatch.setattr(cli, "cmd_languages", broken)
    assert cli.main(["languages"]) == 1
    assert "--debug" in said(capsys)
