"""The localhost bridge: the HTTP API web portals call from the browser.

It does no card work itself: a :class:`BridgeService` (the agent) does, in worker threads,
with a time limit per request. The app owns the HTTP contract: routes, JSON shapes, problem
documents, the OpenAPI document and the browser client it serves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cardkit import __version__
from cardkit.errors import CardkitError, ConsentDenied
from cardkit.pcsc_bridge.contract import BridgeService
from cardkit.pcsc_bridge.openapi import openapi_document
from cardkit.pcsc_bridge.peers import PeerGuard
from cardkit.pcsc_bridge.problems import PROBLEM_TYPE, BridgeError, problem_for
from cardkit.pcsc_bridge.security import BodyTooLarge, BridgeSecurity

REQUEST_TIMEOUT = 120.0  # a PIN prompt waits for a person
KEEPALIVE = 15.0


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


def _card_field(data: dict[str, Any]) -> str | None:
    card = data.get("card")
    if card is not None and (not isinstance(card, str) or not 0 < len(card) <= 200):
        raise BridgeError(400, "bad_request", "card is a reader name")
    return card


def create_app(
    service: BridgeService,
    *,
    port: int,
    allowed_origins: Callable[[], frozenset[str]],
    timeout: float = REQUEST_TIMEOUT,
    control_token: str | None = None,
    peer_guard: PeerGuard | None = None,
    on_refused: Callable[[str, dict[str, Any]], None] | None = None,
) -> BridgeSecurity:
    """The ASGI application, security middleware outermost.

    ``allowed_origins`` is a callable returning the current allowlist (the agent may change
    it at run time); ``control_token`` opens the read-only control channel to local tools
    of the agent's user (see :mod:`cardkit.pcsc_bridge.security`); ``peer_guard`` refuses
    connections of other users (see :mod:`cardkit.pcsc_bridge.peers`); ``on_refused`` hears
    of every refusal at the front door (the agent audits them).
    """

    async def call(function: Any, *args: Any) -> Any:
        try:
            with anyio.fail_after(timeout):
                # The card work cannot be interrupted; on timeout the request is answered and
                # the thread finishes on its own (its reader stays busy until then).
                return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)
        except TimeoutError:
            raise BridgeError(
                504, "timeout", "the card or the user did not answer in time"
            ) from None

    def not_refused(request: Request) -> None:
        origin = request.scope.get("state", {}).get("origin")
        if origin is not None and service.refused(origin):
            raise ConsentDenied("the user did not allow this site")

    async def status(request: Request) -> Response:
        not_refused(request)
        # Answered from the reader monitor's snapshot: no thread hop, no PC/SC round trip.
        return JSONResponse(service.status())

    async def auth(request: Request) -> Response:
        data = await _json_body(request)
        nonce = data.get("nonce")
        if not isinstance(nonce, str):
            raise BridgeError(400, "bad_request", "nonce (string) is required")
        origin = request.scope["state"]["origin"]
        return JSONResponse(await call(service.authenticate, origin, nonce, _card_field(data)))

    async def vitale(request: Request) -> Response:
        data = await _json_body(request)
        origin = request.scope["state"]["origin"]
        return JSONResponse(await call(service.read_vitale, origin, _card_field(data)))

    async def events(request: Request) -> Response:
        not_refused(request)
        queue = service.subscribe()

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b": cardkit events\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), KEEPALIVE)
                    except TimeoutError:
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

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document(port))

    async def version(request: Request) -> Response:
        return JSONResponse({"name": "cardkit-agent", "version": __version__})

    async def failed(request: Request, exc: Exception) -> Response:
        return _problem_response(exc)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _problem_response(BridgeError(404, "not_found", "no such endpoint"))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _problem_response(BridgeError(405, "method_not_allowed", "wrong method"))

    app = Starlette(
        routes=[
            Route("/v1/status", status, methods=["GET"]),
            Route("/v1/version", version, methods=["GET"]),
            Route("/v1/events", events, methods=["GET"]),
            Route("/v1/auth", auth, methods=["POST"]),
            Route("/v1/vitale/read", vitale, methods=["POST"]),
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
        control_token=control_token,
        peer_guard=peer_guard,
        on_refused=on_refused,
    )
