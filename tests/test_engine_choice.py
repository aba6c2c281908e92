"""Engine choice per stage: a chosen engine without its credentials or package stops startup with one line
naming the setting; nothing falls back silently. And the original 2018 hack's settings, mapped onto ours."""

from __future__ import annotations

import sys

import pytest

from babelfish import cli
from babelfish.config import legacy
from babelfish.config.settings import ConfigError, Settings, load_settings
from babelfish.engines.azure import AzureSpeech
from babelfish.engines.registry import load_engines

AZURE_ALL = {"recognizer": {"engine": "azure"}, "translator": {"engine": "azure"},
             "synthesizer": {"engine": "azure"}}


@pytest.mark.parametrize("overrides, message", [
    ({"synthesizer": {"engine": "vonage-talk"}},
     "synthesizer.engine 'vonage-talk' needs the Vonage application: set BABELFISH_VONAGE__APPLICATION_ID and "
     "BABELFISH_VONAGE__PRIVATE_KEY"),
    ({"synthesizer": {"engine": "vonage-talk"}, "vonage": {"application_id": "app", "private_key": "/nowhere.key"}},
     "Vonage private key: '/nowhere.key' is neither PEM text nor a readable file"),
    ({"recognizer": {"engine": "azure"}},
     "set both BABELFISH_RECOGNIZER__ENGINE=azure and BABELFISH_TRANSLATOR__ENGINE=azure (now 'azure' and 'llama')"),
    ({"translator": {"engine": "azure"}}, "(now 'whisper' and 'azure')"),
    (AZURE_ALL, "recognizer.engine 'azure' and translator.engine 'azure' and synthesizer.engine 'azure' needs "
                "Azure Speech credentials: set BABELFISH_AZURE__KEY (or BABELFISH_AZURE__TOKEN)"),
    ({"synthesizer": {"engine": "azure"}, "azure": {"key": "k"}},
     "synthesizer.engine 'azure' needs the Speech resource's region: set BABELFISH_AZURE__REGION"),
    ({"synthesizer": {"engine": "azure"}, "azure": {"key": "k", "token": "t", "region": "westeurope"}},
     "set BABELFISH_AZURE__KEY or BABELFISH_AZURE__TOKEN, not both"),
    ({"synthesizer": {"engine": "azure"}, "azure": {"token": "t", "endpoint": "wss://x"}},
     "an authorization token (BABELFISH_AZURE__TOKEN) goes with BABELFISH_AZURE__REGION"),
])
def test_a_chosen_engine_without_what_it_needs_fails_at_load(tmp_path, overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_engines(Settings(models_dir=tmp_path, **overrides))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_azure_without_its_package_names_the_extra(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.cognitiveservices.speech", None)  # as if not installed
    settings = Settings(models_dir=tmp_path, synthesizer={"engine": "azure"},
                        azure={"key": "k", "region": "westeurope"})
    with pytest.raises(ConfigError, match=r"need the Azure Speech SDK: pip install 'babelfish\[azure\]'"):
        load_engines(settings)


def test_serve_stops_with_one_line_before_loading_anything(tmp_path, capsys) -> None:
    config = tmp_path / "babelfish.toml"
    config.write_text('[synthesizer]\nengine = "vonage-talk"\n')
    assert cli.main(["--config", str(config), "serve", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("babelfish: synthesizer.engine 'vonage-talk' needs the Vonage application")
    assert len(err.splitlines()) == 1


def test_azure_everywhere_loads_no_local_model(tmp_path) -> None:
    settings = Settings(models_dir=tmp_path, azure={"key": "k", "region": "westeurope",
                                                    "voices": {"de": "de-DE-KatjaNeural"}}, **AZURE_ALL)
    engines = load_engines(settings)
    assert engines.recognizer is None and engines.translator is None and engines.talk is None
    assert isinstance(engines.speech_translator, AzureSpeech)
    assert engines.voices.spec("de-DE") == "azure:de-DE-KatjaNeural"
    assert engines.voices.spec("en-GB") == "azure:en-GB"
    assert not list(tmp_path.iterdir())  # no model was assembled or fetched


ORIGINAL_CONFIG = '''HOSTNAME = 'abc123.ngrok.io'

CALLER = '447812345678'
LANGUAGE1 = 'de-DE' # the caller's language
VOICE1 = 'Marlene' # a Nexmo voice for the caller's language

LANGUAGE2 = 'en-US' # the other person's language
VOICE2 = 'piper:joe'
'''
ORIGINAL_SECRETS = '''NEXMO_API_KEY = "<your-api-key>"
NEXMO_API_SECRET = "<your-api-secret>"
NEXMO_NUMBER = "+447512345678"
NEXMO_APPLICATION_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
NEXMO_PRIVATE_KEY = \'\'\'-----BEGIN PRIVATE KEY-----
<your-private-key>
-----END PRIVATE KEY-----\'\'\'
MICROSOFT_TRANSLATION_SPEECH_CLIENT_SECRET = "<your-api-key>"
import os  # the files are parsed, not run
os.system("echo this never runs")
'''


def test_the_originals_config_and_secrets_map_onto_our_settings(tmp_path, monkeypatch, caplog) -> None:
    for name in legacy.NAMES:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config.py").write_text(ORIGINAL_CONFIG)
    (tmp_path / "secrets.py").write_text(ORIGINAL_SECRETS)
    monkeypatch.setenv("BABELFISH_VONAGE__NUMBER", "447700900000")  # our own names win
    settings = load_settings(tmp_path / "config.py")
    assert settings.public_url == "https://abc123.ngrok.io"
    assert settings.numbers == {"447812345678": "de-DE"}
    assert settings.default_languages == ["de-DE", "en-US"]
    assert settings.synthesizer.voices == {"en": "piper:joe"}
    assert settings.vonage.number == "447700900000"
    assert settings.vonage.application_id == "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
    assert settings.vonage.private_key.startswith("-----BEGIN PRIVATE KEY-----")
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert "VOICE1='Marlene' is a retired Nexmo voice name" in warnings
    assert "MICROSOFT_TRANSLATION_SPEECH_CLIENT_SECRET is for the retired Microsoft Translator Speech API" in warnings


def test_the_originals_names_as_environment_variables(tmp_path, monkeypatch) -> None:
    for name in legacy.NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEXMO_NUMBER", "+447512345678")
    monkeypatch.setenv("CALLER", "+4915112345678")
    monkeypatch.setenv("LANGUAGE1", "de-DE")
    monkeypatch.setenv("LANGUAGE2", "en-GB")
    monkeypatch.setenv("VOICE1", "de-DE-KatjaNeural")
    monkeypatch.setenv("HOSTNAME", "build-box-7")  # set by shells and containers: not the original's setting
    settings = Settings(models_dir=tmp_path)
    assert settings.vonage.number == "+447512345678"
    assert settings.numbers == {"4915112345678": "de-DE"}
    assert settings.default_languages == ["de-DE", "en-GB"]
    assert settings.azure.voices == {"de": "de-DE-KatjaNeural"}
    assert settings.public_url is None
    monkeypatch.setenv("BABELFISH_DEFAULT_LANGUAGES", '["fr-FR", "en-GB"]')
    assert Settings(models_dir=tmp_path).default_languages == ["fr-FR", "en-GB"]
