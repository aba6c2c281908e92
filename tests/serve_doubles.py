"""A babelfish server process with the test-double engines (for the SIGTERM test): prints its URL as one
JSON line, serves until SIGTERM, and its drain hook writes how many legs were left to the file named."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babelfish.config.settings import Settings
from babelfish.server.serving import DrainingServer, babelfish_server, loopback_listener, uvicorn_config

from .conftest import double_engines


def main(marker: Path) -> None:
    sock = loopback_listener()
    config = uvicorn_config(Settings(playback_lead_ms=200), double_engines(), port=sock.getsockname()[1])
    server = babelfish_server(config)
    assert server is not None

    async def flush() -> None:
        marker.write_text(json.dumps({"legs_left": len(server.switchboard.legs)}))

    server.on_drain.append(flush)
    print(json.dumps({"url": f"http://127.0.0.1:{sock.getsockname()[1]}"}), flush=True)
    DrainingServer(config).run(sockets=[sock])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
