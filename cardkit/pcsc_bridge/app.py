"""The localhost bridge: the HTTP API web portals call from the browser.

It does no card work itself: a :class:`BridgeService` (the agent) does, in worker threads,
with a time limit per request. The app owns the HTTP side of the contract: one route per
row of the endpoint table (:data:`~cardkit.pcsc_bridge.contract.ENDPOINTS`), request
fields checked against the row's TypedDict, problem documents, and the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cardkit.errors import CardkitError, ConsentDenied
from cardkit.pcsc_bridge.contract import (
    ENDPOINTS,
    BridgeService,
    Endpoint,
    Kind,
    fields_of,
)
from cardkit.pcsc_bridge.openapi import openapi_document
from cardkit.pcsc_bridge.peers import PeerGuard
from cardkit.pcsc_bridge.problems import PROBLEM_TYPE, BridgeError, problem_for
from cardkit.pcsc_bridge.security import BodyTooLarge, BridgeSecurity

REQUEST_TIMEOUT = 120.0  # a PIN prompt waits for a person
KEEPALIVE = 15.0

Handler = Callable[[Request], Awaitable[Response]]


def _problem_response(exc: BaseException) -> JSONResponse:
    body = problem_for(exc)
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_TYPE)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        raw = await request.body()
    except BodyTooLarge:
        raise BridgeError(413, "too_large", "request body too large") from None
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise BridgeError(400, "bad_request", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise BridgeError(400, "bad_request", "the body is a JSON object")
    return data


def request_fields(kind: type, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``kind`` (a TypedDict of ``str`` fields, bounded by :class:`Text`) that
    ``data`` holds, checked: a field missing or not a string is a bad request; a string that
    does not fit its bounds, the field's own error (``nonce_invalid``). Unknown fields are
    ignored (a newer page may send more)."""
    fields: dict[str, Any] = {}
    declared = fields_of(kind)
    for field in declared:
        value = data.get(field.name)
        if value is None and field.required:
            raise BridgeError(400, "bad_request", f"{field.name} (string) is required")
        if value is not None and not isinstance(value, str):
            raise BridgeError(400, "bad_request", f"{field.name} is a string")
        if value is not None:
            fields[field.name] = value
    for field in declared:
        if field.name in fields and not field.bounds.admits(fields[field.name]):
            raise BridgeError(400, field.bounds.error, f"{field.name} does not have its format")
    return fields


def create_app(
    service: BridgeService,
    *,
    port: int,
    allowed_origins: Callable[[], frozenset[str]],
    timeout: float = REQUEST_TIMEOUT,
    control_token: str | None = None,
    peer_guard: PeerGuard | None = None,
    on_refused: Callable[[str, dict[str, Any]], None] | None = None,
    endpoints: tuple[Endpoint, ...] = ENDPOINTS,
) -> BridgeSecurity:
    """The ASGI application, security middleware outermost.

    ``allowed_origins`` is a callable returning the current allowlist (the agent may change
    it at run time); ``control_token`` opens the read-only control channel to local tools
    of the agent's user (see :mod:`cardkit.pcsc_bridge.security`); ``peer_guard`` refuses
    connections of other users (see :mod:`cardkit.pcsc_bridge.peers`); ``on_refused`` hears
    of every refusal at the front door (the agent audits them).
    """

    async def call(function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with anyio.fail_after(timeout):
                # The card work cannot be interrupted; on timeout the request is answered and
                # the thread finishes on its own (its reader stays busy until then).
                return await anyio.to_thread.run_sync(
                    lambda: function(*args, **kwargs), abandon_on_cancel=True
                )
        except TimeoutError:
            raise BridgeError(
                504, "timeout", "the card or the user did not answer in time"
            ) from None

    def origin_of(request: Request) -> str | None:
        """The request's origin (None: the control channel); a refused one gets nothing."""
        origin: str | None = request.scope.get("state", {}).get("origin")
        if origin is not None and service.refused(origin):
            raise ConsentDenied("the user did not allow this site")
        return origin

    def quick(row: Endpoint) -> Handler:
        async def handler(request: Request) -> Response:
            origin_of(request)
            # Answered from the agent's snapshot: no thread hop, no PC/SC round trip.
            return JSONResponse(getattr(service, row.name)())

        return handler

    def card(row: Endpoint) -> Handler:
        async def handler(request: Request) -> Response:
            origin = origin_of(request)
            data = await _json_body(request)
            fields = request_fields(row.request, data) if row.request is not None else {}
            return JSONResponse(await call(getattr(service, row.name), origin, **fields))

        return handler

    def events(row: Endpoint) -> Handler:
        async def handler(request: Request) -> Response:
            origin = origin_of(request)
            queue = service.subscribe()

            async def stream() -> AsyncIterator[bytes]:
                """Events until the client goes, or until the user refuses its origin: the
                stream then ends before its next event, which the origin never sees."""
                try:
                    yield b": cardkit events\n\n"
                    while True:
                        try:
                            event = await asyncio.wait_for(queue.get(), KEEPALIVE)
                        except TimeoutError:
                            event = None
                        if origin is not None and service.refused(origin):
                            return
                        if event is None:
                            yield b": keep-alive\n\n"
                            continue
                        yield f"event: {event['kind']}\ndata: {json.dumps(event)}\n\n".encode()
                finally:
                    service.unsubscribe(queue)

            return StreamingResponse(
                stream(),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )

        return handler

    handlers = {Kind.QUICK: quick, Kind.CARD: card, Kind.EVENTS: events}
    document = openapi_document(port, endpoints)

    async def openapi(request: Request) -> Response:
        origin_of(request)
        return JSONResponse(document)

    async def failed(request: Request, exc: Exception) -> Response:
        return _problem_response(exc)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _problem_response(BridgeError(404, "not_found", "no such endpoint"))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _problem_response(BridgeError(405, "method_not_allowed", "wrong method"))

    app = Starlette(
        routes=[
            *(Route(r.path, handlers[r.kind](r), methods=[r.method]) for r in endpoints),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
        exception_handlers={
            CardkitError: failed,  # expected refusals: answered, not logged as crashes
            Exception: failed,
            404: not_found,
            405: not_allowed,
        },
    )
    return BridgeSecurity(
        app,
        port=port,
        allowed_origins=allowed_origins,
        control_paths=frozenset(r.path for r in endpoints if r.control),
        methods=frozenset(r.method for r in endpoints),
        control_token=control_token,
        peer_guard=peer_guard,
        on_refused=on_refused,
    )
