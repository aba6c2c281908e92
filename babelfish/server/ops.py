"""What an operator and a load balancer ask a server: ``/health`` (alive), ``/ready`` (send it calls?),
``/metrics`` (Prometheus), ``/rooms`` (live rooms and legs) and ``/captions`` (the live feed). All but the
first two need the operator token."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from babelfish.core.privacy import mask_number
from babelfish.server.http import operator_feed, subscribe
from babelfish.server.metrics import CONTENT_TYPE
from babelfish.server.operator import refusal_reason
from babelfish.telephony import wire

if TYPE_CHECKING:
    from babelfish.server.app import Server


class Ops:
    def __init__(self, server: Server) -> None:
        self.server = server

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/ready", self.ready, methods=["GET"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
            Route("/rooms", self.rooms, methods=["GET"]),
            WebSocketRoute("/captions", self.captions),
        ]

    async def health(self, request: Request) -> JSONResponse:
        """Liveness: the process answers (a load balancer restarts it when this fails)."""
        server = self.server
        return JSONResponse({
            "status": "draining" if server.draining else "ok" if server.engines is not None else "loading",
            "uptime_s": round(time.time() - server.started, 1),
            "legs": len(server.switchboard.legs),
            "rooms": len(server.switchboard.rooms),
            "server_id": server.directory.server_id,
        })

    async def ready(self, request: Request) -> JSONResponse:
        """Readiness: whether to send this server new calls, and what it depends on (503 when not ready:
        engines still loading, draining, Redis or the Ray cluster unreachable)."""
        server = self.server
        depends: dict[str, Any] = {}
        if (directory := await server.directory.health()) is not None:
            depends["redis"] = directory
        if server.settings.ray.stages:
            from babelfish.engines import ray_serve

            depends["ray"] = {"address": server.settings.ray.address or "local", "stages": server.settings.ray.stages,
                              "ok": ray_serve.reachable()}
        engines = server.engines is not None
        ready = engines and not server.draining and all(d["ok"] for d in depends.values())
        return JSONResponse({
            "ready": ready, "engines": "loaded" if engines else "loading", "draining": server.draining,
            "server_id": server.directory.server_id, "depends": depends,
            "legs": len(server.switchboard.legs), "rooms": len(server.switchboard.rooms),
        }, status_code=200 if ready else 503)

    async def metrics_page(self, request: Request) -> Response:
        """Prometheus text format (operator token, unless ``security.metrics_open``). The live figures are
        read here, on the loop; the text is rendered in a thread, so a scrape never stalls the calls' audio."""
        server = self.server
        if not server.settings.security.metrics_open and (refused := server.operator.refusal(request)) is not None:
            return refused
        server.metrics.snapshot()
        body = await asyncio.to_thread(server.metrics.render)
        return Response(body, headers={"Content-Type": CONTENT_TYPE})

    async def rooms(self, request: Request) -> JSONResponse:
        """The live rooms and legs (operator token; numbers masked)."""
        if (refused := self.server.operator.refusal(request)) is not None:
            return refused
        return JSONResponse(self.server.switchboard.snapshot(mask=mask_number))

    async def captions(self, ws: WebSocket) -> None:
        """Live captions and utterance records as JSON text messages (optionally ``?room=``); operator token."""
        server = self.server
        refused = server.operator.refusal(ws)
        if refused is not None:
            server.metrics.error("captions_refused")
            await ws.close(code=wire.CLOSE_POLICY, reason=refusal_reason(refused))
            return
        limits = server.settings.limits
        await subscribe(ws, server.hub, limits, server.feeds, operator_feed(limits), room=ws.query_params.get("room"))
