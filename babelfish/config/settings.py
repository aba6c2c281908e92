"""One typed settings object, read from ``BABELFISH_*`` environment variables and an optional TOML file.

Nested values use ``__`` in environment variables, e.g. ``BABELFISH_SEGMENTER__END_OF_TURN_MS=400``;
maps are JSON, e.g. ``BABELFISH_NUMBERS='{"447700900001": "de-DE"}'``. The original 2018 hack's settings
(``NEXMO_NUMBER``, ``CALLER``, ``LANGUAGE1``, ...) are understood too, with the lowest priority: see
:mod:`babelfish.config.legacy`.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from babelfish.config.errors import ConfigError
from babelfish.config.pipeline import (
    AzureSettings,
    GlossarySettings,
    InterpretationSettings,
    RaySettings,
    RecognizerSettings,
    Section,
    SegmenterSettings,
    SynthesizerSettings,
    TranslatorSettings,
    TurnSettings,
)


def offered_language(tag: str) -> str:
    """``tag`` if babelfish offers its language (``de-DE``, ``de_DE`` and ``de`` alike), else a clear error at
    startup (not an espeak-ng traceback in the middle of a call)."""
    from babelfish.core import languages

    if not isinstance(tag, str) or languages.primary(tag) not in languages.NAMES:
        raise ValueError(f"{tag!r} is not a language babelfish offers (one of {', '.join(languages.NAMES)}; "
                         "a tag such as de-DE)")
    return tag


class MenuSettings(Section):
    """The spoken DTMF menu at the start of a call."""

    languages: list[str] | None = Field(
        None, description="menu options 1, 2, ... each announced in its own language; unset: every language "
        "`babelfish bench languages` rated good or usable on the installed engines (babelfish/engines/support.py; "
        "`babelfish languages` lists them and why the others are left out); empty: no menu (callers get the "
        "numbers map or default_languages)")
    remember: bool = Field(True, description="a caller's choice is remembered for their next call")

    @property
    def options(self) -> list[str]:
        """The menu's languages in order (the server fills an unset list in from the measured verdicts)."""
        return self.languages or []

    @field_validator("languages")
    @classmethod
    def _offered_languages(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [offered_language(tag) for tag in value]
    room_codes: bool = Field(False, description="ask callers for a room code after the language")
    timeout_s: int = Field(6, ge=1, le=10, description="seconds Vonage waits for a key press")


class LanguageSettings(Section):
    """Which language a caller speaks, heard from their speech (Whisper's language probabilities among the
    room's languages, in the recognition pass itself); see docs/languages.md."""

    detect: Literal["off", "confirm", "auto"] = Field(
        "off", description="'confirm': the menu runs, and a caller heard speaking another room language "
        "switch_after utterances in a row is switched (with a notice); 'auto': no menu, the first utterance "
        "decides, later switches as in 'confirm'")
    min_confidence: float = Field(
        0.9, ge=0.5, le=1.0, description="an utterance counts as another language when that language's share "
        "among the candidates is at least this (chosen on the dev split: benchmarks/README.md)")
    switch_after: int = Field(2, ge=1, le=5, description="confident utterances in a row before the leg switches")
    min_speech_s: float = Field(0.8, ge=0.0, le=5.0, description="shorter utterances are not identified")


class AccessSettings(Section):
    """Who may use the service."""

    allowed: list[str] = Field(
        default_factory=list, description="numbers allowed to call in and invite; empty: anyone may call")
    invites: dict[str, str] = Field(
        default_factory=dict, description="caller -> number the server rings for them as soon as they call")
    invite_timeout_s: float = Field(120.0, ge=10, description="an invitation not answered by then expires")
    invite_prefixes: list[str] = Field(
        default_factory=list, description="keypad invitations may only ring numbers starting with one of these "
        "(e.g. [\"44\", \"49\"]); empty: any number an allowed caller types")
    invites_per_hour: int = Field(3, ge=0, description="keypad invitations one caller may place per hour")


class RoomSettings(Section):
    conference_size: int = Field(6, ge=2, le=16, description="most legs in a room joined by code")


class TranscriptSettings(Section):
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file transcripts.db in data_dir")
    token: str | None = Field(None, description="bearer token for the /calls API (unset: the API is off)")
    retention_days: float | None = Field(None, gt=0, description="delete transcripts older than this")
    mask_numbers: bool = Field(True, description="store phone numbers as 44*******123")

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        return guessable("transcripts.token", value)


class VonageSettings(Section):
    """The Vonage application, for the REST calls the server makes (outbound calls, talk into a call)."""

    application_id: str | None = Field(None, description="the Vonage application's id")
    private_key: str | None = Field(None, description="the application's private key: PEM text or a file path")
    api_url: str = Field("https://api.nexmo.com", description="Voice API base URL (a fake's, in tests)")
    number: str | None = Field(None, description="our Vonage number: the caller id of outbound calls")
    talk_styles: dict[str, int] = Field(
        default_factory=dict, description="synthesizer.engine 'vonage-talk': Vonage voice style per language "
        "(a regional tag or its primary language, e.g. {\"de\": 2}); 0 where unset")
    talk_premium: bool = Field(False, description="'vonage-talk': Vonage's premium (neural) voices (billed extra)")


MIN_TOKEN_LENGTH = 24


def guessable(name: str, value: str | None) -> str | None:
    """Refuse a bearer token short enough to guess by trying (a 4-digit one fell in 20 s)."""
    if value is not None and len(value) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{name} is {len(value)} characters: use {MIN_TOKEN_LENGTH} or more, e.g. the output of "
                         "`openssl rand -hex 24` or `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    return value


class SecuritySettings(Section):
    """Who may talk to the server: signed webhooks and authenticated audio sockets."""

    signature_secret: SecretStr | None = Field(
        None, description="the Vonage account's signature secret: webhooks must carry a JWT signed with it "
        "(unset: webhooks are not checked, with a loud warning at startup)")
    operator_token: SecretStr | None = Field(
        None, description="the operator's bearer token for /rooms, /captions, /metrics and /phone/links "
        "(unset: those are off, 403)")
    metrics_open: bool = Field(False, description="serve /metrics without the operator token (a private scraper)")

    @field_validator("operator_token")
    @classmethod
    def _operator_token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        guessable("security.operator_token", value.get_secret_value() if value is not None else None)
        return value
    signature_max_age_s: float = Field(
        300.0, ge=5.0, le=86400.0, description="a signed webhook whose JWT was issued longer ago is refused")
    socket_token_secret: SecretStr | None = Field(
        None, description="HMAC key for the websocket tokens put in the NCCO (unset: random per process; set "
        "the same value on servers that share calls)")
    socket_token_ttl_s: float = Field(
        120.0, ge=5.0, le=3600.0, description="how long after the NCCO its websocket may be opened")
    vonage_socket_auth: bool = Field(
        False, description="also ask Vonage to sign the websocket upgrade (endpoint authorization "
        "'vonage'); needs signature_secret")


class LimitsSettings(Section):
    """Bounds that keep one caller, a flood or a slow engine from taking the server down."""

    max_legs: int = Field(200, ge=1, description="concurrent legs; further callers hear that all lines are busy")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="longest request body; longer ones get 413")
    max_header_bytes: int = Field(
        16 * 1024, ge=4096, le=1024 * 1024, description="longest request line plus headers; longer ones get 400")
    request_timeout_s: float = Field(
        10.0, gt=0, le=300.0, description="a client must send its whole request (headers and body) within this "
        "long, or it is disconnected (slow clients: slowloris)")
    waiting_connections: int | None = Field(
        None, ge=1, description="connections that may wait for a request at once; a new one closes the oldest "
        "(unset: a quarter of the process's open-file limit, at most 1024)")
    max_subscribers: int = Field(
        50, ge=1, description="open operator feeds (/captions, the console's) at once; as many again for the "
        "browser phones' /phone/events")
    feeds_per_leg: int = Field(3, ge=1, description="/phone/events sockets one browser leg may hold open")
    feeds_per_address: int = Field(8, ge=1, description="/phone/events sockets one client address may hold open")
    subscriber_idle_s: float = Field(
        300.0, ge=1.0, description="a /captions or /phone/events socket with nothing to send this long is closed")
    audio_speed: float = Field(
        1.5, ge=1.0, description="a leg sending audio faster than this many times real time is throttled")
    audio_ahead_s: float = Field(
        5.0, ge=0.5, description="a leg whose audio runs this far ahead of real time is closed (1008)")
    max_call_s: float = Field(3600.0, ge=1.0, description="a leg is ended, with a spoken notice, after this long")
    connect_within_s: float = Field(
        120.0, ge=1.0, description="a leg whose websocket does not open this long after the answer is ended")
    webhook_rate: float = Field(50.0, gt=0, description="webhook requests per second per client address")
    webhook_burst: int = Field(200, ge=1, description="requests a client may send at once before the rate applies")
    inbound_frames: int = Field(500, ge=10, le=6000, description="20 ms frames queued per leg for the segmenter")
    pending_utterances: int = Field(4, ge=1, le=64, description="utterances queued per leg for recognition")
    recognize_timeout_s: float = Field(30.0, gt=0, description="a recognition taking longer is abandoned")
    translate_timeout_s: float = Field(30.0, gt=0, description="a translation taking longer is abandoned")
    synthesize_timeout_s: float = Field(30.0, gt=0, description="a sentence's synthesis taking longer is abandoned")
    drain_s: float = Field(
        20.0, ge=0.0, le=600.0, description="on shutdown, time given to callers to hear the notice and to "
        "in-flight utterances to finish")


class PhoneSettings(Section):
    """The browser phone (``/phone``): who may join a room from a browser, and how many may at once."""

    access: Literal["open", "link", "off"] | None = Field(
        None, description="'open': anyone who reaches the page; 'link': only with a signed join link from the "
        "operator; 'off': no browser legs. Unset: 'link' when security.signature_secret is set, else 'open'")
    link_secret: SecretStr | None = Field(
        None, description="HMAC key of join links (default: derived from security.operator_token); changing it "
        "revokes every link issued")
    link_ttl_s: float = Field(3600.0, ge=60.0, le=30 * 86400.0, description="default lifetime of a join link")
    max_legs: int = Field(20, ge=0, description="browser legs at once (apart from limits.max_legs)")
    idle_s: float = Field(120.0, ge=5.0, description="a browser leg that sends no voice this long is ended")


class NetworkSettings(Section):
    """Where requests come from."""

    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1"], description="addresses whose X-Forwarded-For is believed; the "
        "client is the rightmost address not among them")


class ClusterSettings(Section):
    """Several servers behind one number (see docs/scaling.md): call state shared in Redis, each room kept
    on one server. Unset ``redis_url``: one server, all state in the process."""

    redis_url: str | None = Field(
        None, description="Redis URL of the shared call state, e.g. redis://10.0.0.5:6379/0 (unset: one server)")
    server_id: str | None = Field(
        None, description="this server's name in the cluster (default: host name, port and a random suffix)")
    shared_url: str | None = Field(
        None, description="the load balancer's public URL: webhooks in NCCOs point there (default: public_url)")
    heartbeat_s: float = Field(2.0, gt=0, le=60, description="how often a server says it is alive")
    server_ttl_s: float = Field(
        6.0, gt=0, le=600, description="a server silent this long is gone: survivors take over its rooms")
    hold_s: float = Field(
        20.0, ge=0, le=300, description="after its socket drops, a caller hears a 'please hold' notice this "
        "long while a survivor takes the room over (then the call ends)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BABELFISH_", env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: str | None = Field(
        None, description="public base URL Vonage reaches us on (https://...); default: the request's host"
    )
    sample_rate: int = Field(16000, description="audio rate of the socket Vonage opens (8000, 16000 or 24000)")
    numbers: dict[str, str] = Field(default_factory=dict, description="phone number -> language (BCP-47)")
    default_languages: list[str] = Field(
        default_factory=lambda: ["de-DE", "en-GB"],
        description="languages given to unmapped callers: the first caller of a room gets the first, "
        "the partner the first one not already spoken in the room",
    )
    playback_lead_ms: int = Field(
        1000, ge=20, le=60000, description="how far ahead of real time we send audio to Vonage's buffer"
    )
    max_message_bytes: int = 64 * 1024
    log_format: Literal["text", "json"] = Field("text", description="'json': one JSON object per log line")
    models_dir: Path = Field(Path.home() / ".cache" / "babelfish", description="where fetched models go")
    segmenter: SegmenterSettings = Field(default_factory=SegmenterSettings)
    turns: TurnSettings = Field(default_factory=TurnSettings)
    interpretation: InterpretationSettings = Field(default_factory=InterpretationSettings)
    recognizer: RecognizerSettings = Field(default_factory=RecognizerSettings)
    translator: TranslatorSettings = Field(default_factory=TranslatorSettings)
    glossary: GlossarySettings = Field(default_factory=GlossarySettings)
    synthesizer: SynthesizerSettings = Field(default_factory=SynthesizerSettings)
    vonage: VonageSettings = Field(default_factory=VonageSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    azure: AzureSettings = Field(default_factory=AzureSettings)
    menu: MenuSettings = Field(default_factory=MenuSettings)
    languages: LanguageSettings = Field(default_factory=LanguageSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    rooms: RoomSettings = Field(default_factory=RoomSettings)
    transcripts: TranscriptSettings = Field(default_factory=TranscriptSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    phone: PhoneSettings = Field(default_factory=PhoneSettings)
    deployment: NetworkSettings = Field(default_factory=NetworkSettings)
    data_dir: Path = Field(Path.home() / ".local" / "share" / "babelfish",
                           description="where the transcript database lives by default")

    @property
    def database_url(self) -> str:
        return self.transcripts.database_url or f"sqlite:///{self.data_dir / 'transcripts.db'}"

    @property
    def phone_access(self) -> str:
        """The browser phone's access mode, with its default filled in."""
        if self.phone.access is not None:
            return self.phone.access
        return "link" if self.security.signature_secret else "open"

    @field_validator("sample_rate")
    @classmethod
    def _supported_rate(cls, value: int) -> int:
        from babelfish.core.audio import SUPPORTED_RATES

        if value not in SUPPORTED_RATES:
            raise ValueError(f"sample_rate must be one of {', '.join(map(str, SUPPORTED_RATES))}")
        return value

    @field_validator("default_languages")
    @classmethod
    def _at_least_one(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("default_languages needs at least one language")
        return [offered_language(tag) for tag in value]

    @field_validator("numbers")
    @classmethod
    def _numbers_speak_offered_languages(cls, value: dict[str, str]) -> dict[str, str]:
        return {number: offered_language(tag) for number, tag in value.items()}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from babelfish.config.legacy import LegacySource

        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = _CONFIG_FILE.get("path")
        if config is not None and config.suffix != ".py":
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        # the original 2018 hack's names (its config.py / secrets.py, or environment variables): lowest priority
        legacy = config if config is not None and config.suffix == ".py" else None
        sources.append(LegacySource(settings_cls, legacy, os.environ))
        return tuple(sources)


_CONFIG_FILE: dict[str, Path | None] = {"path": None}


def _known(model: type[BaseModel]) -> dict[str, Any]:
    """Setting name -> its section's model (for a section) or None (a value), aliases included."""
    known: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        section = field.annotation if isinstance(field.annotation, type) and issubclass(field.annotation,
                                                                                        BaseModel) else None
        aliases = getattr(field.validation_alias, "choices", None) or [field.validation_alias or name]
        for alias in aliases:
            known[str(alias)] = section
    return known


def _closest(name: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else f" (known: {', '.join(sorted(candidates))})"


def unknown_keys(table: dict[str, Any], model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Every key of a settings file that no setting has, each with the closest known name."""
    known = _known(model or Settings)
    found = []
    for key, value in table.items():
        if key not in known:
            found.append(f"'{prefix}{key}'" + _closest(key, list(known)))
        elif known[key] is not None and isinstance(value, dict):
            found += unknown_keys(value, known[key], f"{prefix}{key}.")
    return found


def _check_file(path: Path) -> None:
    """A TOML file that does not parse, or names a setting that does not exist, stops startup naming the
    file, the line or the key, and the closest known key."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = unknown_keys(table)
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]}"
                          + (f" and {len(unknown) - 1} more: {'; '.join(unknown[1:])}" if len(unknown) > 1 else ""))


def _one_line(error: ValidationError, config: Path | None) -> str:
    """pydantic's report as one line a user can act on: where each bad value came from and what is wrong."""
    where = f"{config}: " if config is not None else ""
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"])
        if item["type"] == "extra_forbidden":  # a key of a section (unknown top-level names are ignored)
            model: Any = Settings
            for step in item["loc"][:-1]:
                model = _known(model).get(str(step)) or model
            env = "BABELFISH_" + location.upper().replace(".", "__")
            parts.append(f"unknown setting '{location}' (environment variable {env}, or the file)"
                         + _closest(str(item["loc"][-1]), list(_known(model))))
        else:
            message = item["msg"].removeprefix("Value error, ")
            parts.append(f"{location}: {message}" if location else message)
    return where + "; ".join(parts)


def _env_error(exc: SettingsError) -> str:
    """'error parsing value for field "limits" from source "EnvSettingsSource"' said in the user's terms:
    the variable, that it must be JSON, and where JSON stopped making sense."""
    field = re.search(r'field "([^"]+)"', str(exc))
    variable = f"BABELFISH_{field.group(1).upper()}" if field else "a BABELFISH_* variable"
    cause = exc.__cause__
    return (f"environment variable {variable} is not valid JSON ({cause}): lists and tables are written as JSON "
            f"there, e.g. '[\"en\", \"de\"]' or '{{\"max_legs\": 10}}'" if cause is not None
            else f"environment variable {variable}: {exc}")


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, then the ``config`` file (TOML, or the original's ``config.py``);
    keyword ``overrides`` win. Anything wrong is one :class:`ConfigError` line: the file, the setting, what
    to do."""
    if config is not None and not Path(config).is_file():
        raise FileNotFoundError(f"config file not found: {config}")
    path = Path(config) if config is not None else None
    if path is not None and path.suffix != ".py":
        _check_file(path)
    _CONFIG_FILE["path"] = path
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, path)) from None
    except SettingsError as exc:  # a complex setting (list, table) in the environment is not JSON
        raise ConfigError(_env_error(exc)) from None
    finally:
        _CONFIG_FILE["path"] = None
