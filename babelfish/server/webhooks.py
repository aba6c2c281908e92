"""Vonage's webhooks: ``/answer`` (what to do with a call), ``/input`` (the keys pressed at a menu) and
``/event`` (the call's state). Each body is validated into the SDK's model first; a malformed one gets a 400
and changes nothing. The guards (rate limit, signature) are :meth:`Server.webhook`'s."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from babelfish.config import logs
from babelfish.server.http import error_response, read_json
from babelfish.telephony import vonage

if TYPE_CHECKING:
    from babelfish.server.app import Server

log = logging.getLogger("babelfish")
_malformed = logs.Summarized(logging.getLogger("babelfish"))


class Webhooks:
    def __init__(self, server: Server) -> None:
        self.server = server

    async def answer(self, request: Request) -> JSONResponse:
        """Vonage asks what to do with a call: the reply is the first step of the call's opening (a refusal,
        the language menu, the room menu, or the connection to our websocket)."""
        server = self.server
        call = await read_webhook(request, vonage.AnswerRequest, "answer", query=request.method == "GET")
        if isinstance(call, JSONResponse):
            return call
        logs.bind(leg=call.uuid)
        if server.draining and not server.directory.shared:  # else the call is placed on another server
            log.info("answer while draining: call refused")
            return JSONResponse(server.refusal("restarting", call.from_))
        token = request.path_params.get("token")
        if call.uuid not in server.switchboard.legs and server.at_capacity:
            log.warning("all lines busy (%d legs): call refused", len(server.switchboard.legs))
            server.metrics.error("legs_full")
            person = call.to if token is not None else call.from_  # an invitation's callee is its "to"
            fallback = await server.reception.refusal_language(person)
            return JSONResponse(server.refusal("busy", person, fallback=fallback))
        return JSONResponse(await server.reception.answer(call, server.base_url(request), token))

    async def input(self, request: Request) -> JSONResponse:
        """The digits a caller pressed at a menu (the NCCO ``input`` action's result); replies with the next
        step's NCCO."""
        server = self.server
        result = await read_webhook(request, vonage.InputResult, "input")
        if isinstance(result, JSONResponse):
            return result
        logs.bind(leg=result.uuid)
        if server.draining and not server.directory.shared:
            return JSONResponse(server.refusal("restarting", ""))
        ncco = await server.reception.input(result, server.base_url(request))
        if ncco is None:
            return error_response(404, "no menu is waiting for this call")
        return JSONResponse(ncco)

    async def event(self, request: Request) -> JSONResponse:
        server = self.server
        event = await read_webhook(request, vonage.CallEvent, "event")
        if isinstance(event, JSONResponse):
            return event
        leg_id = event.leg_id
        logs.bind(leg=leg_id)
        if event.status not in vonage.KNOWN_STATUSES:
            log.info("unknown call status %r for %s (accepted)", event.status, leg_id)
        if leg_id is None:
            return JSONResponse({"ok": True})
        if event.status in vonage.ENDED_STATUSES and leg_id not in server.switchboard.legs:
            server.reception.call_ended(leg_id, event.status)  # ended in the menu, or an invitation unanswered
            await server.directory.forget(leg_id)  # placed on another server, or never connected
        leg = server.switchboard.legs.get(leg_id)
        if leg is not None:
            leg.status = event.status
            if event.status in vonage.ENDED_STATUSES:
                await server.end_leg(leg, reason=f"call {event.status}", call_ended=True)
        return JSONResponse({"ok": True})


async def read_webhook(request: Request, model: type[Any], name: str, *, query: bool = False) -> Any:
    """The webhook's JSON body (or its query, for GET) validated into ``model``; a 400 response when it is
    not (returned, for the handler to pass on)."""
    if query:
        data: Any = dict(request.query_params)
    else:
        data = await read_json(request)
        if isinstance(data, JSONResponse):
            return data
    try:
        return vonage.parse(model, data)
    except vonage.WebhookError as exc:
        _malformed.warning("%s webhook rejected: %s", name, exc)
        return error_response(400, str(exc))
