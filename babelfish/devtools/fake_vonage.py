"""A faithful fake of Vonage's Voice API, to drive a babelfish server with no phone and no account.

It does what Vonage does for an inbound call, on the wire: calls the answer webhook (``GET /answer``
with ``to``, ``from``, ``uuid``, ``conversation_uuid``; retried on 5xx), posts call events to the event
webhook, opens the websocket named in the NCCO and sends ``websocket:connected`` with the NCCO's headers
flattened into it, then streams the caller's audio as binary 20 ms L16 frames at real-time pace (silence
between turns, as a phone line does). Audio coming back is played through a model of Vonage's playback
buffer: frames play one after another at 20 ms each, ``{"action": "clear"}`` drops what has not played
yet (answered with ``websocket:cleared``), ``notify`` is answered once the audio before it has played, and
a frame of the wrong size is logged as "unexpected frame size" and the socket dropped (close 1006).

Given the account's ``signature_secret`` it signs every webhook as Vonage does (``Authorization: Bearer``
JWT, HS256, with the ``payload_hash`` of the body or of the query), and, for a websocket endpoint with
``authorization: {"type": "vonage"}``, the websocket upgrade too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import ssl
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

import httpx

from babelfish.devtools.fake_call import FakeCall

log = logging.getLogger(__name__)


class FakeVonage:
    """Vonage's side of many calls to one babelfish server (``server`` is its base URL; ``dial(server=...)``
    sends a call's webhooks to another, as a load balancer in front of several servers would).

    ``start_api()`` also serves a fake of the Voice REST API the server calls (``POST /v1/calls``,
    ``PUT /v1/calls/{uuid}`` with ``hangup`` or ``transfer`` to an inline NCCO, which the call follows as
    Vonage does, ``PUT|DELETE /v1/calls/{uuid}/talk``). Each request must carry an application JWT that
    verifies with ``public_key`` and names ``application_id``, as Vonage requires; every request is kept
    in ``api_requests``. An outbound call is rung, answered through the ``answer_url`` it names and
    connected like an inbound one; the test picks it up with ``next_outbound()``.

    ``ssl_context``: whom webhooks over ``https`` and sockets over ``wss`` trust (a test's own CA, in front
    of a reverse proxy); ``local_address``: the address they come from (a loopback alias such as
    ``127.0.0.2``, so that a server behind a proxy can be seen to know the client from the proxy's own).
    """

    def __init__(self, server: str, number: str = "447700900000", *, application_id: str | None = None,
                 public_key: str | None = None, signature_secret: str | None = None,
                 api_key: str = "fakekey1", ssl_context: ssl.SSLContext | None = None,
                 local_address: str | None = None) -> None:
        self.server = server.rstrip("/")
        self.signature_secret = signature_secret
        self.api_key = api_key
        self.number = number
        # idle connections are dropped before uvicorn's 5 s keep-alive ends them: with equal timeouts a
        # webhook could go out on a connection the server is closing at that moment (httpx.ReadError)
        limits = httpx.Limits(keepalive_expiry=2.0)
        if ssl_context is None and local_address is None:
            self.http = httpx.AsyncClient(timeout=30, limits=limits)
        else:
            self.http = httpx.AsyncClient(timeout=30, transport=httpx.AsyncHTTPTransport(
                verify=ssl_context or True, local_address=local_address, limits=limits))
        self.ssl_context, self.local_address = ssl_context, local_address
        self.calls: list[FakeCall] = []
        self.application_id = application_id
        self.public_key = public_key
        self.api_requests: list[ApiRequest] = []
        self.unreachable: set[str] = set()  # numbers that do not answer an outbound call
        self.outbound_keys: dict[str, list[str | None]] = {}  # digits an invitee presses, by number
        self._outbound: asyncio.Queue[FakeCall] = asyncio.Queue()
        self._api: Any = None
        self._api_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> FakeVonage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for call in self.calls:
            if call.connected:
                with contextlib.suppress(Exception):
                    await call.hang_up()
        if self._api is not None:
            self._api.should_exit = True
            if self._api_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._api_task, 10)
        await self.http.aclose()

    async def dial(self, caller: str, *, connect: bool = True, pace: float = 1.0,
                   keys: list[str | None] | None = None, language: str | None = None,
                   server: str | None = None) -> FakeCall:
        """An inbound call from ``caller``: answer webhook (and any menu, answered with ``keys``, or by
        picking ``language`` from what the menu says), events, websocket. ``server``: the base URL whose
        webhooks this call uses, when not ours (as a load balancer picks one of several servers)."""
        base = server.rstrip("/") if server else None
        call = FakeCall(self, caller, self.number, keys=keys, language=language,
                        answer_url=f"{base}/answer" if base else None, event_url=f"{base}/event" if base else None)
        self.calls.append(call)
        await call.event("started")
        await call.event("ringing")
        await call.answer()
        if call.ended:
            return call
        await call.event("answered")
        if connect:
            await call.connect(pace=pace)
        return call

    def signed(self, *, query: dict[str, str] | None = None, body: bytes | None = None) -> dict[str, str]:
        """The ``Authorization`` header Vonage adds to a request when signed webhooks are on (none when
        this fake has no signature secret): a JWT with the SHA-256 of the body, or of the query parameters
        as compact JSON in the order sent."""
        if self.signature_secret is None:
            return {}
        import jwt

        claims: dict[str, Any] = {"iat": int(time.time()), "jti": str(uuidlib.uuid4()), "iss": "Vonage",
                                  "api_key": self.api_key, "application_id": self.application_id or "fake-app"}
        if body is not None:
            claims["payload_hash"] = hashlib.sha256(body).hexdigest()
        elif query is not None:
            claims["payload_hash"] = hashlib.sha256(json.dumps(query, separators=(",", ":")).encode()).hexdigest()
        return {"Authorization": "Bearer " + jwt.encode(claims, self.signature_secret, algorithm="HS256")}

    async def post_json(self, url: str, body: Any) -> httpx.Response:
        return await self.send_json("POST", url, body)

    async def send_json(self, method: str, url: str, body: Any) -> httpx.Response:
        """Send ``body`` as JSON, signed over the exact bytes sent."""
        content = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **self.signed(body=content)}
        return await self.http.request(method, url, content=content, headers=headers)

    def socket_options(self, uri: str) -> dict[str, Any]:
        """Keyword arguments for ``websockets``' ``connect`` to ``uri``: the TLS context and source address."""
        options: dict[str, Any] = {}
        if self.ssl_context is not None and uri.startswith("wss:"):
            options["ssl"] = self.ssl_context
        if self.local_address is not None:
            options["local_addr"] = (self.local_address, 0)
        return options

    def find(self, uuid: str) -> FakeCall | None:
        return next((c for c in self.calls if c.uuid == uuid), None)

    async def next_outbound(self, timeout: float = 10.0) -> FakeCall:
        """The next call the server placed through ``POST /v1/calls`` (answered and connected)."""
        return await asyncio.wait_for(self._outbound.get(), timeout)

    # -- the fake REST API ------------------------------------------------------------------------------

    async def start_api(self) -> str:
        """Serve the fake Voice REST API on a free loopback port; returns its base URL."""
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        from babelfish.server.serving import loopback_listener

        app = Starlette(routes=[
            Route("/v1/calls", self._api_create_call, methods=["POST"]),
            Route("/v1/calls/{uuid}", self._api_modify_call, methods=["PUT"]),
            Route("/v1/calls/{uuid}/talk", self._api_talk, methods=["PUT", "DELETE"]),
        ])
        sock = loopback_listener()
        port = sock.getsockname()[1]
        self._api = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._api_task = asyncio.create_task(self._api.serve(sockets=[sock]))
        while not self._api.started:
            if self._api_task.done():
                self._api_task.result()
            await asyncio.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    def _authorize(self, request: Any) -> dict[str, Any]:
        """Vonage's check of the application JWT: RS256, signed by the application's key, not expired."""
        import jwt

        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise _ApiRefusal(401, "Unauthorized", "missing Bearer token")
        if self.public_key is None:
            raise _ApiRefusal(401, "Unauthorized", "fake has no public key to verify with")
        try:
            claims = jwt.decode(header[7:], self.public_key, algorithms=["RS256"])
        except jwt.PyJWTError as exc:
            raise _ApiRefusal(401, "Unauthorized", f"invalid JWT: {exc}") from None
        if self.application_id is not None and claims.get("application_id") != self.application_id:
            raise _ApiRefusal(401, "Unauthorized", "JWT names another application")
        return claims

    async def _api_call(self, request: Any, handler: Any) -> Any:
        from starlette.responses import JSONResponse

        try:
            claims = self._authorize(request)
            body = await request.json() if await request.body() else None
            self.api_requests.append(ApiRequest(request.method, request.url.path, body, claims))
            status, reply = await handler(request, body)
        except _ApiRefusal as exc:
            self.api_requests.append(ApiRequest(request.method, request.url.path, None, {}, exc.status))
            return JSONResponse({"type": "https://developer.nexmo.com/api-errors", "title": exc.title,
                                 "detail": exc.detail}, status_code=exc.status)
        except json.JSONDecodeError:
            return JSONResponse({"title": "Bad Request", "detail": "body is not JSON"}, status_code=400)
        if status == 204:
            from starlette.responses import Response

            return Response(status_code=204)
        return JSONResponse(reply, status_code=status)

    async def _api_create_call(self, request: Any) -> Any:
        async def create(request: Any, body: Any) -> tuple[int, dict[str, Any]]:
            from pydantic import ValidationError
            from vonage_voice.models import CreateCallRequest

            data = dict(body or {})
            if "from" in data:  # the wire name; the SDK model calls the field from_
                data["from_"] = data.pop("from")
            try:
                order = CreateCallRequest.model_validate(data)
            except (ValidationError, ValueError) as exc:
                raise _ApiRefusal(400, "Bad Request", str(exc)) from None
            if not order.answer_url:
                raise _ApiRefusal(400, "Bad Request", "this fake supports answer_url only")
            target = order.to[0].number
            origin = order.from_.number if hasattr(order.from_, "number") else str(order.from_)
            call = FakeCall(self, origin, target, direction="outbound", answer_url=order.answer_url[0],
                            event_url=(order.event_url or [f"{self.server}/event"])[0],
                            keys=self.outbound_keys.get(target))
            self.calls.append(call)
            self._spawn(self._ring(call))
            return 201, {"uuid": call.uuid, "status": "started", "direction": "outbound",
                         "conversation_uuid": call.conversation_uuid}

        return await self._api_call(request, create)

    async def _ring(self, call: FakeCall) -> None:
        await call.event("started")
        await call.event("ringing")
        if call.number in self.unreachable:
            call.ended = True
            await call.event("unanswered")
            return
        await call.answer()
        if call.ended:
            return
        await call.event("answered")
        await call.connect()
        self._outbound.put_nowait(call)

    async def _api_modify_call(self, request: Any) -> Any:
        async def modify(request: Any, body: Any) -> tuple[int, dict[str, Any]]:
            call = self.find(request.path_params["uuid"])
            if call is None:
                raise _ApiRefusal(404, "Not Found", "no such call")
            action = (body or {}).get("action")
            if action == "transfer":
                destination = (body or {}).get("destination") or {}
                ncco = destination.get("ncco")
                if destination.get("type") != "ncco" or not isinstance(ncco, list):
                    raise _ApiRefusal(400, "Bad Request", "this fake transfers to an inline NCCO only")
                if call.ended:
                    raise _ApiRefusal(400, "Bad Request", "call is not in progress")
                self._spawn(call.transfer(ncco))
                return 204, {}
            if action != "hangup":
                raise _ApiRefusal(400, "Bad Request", f"this fake supports hangup and transfer, not {action!r}")
            self._spawn(call.hang_up())
            return 204, {}

        return await self._api_call(request, modify)

    async def _api_talk(self, request: Any) -> Any:
        async def talk(request: Any, body: Any) -> tuple[int, dict[str, Any]]:
            call = self.find(request.path_params["uuid"])
            if call is None or call.ended:
                raise _ApiRefusal(404, "Not Found", "no such call in progress")
            if request.method == "DELETE":
                call.talk_stops += 1
                return 200, {"message": "Talk stopped", "uuid": call.uuid}
            from pydantic import ValidationError
            from vonage_voice.models import TtsStreamOptions

            try:
                options = TtsStreamOptions.model_validate(body)
            except ValidationError as exc:
                raise _ApiRefusal(400, "Bad Request", str(exc)) from None
            call.talks.append(options.model_dump(exclude_none=True, mode="json") | {"at": time.monotonic()})
            return 200, {"message": "Talk started", "uuid": call.uuid}

        return await self._api_call(request, talk)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)

        def done(task: asyncio.Task[Any]) -> None:
            self._background.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.error("fake Vonage: %s", task.exception())

        task.add_done_callback(done)


@dataclass
class ApiRequest:
    method: str
    path: str
    body: Any
    claims: dict[str, Any]
    status: int = 200


class _ApiRefusal(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


