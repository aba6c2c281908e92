"""The production install (docs/deploy.md): the systemd unit, the nginx site in front of a real server (a
whole call over https/wss through it, the client address it forwards, a slowloris it holds off),
``babelfish check-config``, and a server that needs no dev package."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import datetime
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from babelfish import cli
from babelfish.config.settings import LimitsSettings, Settings
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.server.app import Server
from babelfish.server.preflight import read_env_file
from babelfish.server.serving import background_server

from .conftest import FAST_AUDIO, dial_pair, double_engines

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "babelfish.service"
SITE = ROOT / "deploy" / "nginx" / "babelfish.conf"
EXAMPLE = ROOT / "deploy" / "babelfish.example.toml"
SECRET = "deploy-test-signature-secret-of-32-bytes"
BURST = 1000  # webhook_burst in these tests, with a rate so low that every request stays counted
CALLER_ADDRESS = "127.0.0.2"  # where the fake Vonage connects to nginx from (nginx itself: 127.0.0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        pytest.skip("nginx missing: install the Debian package nginx (scripts/install-system.sh does)")
    return found


# -- the systemd unit --------------------------------------------------------------------------------


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` finds nothing wrong in the unit (its commands pointed at this venv's
    ``babelfish``, as they must exist); the settings asked of it are there."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze missing (Debian package systemd): cannot verify the unit")
    text = UNIT.read_text()
    here = Path(sys.executable).parent / "babelfish"
    assert here.exists(), here
    unit = tmp_path / "babelfish.service"
    unit.write_text(text.replace("/opt/babelfish/venv/bin/babelfish", str(here)))
    result = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "babelfish" in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr

    service = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    for key, value in {"User": "babelfish", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "yes", "PrivateTmp": "yes", "ReadWritePaths": "/var/lib/babelfish",
                       "StateDirectory": "babelfish", "LimitNOFILE": "65536", "Restart": "on-failure",
                       "EnvironmentFile": "/etc/babelfish/babelfish.env",
                       "ExecStart": "/opt/babelfish/venv/bin/babelfish serve --config /etc/babelfish/babelfish.toml"
                       }.items():
        assert service.get(key) == value, key
    # stopping drains the calls first: systemd waits longer than the drain the example config gives
    drain_s = tomllib.loads(EXAMPLE.read_text())["limits"]["drain_s"]
    assert int(service["TimeoutStopSec"]) > drain_s and service["KillSignal"] == "SIGTERM"


# -- the nginx site ----------------------------------------------------------------------------------


def test_the_nginx_site_proxies_every_websocket_route_and_matches_the_server_limits() -> None:
    """The websocket location covers every websocket route of the app (no other path is held open for an
    hour), its read timeout outlasts the longest call, and the body limit is the server's."""
    text = SITE.read_text()
    routes = set()
    for path in (ROOT / "babelfish" / "server").glob("*.py"):
        routes |= set(re.findall(r'WebSocketRoute\("([^"]+)"', path.read_text()))
    assert {"/socket", "/captions", "/phone/events"} <= routes
    pattern = re.search(r"location ~ (\S+) \{([^}]*)\}", text)
    assert pattern is not None
    assert all(re.fullmatch(pattern.group(1), route) for route in routes), routes
    assert not re.fullmatch(pattern.group(1), "/answer")
    read_timeout = re.search(r"proxy_read_timeout (\d+)s;", pattern.group(2))
    assert read_timeout is not None and int(read_timeout.group(1)) > LimitsSettings().max_call_s
    limit = LimitsSettings().max_body_bytes
    assert f"client_max_body_size {limit // 1024}k;" in text
    assert tomllib.loads(EXAMPLE.read_text())["limits"]["max_body_bytes"] == limit


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (the test's own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "babelfish test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def replace(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced, which must be there (the shipped site's shape is part of the test)."""
    assert old in text, f"{old!r} is no longer in {SITE}"
    return text.replace(old, new)


def nginx_instance(folder: Path, *, https_port: int, http_port: int, upstream_port: int,
                   header_timeout: str | None = None) -> Path:
    """The shipped site, on loopback ports with a self-signed certificate, inside a main configuration of
    its own (no root paths): the path of that configuration."""
    cert, key = make_certificate(folder)
    site = SITE.read_text()
    site = re.sub(r"\n *listen \[::\]:\d+[^;]*;", "", site)
    site = replace(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = replace(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = replace(site, "server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
    site = replace(site, "/etc/letsencrypt/live/babelfish.example.org/fullchain.pem", str(cert))
    site = replace(site, "/etc/letsencrypt/live/babelfish.example.org/privkey.pem", str(key))
    site = replace(site, "root /var/www/html;", f"root {folder};")
    if header_timeout is not None:
        site = replace(site, "client_header_timeout 10s;", f"client_header_timeout {header_timeout};")
    (folder / "babelfish.conf").write_text(site)
    user = "user root root;" if os.geteuid() == 0 else ""  # workers stay able to read this folder
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                          "uwsgi", "scgi"))
    conf = folder / "nginx.conf"
    conf.write_text(f"""daemon off;
worker_processes 1;
worker_rlimit_nofile 4096;
pid {folder / 'nginx.pid'};
error_log {folder / 'error.log'} warn;
{user}
events {{ worker_connections 2048; }}
http {{
    access_log {folder / 'access.log'};
{temp}
    include {folder / 'babelfish.conf'};
}}
""")
    return conf


def test_nginx_accepts_the_shipped_site(tmp_path: Path) -> None:
    binary = nginx_binary()
    conf = nginx_instance(tmp_path, https_port=free_port(), http_port=free_port(), upstream_port=free_port())
    result = subprocess.run([binary, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "test is successful" in result.stderr, result.stderr


@contextlib.asynccontextmanager
async def nginx_in_front(folder: Path, server_url: str, https_port: int,
                         header_timeout: str | None = None) -> AsyncIterator[ssl.SSLContext]:
    """The real nginx with the shipped site between ``https://127.0.0.1:https_port`` and the server at
    ``server_url``; yields a client TLS context that trusts its certificate."""
    binary = nginx_binary()
    conf = nginx_instance(folder, https_port=https_port, http_port=free_port(),
                          upstream_port=int(server_url.rsplit(":", 1)[1]), header_timeout=header_timeout)
    proc = await asyncio.create_subprocess_exec(binary, "-p", str(folder), "-c", str(conf),
                                                "-e", str(folder / "error.log"),
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", https_port)
                writer.close()
                break
            except OSError:
                assert proc.returncode is None, (await proc.stderr.read()).decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "nginx did not start"
                await asyncio.sleep(0.05)
        yield ssl.create_default_context(cafile=str(folder / "cert.pem"))
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)


def proxied_settings(tmp_path: Path, https_port: int) -> Settings:
    """The server as deployed: public URL nginx's, signed webhooks, nginx (127.0.0.1) its trusted proxy
    (the default), and a webhook rate so low that each request stays counted for its client address."""
    return Settings(public_url=f"https://127.0.0.1:{https_port}", models_dir=tmp_path / "models",
                    data_dir=tmp_path / "data", playback_lead_ms=200, menu={"languages": []},
                    security={"signature_secret": SECRET},
                    limits={"webhook_rate": 0.0001, "webhook_burst": BURST, **FAST_AUDIO})


def seen(server: Server, address: str) -> int:
    """How many guarded requests the server counted for ``address``."""
    return round(BURST - server.rate_limiter.left(address))


def answer_query(uuid: str) -> dict[str, str]:
    return {"to": "447700900000", "from": "447700900077", "uuid": uuid, "conversation_uuid": f"CON-{uuid}"}


async def test_a_whole_call_through_nginx_over_https_and_wss(tmp_path: Path, speech) -> None:
    """Both callers' webhooks over https and their audio over wss through the real nginx: each hears the
    other's translation. The server knows the callers' address from X-Forwarded-For, believed from nginx
    only: a forged header through nginx is replaced, and one sent straight to the server is ignored."""
    samples, rate = speech
    https_port = free_port()
    settings = proxied_settings(tmp_path, https_port)
    async with background_server(settings, double_engines()) as (url, server), \
            nginx_in_front(tmp_path, url, https_port) as tls, \
            FakeVonage(settings.public_url or "", signature_secret=SECRET, ssl_context=tls,
                       local_address=CALLER_ADDRESS) as vonage:
        german, english = await dial_pair(vonage)
        sockets = [endpoint["uri"] for action in german.ncco if action["action"] == "connect"
                   for endpoint in action["endpoint"]]
        assert sockets and sockets[0].startswith(f"wss://127.0.0.1:{https_port}/socket?")
        turn = await german.say(samples, rate)
        assert await english.wait_heard(after=turn.started, quiet_s=0.5, timeout=20)
        turn = await english.say(samples, rate)
        assert await german.wait_heard(after=turn.started, quiet_s=0.5, timeout=20)
        assert german.bad_frames == english.bad_frames == 0

        webhooks = seen(server, CALLER_ADDRESS)
        assert webhooks >= 6  # answer and events of both calls, all from the callers' address
        assert seen(server, "127.0.0.1") == 0  # never nginx's own

        query = answer_query("forged-through-nginx")
        forged = {**vonage.signed(query=query), "X-Forwarded-For": "198.51.100.7"}
        reply = await vonage.http.get(f"{settings.public_url}/answer", params=query, headers=forged)
        assert reply.status_code == 200
        assert seen(server, CALLER_ADDRESS) == webhooks + 1 and seen(server, "198.51.100.7") == 0

        direct = httpx.AsyncHTTPTransport(local_address="127.0.0.3")  # past nginx, to the server's own port
        async with httpx.AsyncClient(transport=direct) as http:
            query = answer_query("forged-direct")
            headers = {**vonage.signed(query=query), "X-Forwarded-For": "198.51.100.8"}
            assert (await http.get(f"{url}/answer", params=query, headers=headers)).status_code == 200
        assert seen(server, "127.0.0.3") == 1 and seen(server, "198.51.100.8") == 0


async def test_a_slowloris_through_nginx_does_not_keep_vonage_out(tmp_path: Path) -> None:
    """A few hundred connections each send half a request and then a header line every two seconds. A
    genuine signed /answer still gets its 200 within 2 s; nginx drops the slow ones (408) once
    client_header_timeout has passed, and none of them ever reaches the server."""
    https_port = free_port()
    settings = proxied_settings(tmp_path, https_port)
    slow: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def drip() -> None:
        for n in range(100):
            await asyncio.sleep(2)
            for _, writer in slow:
                with contextlib.suppress(Exception):
                    writer.write(f"X-Slow-{n}: still typing\r\n".encode())

    async def closed(reader: asyncio.StreamReader) -> bool:
        with contextlib.suppress(Exception):
            while await reader.read(4096):
                pass
        return True

    async with background_server(settings, double_engines()) as (url, server), \
            nginx_in_front(tmp_path, url, https_port, header_timeout="4s") as tls, \
            FakeVonage(settings.public_url or "", signature_secret=SECRET, ssl_context=tls,
                       local_address=CALLER_ADDRESS) as vonage:

        async def half_request() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_connection("127.0.0.1", https_port, ssl=tls,
                                                           local_addr=("127.0.0.4", 0))
            writer.write(b"GET /answer?to=1&from=2&uuid=slow HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            return reader, writer

        slow += await asyncio.gather(*(half_request() for _ in range(300)))
        dripping = asyncio.create_task(drip())
        try:
            await asyncio.sleep(2.5)  # the slow ones have dripped once
            query = answer_query("genuine")
            started = time.monotonic()
            reply = await vonage.http.get(f"{settings.public_url}/answer", params=query,
                                          headers=vonage.signed(query=query))
            assert reply.status_code == 200 and time.monotonic() - started < 2.0
            assert reply.json()[-1]["action"] == "connect"
            await asyncio.wait_for(asyncio.gather(*(closed(reader) for reader, _ in slow)), 15)
        finally:
            dripping.cancel()
            for _, writer in slow:
                writer.close()
        assert seen(server, CALLER_ADDRESS) == 1 and seen(server, "127.0.0.4") == 0
    timed_out = [line for line in (tmp_path / "access.log").read_text().splitlines() if '" 408 ' in line]
    assert len(timed_out) == len(slow) and all(line.startswith("127.0.0.4 ") for line in timed_out)


# -- babelfish check-config ----------------------------------------------------------------------------


@pytest.fixture
def secrets_file(tmp_path: Path) -> Path:
    path = tmp_path / "babelfish.env"
    path.write_text("# as /etc/babelfish/babelfish.env\n"
                    "BABELFISH_SECURITY__OPERATOR_TOKEN=0123456789abcdef0123456789abcdef\n"
                    "BABELFISH_SECURITY__SIGNATURE_SECRET='the vonage signature secret'\n"
                    "#BABELFISH_TRANSCRIPTS__TOKEN=\n")
    return path


def test_check_config_passes_the_example_config(tmp_path: Path, secrets_file: Path) -> None:
    """What the operator runs after installing, as a process: the example config with its secrets file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BABELFISH_SECURITY__")}
    env.update(BABELFISH_MODELS_DIR=str(tmp_path / "models"), BABELFISH_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run([sys.executable, "-m", "babelfish.cli", "check-config", "--config", str(EXAMPLE),
                             "--env-file", str(secrets_file)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"babelfish: configuration OK ({EXAMPLE})")
    assert "https://babelfish.example.org/answer" in result.stdout and "127.0.0.1:8000" in result.stdout


def test_check_config_says_what_is_wrong_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BABELFISH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("BABELFISH_SECURITY__SIGNATURE_SECRET", SECRET)
    broken = tmp_path / "broken.toml"
    broken.write_text(EXAMPLE.read_text().replace("port = 8000", "prot = 8000"))
    assert cli.main(["check-config", "--config", str(broken)]) == 2
    out, err = capsys.readouterr()
    assert not out and len(err.splitlines()) == 1
    assert "unknown setting 'prot'" in err and "did you mean 'port'" in err

    wrong = tmp_path / "wrong.toml"
    wrong.write_text(EXAMPLE.read_text().replace('public_url = "https://', 'public_url = "http://'))
    unset = tmp_path / "unset.env"  # as scripts/install-server.sh leaves it, for the operator to fill in
    unset.write_text("BABELFISH_SECURITY__SIGNATURE_SECRET=\n")
    assert cli.main(["check-config", "--config", str(wrong), "--env-file", str(unset)]) == 2
    out, err = capsys.readouterr()
    assert not out and len(err.splitlines()) == 2
    assert "security.signature_secret is not set" in err and "public_url must be the https://" in err

    short = tmp_path / "short.env"
    short.write_text("BABELFISH_SECURITY__OPERATOR_TOKEN=1234\n")
    monkeypatch.setenv("BABELFISH_SECURITY__OPERATOR_TOKEN", "restored by monkeypatch after the test")
    assert cli.main(["check-config", "--config", str(EXAMPLE), "--env-file", str(short)]) == 2
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and "security.operator_token is 4 characters" in err


def test_check_config_names_a_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BABELFISH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("BABELFISH_SECURITY__SIGNATURE_SECRET", SECRET)
    config = tmp_path / "voices.toml"
    config.write_text(EXAMPLE.read_text() + '\n[recognizer]\nmodel = "small"\n[translator]\nengine = "ctranslate2"\n'
                      '[synthesizer.voices]\nde = "piper:de_DE-thorsten-medium"\n')
    assert cli.main(["check-config", "--config", str(config)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, lines
    assert "babelfish models fetch whisper-small" in lines[0]
    assert "'ctranslate2' has no model for de-en, en-de: babelfish models fetch opus-mt-de-en" in lines[1]
    assert "babelfish models fetch piper-de_DE-thorsten-medium" in lines[2]


def test_the_secrets_file_reads_as_systemd_does(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("# comment\n; another\n\nA=1\nexport B = two words \nC=\"quoted value\"\nD=''\n")
    assert read_env_file(path) == {"A": "1", "B": "two words", "C": "quoted value", "D": ""}
    path.write_text("just words\n")
    with pytest.raises(ValueError, match=":1: not KEY=VALUE"):
        read_env_file(path)


# -- serving without the dev extras ----------------------------------------------------------------------


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {canonical(re.match(r"[A-Za-z0-9_.-]+", req).group(0)) for req in requirements}  # type: ignore[union-attr]


def packaging_sets() -> tuple[set[str], set[str], set[str]]:
    """Distributions: installed with the package, in its non-dev extras or the script-installed extras
    (scripts/*-requirements.txt), and only in the dev extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = requirement_names(project["dependencies"])
    extras = requirement_names([req for name, reqs in project["optional-dependencies"].items() if name != "dev"
                                for req in reqs])
    for path in (ROOT / "scripts").glob("*-requirements.txt"):
        extras |= requirement_names([line.split()[0] for line in path.read_text().splitlines()
                                     if line.strip() and not line.startswith(("#", " "))])
    dev_only = requirement_names(project["optional-dependencies"]["dev"]) - runtime - extras
    return runtime, extras, dev_only


def third_party_imports(folder: Path) -> Iterator[tuple[str, Path]]:
    """Top-level names of every absolute import in ``folder``'s modules (those inside functions too)."""
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("babelfish", "__future__"):
                    yield top, path


def test_the_server_imports_only_runtime_dependencies() -> None:
    """Every package the server's modules import (all but devtools/: `babelfish call`, the demo and the
    benchmarks) is a dependency or a non-dev extra, never one that only `pip install '.[dev]'` brings."""
    from importlib.metadata import packages_distributions

    runtime, extras, dev_only = packaging_sets()
    assert {"pytest", "hypothesis", "sacrebleu", "jiwer", "vonage"} <= dev_only
    providers = packages_distributions()
    wrong = []
    for module, path in third_party_imports(ROOT / "babelfish"):
        if "devtools" in path.relative_to(ROOT / "babelfish").parts:
            continue
        dists = {canonical(d) for d in providers.get(module, [module])}
        if not dists & (runtime | extras) or dists & dev_only:
            wrong.append(f"{path.relative_to(ROOT)}: {module} ({', '.join(sorted(dists))})")
    assert not wrong, wrong


BLOCKED_IMPORTS = """
import importlib.abc, sys
blocked = set(sys.argv[1].split(","))

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} is not installed without the dev extras", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
import babelfish.cli, babelfish.server.serving, babelfish.server.preflight, babelfish.engines.registry
babelfish.cli.build_parser().parse_args(["serve", "--config", "x.toml"])
print("imported")
"""


def test_babelfish_serve_imports_without_dev_or_extra_packages() -> None:
    """``babelfish serve``'s modules import with every dev-only and extra-only package hidden (a plain
    ``pip install babelfish``: no pytest, no Vonage SDK, no Ray, Redis or Azure)."""
    from importlib.metadata import packages_distributions

    runtime, extras, dev_only = packaging_sets()
    hidden = sorted(module for module, dists in packages_distributions().items()
                    if module.isidentifier() and not {canonical(d) for d in dists} & runtime
                    and {canonical(d) for d in dists} & (dev_only | extras - runtime))
    assert {"pytest", "ray", "redis", "vonage"} <= set(hidden)
    result = subprocess.run([sys.executable, "-c", BLOCKED_IMPORTS, ",".join(hidden)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "imported", result.stderr


# -- scripts/install-server.sh ---------------------------------------------------------------------------


def user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_the_server_install_installs_no_dev_material() -> None:
    """The production install (dry run: nothing changes) installs the package without extras, with the
    Debian packages serving needs and none of the developer's."""
    result = subprocess.run(["bash", str(ROOT / "scripts" / "install-server.sh"), "--dry-run", "--nginx",
                             "--domain", "bf.example.com"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    apt = next(line for line in lines if line.startswith("+ apt-get install")).split()
    assert {"espeak-ng", "libsndfile1", "python3-venv", "cmake", "build-essential", "nginx", "certbot"} <= set(apt)
    assert not {"chromium", "redis-server", "asterisk-core-sounds-en-wav", "fillets-ng-data"} & set(apt)
    assert f"+ /opt/babelfish/venv/bin/python -m pip install --quiet --upgrade {ROOT}" in lines
    assert not [line for line in lines if "[dev]" in line or "-e " in line]
    if not user_exists("babelfish"):
        assert any(line.startswith("+ useradd --system") and line.endswith(" babelfish") for line in lines)
    assert f"+ install -o root -g root -m 0644 {UNIT} /etc/systemd/system/babelfish.service" in lines
    assert "+ write /etc/babelfish/babelfish.env (mode 0640, group babelfish)" in lines
