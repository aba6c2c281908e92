"""Settings from the environment and TOML (config/settings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from babelfish.config.settings import Settings, load_settings


def test_settings_from_env_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "babelfish.toml"
    config.write_text('sample_rate = 8000\n[numbers]\n"447700900001" = "fr-FR"\n[segmenter]\nend_of_turn_ms = 400\n')
    monkeypatch.setenv("BABELFISH_PORT", "9000")
    monkeypatch.setenv("BABELFISH_SEGMENTER__MAX_UTTERANCE_S", "8")
    s = load_settings(config)
    assert (s.port, s.sample_rate, s.numbers) == (9000, 8000, {"447700900001": "fr-FR"})
    assert (s.segmenter.end_of_turn_ms, s.segmenter.max_utterance_s) == (400, 8.0)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.toml")


def test_openmp_threads_wait_passively_unless_the_environment_says_otherwise() -> None:
    """The engines' OpenMP runtimes read OMP_WAIT_POLICY when they load: importing babelfish sets PASSIVE
    first (see benchmarks/README.md, bench threads), and leaves a value the user set alone."""
    import os
    import subprocess
    import sys

    script = "import babelfish, os; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    unset = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    chosen = subprocess.run([sys.executable, "-c", script], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                            capture_output=True, text=True, check=True)
    assert (unset.stdout.strip(), chosen.stdout.strip()) == ("PASSIVE", "ACTIVE")


def test_the_cli_says_its_version_and_takes_config_after_the_command(tmp_path, capsys) -> None:
    from babelfish import cli

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("babelfish ")
    config = tmp_path / "babelfish.toml"
    config.write_text("port = 8123\n")
    for argv in (["serve", "--config", str(config)], ["--config", str(config), "serve"]):
        assert cli.build_parser().parse_args(argv).config == str(config)
    assert cli.build_parser().parse_args(["serve"]).config is None


@pytest.mark.parametrize("env", ["BABELFISH_SECURITY__OPERATOR_TOKEN", "BABELFISH_TRANSCRIPTS__TOKEN"])
def test_a_guessable_token_is_refused_at_startup_with_the_command_that_makes_a_good_one(env, monkeypatch) -> None:
    monkeypatch.setenv(env, "1234")
    with pytest.raises(ValueError, match=r"is 4 characters: use 24 or more, e\.g\. the output of `openssl rand"):
        Settings()
    monkeypatch.setenv(env, "x" * 24)
    Settings()


def test_a_misspelt_setting_or_section_is_an_error_naming_the_file_and_the_closest_setting(tmp_path, monkeypatch,
                                                                                            capsys) -> None:
    from babelfish import cli
    from babelfish.config.settings import ConfigError

    config = tmp_path / "babelfish.toml"
    config.write_text('[segmenter]\nend_of_trun_ms = 450\n[translater]\nmodel = "gemma-270m"\n')
    with pytest.raises(ConfigError, match=r"babelfish.toml: unknown setting 'segmenter.end_of_trun_ms' \(did you "
                                          r"mean 'end_of_turn_ms'\?\) and 1 more: 'translater' \(did you mean "
                                          r"'translator'\?\)"):
        load_settings(config)
    config.write_text("port = \n")
    assert cli.main(["serve", "--config", str(config)]) == 2
    said = capsys.readouterr().err
    assert said.startswith(f"babelfish: {config}: not valid TOML") and said.count("\n") == 1
    monkeypatch.setenv("BABELFISH_SEGMENTER__END_OF_TRUN_MS", "450")
    with pytest.raises(ConfigError, match="BABELFISH_SEGMENTER__END_OF_TRUN_MS.*did you mean 'end_of_turn_ms'"):
        load_settings()


@pytest.mark.parametrize(("env", "value", "message"), [
    ("BABELFISH_DEFAULT_LANGUAGES", '["klingon"]', "default_languages: 'klingon' is not a language babelfish offers"),
    ("BABELFISH_NUMBERS", '{"447700900001": "xx-YY"}', "numbers: 'xx-YY' is not a language babelfish offers"),
    ("BABELFISH_MENU__LANGUAGES", '["english"]', "menu.languages: 'english' is not a language babelfish offers"),
    ("BABELFISH_PORT", "99999", "port: Input should be less than or equal to 65535"),
])
def test_languages_and_ports_are_checked_at_startup(env, value, message, monkeypatch) -> None:
    from babelfish.config.settings import ConfigError

    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()
    monkeypatch.delenv(env)
    monkeypatch.setenv("BABELFISH_DEFAULT_LANGUAGES", '["de_DE", "en"]')  # underscores and bare tags are fine
    assert load_settings().default_languages == ["de_DE", "en"]
