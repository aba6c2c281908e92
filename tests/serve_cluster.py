"""A babelfish server process in a cluster, with the test-double engines (tests/test_cluster.py kills one
with SIGKILL, as a crashed machine would go). Its cluster, security and Vonage settings come from the
environment; it prints its URL as one JSON line once it listens."""

from __future__ import annotations

import json

from babelfish.config.settings import Settings
from babelfish.server.serving import DrainingServer, loopback_listener, uvicorn_config

from .conftest import double_engines


def main() -> None:
    sock = loopback_listener()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(public_url=url, playback_lead_ms=200)
    config = uvicorn_config(settings, double_engines(), port=sock.getsockname()[1])
    print(json.dumps({"url": url}), flush=True)
    DrainingServer(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
