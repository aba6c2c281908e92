"""Transcripts out: the ``/calls`` API (formats in :mod:`babelfish.transcripts.formats`).

The API needs a token (``transcripts.token``): transcripts hold what people said, so with no token set the
API is off rather than open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from babelfish.server.operator import check_token
from babelfish.transcripts.formats import FORMATS, render

if TYPE_CHECKING:
    from babelfish.server.app import Server

MAX_OFFSET = 2**62


class TranscriptApi:
    def __init__(self, server: Server) -> None:
        self.server = server

    def _refused(self, request: Request) -> Response | None:
        return check_token(request, self.server.settings.transcripts.token,
                           "the transcript API is off: set BABELFISH_TRANSCRIPTS__TOKEN", self.server.operator.guesses)

    async def list(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        try:
            limit = min(max(int(request.query_params.get("limit", 50)), 1), 500)
            offset = max(int(request.query_params.get("offset", 0)), 0)
        except ValueError:
            return JSONResponse({"error": "limit and offset must be integers"}, status_code=400)
        if offset > MAX_OFFSET:  # SQLite's integers are 64-bit: a larger one raises OverflowError
            return JSONResponse({"error": f"offset must be at most {MAX_OFFSET}"}, status_code=400)
        store = self.server.store
        rows = await store.run(store.store.list_calls, limit, offset)
        return JSONResponse({"calls": rows, "limit": limit, "offset": offset})

    async def transcript(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        fmt = request.query_params.get("format", "json")
        if fmt not in FORMATS:
            return JSONResponse({"error": f"format must be one of {', '.join(FORMATS)}"}, status_code=400)
        store = self.server.store
        call = await store.run(store.store.get_call, request.path_params["call_id"])
        if call is None:
            return JSONResponse({"error": "no such call"}, status_code=404)
        body = render(call, fmt)
        if fmt == "json":
            return Response(body, media_type=FORMATS[fmt])
        return PlainTextResponse(body, media_type=FORMATS[fmt], headers={
            "Content-Disposition": f'inline; filename="{call["id"]}.{fmt}"'})


def routes(server: Server) -> list[BaseRoute]:
    api = TranscriptApi(server)
    return [
        Route("/calls", api.list, methods=["GET"]),
        Route("/calls/{call_id}/transcript", api.transcript, methods=["GET"]),
    ]
