"""The bridge's HTTP contract and front door, in-process (httpx over ASGI), with a scripted
service standing in for the agent."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Annotated, Any, TypedDict, cast

import httpx
import pytest

from cardkit.errors import ConsentDenied, PinBlocked, WrongPin
from cardkit.pcsc_bridge.app import create_app
from cardkit.pcsc_bridge.contract import (
    ENDPOINTS,
    Endpoint,
    EventPayload,
    Kind,
    StatusPayload,
    Text,
    TokenPayload,
    VersionPayload,
    VitalePayload,
)
from cardkit.pcsc_bridge.problems import BridgeError
from cardkit.transport import NoCard, ReaderBusy

PORT = 38470
ORIGIN = "https://portal.example"
NONCE = "A" * 43


class Service:
    """Records what reached it; raises what the test asks."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail: BaseException | None = None
        self.refused_origins: set[str] = set()
        self.delay = 0.0

    def status(self) -> StatusPayload:
        self.calls.append(("status", None))
        return cast(StatusPayload, {"name": "cardkit-agent", "readers": []})

    def version(self) -> VersionPayload:
        return {"name": "cardkit-agent", "version": "test"}

    def refused(self, origin: str) -> bool:
        return origin in self.refused_origins

    def authenticate(
        self,
        origin: str,
        nonce: str,
        card: str | None = None,
        format: str | None = None,
    ) -> TokenPayload:
        self.calls.append(("auth", (origin, nonce, card)))
        time.sleep(self.delay)
        if self.fail:
            raise self.fail
        return cast(TokenPayload, {"format": "cardkit:1"})

    def read_vitale(self, origin: str, card: str | None = None) -> VitalePayload:
        self.calls.append(("vitale", (origin, card)))
        if self.fail:
            raise self.fail
        return cast(VitalePayload, {"beneficiaries": []})

    def subscribe(self) -> asyncio.Queue[EventPayload]:
        queue: asyncio.Queue[EventPayload] = asyncio.Queue()
        queue.put_nowait({"kind": "card_inserted", "reader": "r", "atr": "3B00"})
        return queue

    def unsubscribe(self, queue: asyncio.Queue[EventPayload]) -> None:
        self.calls.append(("unsubscribe", None))


@pytest.fixture
def service() -> Service:
    return Service()


def client(service: Service, timeout: float = 5.0) -> httpx.AsyncClient:
    app = create_app(
        service, port=PORT, allowed_origins=lambda: frozenset({ORIGIN}), timeout=timeout
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url=f"http://127.0.0.1:{PORT}",
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def get(service: Service, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with client(service) as c:
        return await c.get(path, headers={"Origin": ORIGIN, **(headers or {})})


async def post(
    service: Service,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    async with client(service) as c:
        base = {"Origin": ORIGIN, "Content-Type": "application/json"}
        data = content if content is not None else json.dumps(body or {}).encode()
        return await c.post(path, content=data, headers={**base, **(headers or {})})


def test_status_with_cors(service: Service) -> None:
    response = run(get(service, "/v1/status"))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Host": "evil.example"}, "host_not_allowed"),
        ({"Host": f"evil.example:{PORT}"}, "host_not_allowed"),
        ({"Host": "127.0.0.1:1"}, "host_not_allowed"),
        ({"Origin": "https://evil.example"}, "origin_not_allowed"),
        ({"Origin": "null"}, "origin_not_allowed"),
        ({"Origin": "https://portal.example.evil.example"}, "origin_not_allowed"),
        ({"Origin": "https://PORTAL.example"}, "origin_not_allowed"),  # not as a browser sends
        ({"Origin": "http://portal.example"}, "origin_not_allowed"),
        ({"Origin": ""}, "origin_not_allowed"),
    ],
)
def test_refused_before_the_service(service: Service, headers: dict[str, str], code: str) -> None:
    for response in (
        run(get(service, "/v1/status", headers)),
        run(post(service, "/v1/auth", {"nonce": NONCE}, headers)),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == code
        assert response.headers["content-type"] == "application/problem+json"
        assert "access-control-allow-origin" not in response.headers
    assert service.calls == []


def test_missing_origin(service: Service) -> None:
    async def call() -> httpx.Response:
        async with client(service) as c:
            return await c.get("/v1/status")

    response = run(call())
    assert response.status_code == 403 and response.json()["code"] == "origin_not_allowed"
    assert service.calls == []


def test_localhost_and_ipv6_hosts(service: Service) -> None:
    for host in (f"localhost:{PORT}", f"[::1]:{PORT}", f"127.0.0.1:{PORT}"):
        assert run(get(service, "/v1/status", {"Host": host})).status_code == 200


def test_preflight(service: Service) -> None:
    async def preflight(origin: str, pna: bool) -> httpx.Response:
        headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        if pna:
            headers["Access-Control-Request-Private-Network"] = "true"
        async with client(service) as c:
            return await c.options("/v1/auth", headers=headers)

    allowed = run(preflight(ORIGIN, True))
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert allowed.headers["access-control-allow-private-network"] == "true"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    plain = run(preflight(ORIGIN, False))
    assert "access-control-allow-private-network" not in plain.headers
    foreign = run(preflight("https://evil.example", True))
    assert foreign.status_code == 403
    assert "access-control-allow-private-network" not in foreign.headers
    assert "access-control-allow-origin" not in foreign.headers
    assert service.calls == []


def test_wrong_content_type(service: Service) -> None:
    response = run(post(service, "/v1/auth", {"nonce": NONCE}, {"Content-Type": "text/plain"}))
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert service.calls == []


def test_oversized_body(service: Service) -> None:
    response = run(post(service, "/v1/auth", content=b'{"nonce": "' + b"A" * 20000 + b'"}'))
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert service.calls == []


def test_oversized_chunked_body(service: Service) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b"A" * 1024

    async def call() -> httpx.Response:
        async with client(service) as c:
            headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
            return await c.post("/v1/auth", content=chunks(), headers=headers)

    response = run(call())
    assert response.status_code == 413 and service.calls == []


@pytest.mark.parametrize(
    "content", [b"not json", b"[1, 2]", b'{"nonce": 5}', b'{"card": 7, "nonce": "x"}']
)
def test_bad_bodies(service: Service, content: bytes) -> None:
    response = run(post(service, "/v1/auth", content=content))
    assert response.status_code == 400 and response.json()["code"] == "bad_request"


def test_auth_passes_origin_nonce_card(service: Service) -> None:
    response = run(post(service, "/v1/auth", {"nonce": NONCE, "card": "Reader 1"}))
    assert response.status_code == 200 and response.json() == {"format": "cardkit:1"}
    assert service.calls == [("auth", (ORIGIN, NONCE, "Reader 1"))]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (WrongPin("wrong PIN", 2), 401, "pin_wrong"),
        (PinBlocked("blocked"), 423, "pin_blocked"),
        (NoCard("none"), 409, "card_absent"),
        (ReaderBusy("busy"), 409, "busy"),
        (ConsentDenied("no"), 403, "consent_denied"),
        (BridgeError(400, "bad_request", "no"), 400, "bad_request"),
        (RuntimeError("boom /secret/path"), 500, "internal_error"),
    ],
)
def test_errors_are_problem_documents(
    service: Service, error: BaseException, status: int, code: str
) -> None:
    service.fail = error
    response = run(post(service, "/v1/auth", {"nonce": NONCE}))
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert response.headers["access-control-allow-origin"] == ORIGIN  # the page can read it
    if code == "pin_wrong":
        assert body["tries_left"] == 2
    if code == "internal_error":
        assert "secret" not in response.text


def test_timeout(service: Service) -> None:
    service.delay = 0.5

    async def call() -> httpx.Response:
        async with client(service, timeout=0.1) as c:
            headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
            return await c.post("/v1/auth", content=json.dumps({"nonce": NONCE}), headers=headers)

    response = run(call())
    assert response.status_code == 504 and response.json()["code"] == "timeout"


def test_unknown_path_and_method(service: Service) -> None:
    assert run(get(service, "/v2/nothing")).json()["code"] == "not_found"
    assert run(get(service, "/v1/auth")).json()["code"] == "method_not_allowed"


def test_openapi_and_client(service: Service) -> None:
    spec = run(get(service, "/openapi.json")).json()
    assert spec["openapi"].startswith("3.1") and "/v1/auth" in spec["paths"]
    described = spec["components"]["schemas"]["Problem"]["properties"]["code"]["description"]
    assert all(code in described for code in ("consent_denied", "peer_not_allowed", "pin_wrong"))
    # The client is never served by the bridge: portals host it themselves.
    assert run(get(service, "/v1/client.js")).status_code == 404
    assert "/v1/client.js" not in spec["paths"]


def test_hosted_client(tmp_path: Path) -> None:
    import base64
    import hashlib

    from cardkit import __version__
    from cardkit.pcsc_bridge.hosted import hosted_client

    client = hosted_client()
    path = client.write(tmp_path)
    assert path.name == f"cardkit-bridge-{__version__}.js"
    body = path.read_bytes()
    assert b"export class CardkitBridge" in body and b"browser_blocked" in body
    digest = base64.b64encode(hashlib.sha384(body).digest()).decode()
    assert client.integrity == f"sha384-{digest}"
    mapping = client.import_map("/js/x.js")
    assert '"cardkit-bridge": "/js/x.js"' in mapping and client.integrity in mapping


def test_events_stream(service: Service) -> None:
    """Server-sent events, driven at the ASGI level (httpx's ASGI transport buffers whole
    responses): the first event arrives, then the client goes away and the stream ends."""
    app = create_app(service, port=PORT, allowed_origins=lambda: frozenset({ORIGIN}))
    sent: list[MutableMapping[str, Any]] = []

    async def drive() -> None:
        got_event = asyncio.Event()
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await got_event.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)
            if b"card_inserted" in message.get("body", b""):
                got_event.set()

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/v1/events",
            "raw_path": b"/v1/events",
            "query_string": b"",
            "root_path": "",
            "scheme": "http",
            "http_version": "1.1",
            "server": ("127.0.0.1", PORT),
            "client": ("127.0.0.1", 50000),
            "headers": [(b"host", f"127.0.0.1:{PORT}".encode()), (b"origin", ORIGIN.encode())],
        }
        await asyncio.wait_for(app(scope, receive, send), 10)

    run(drive())
    start = sent[0]
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert headers[b"access-control-allow-origin"] == ORIGIN.encode()
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert b"event: card_inserted" in body and b'"reader": "r"' in body
    assert ("unsubscribe", None) in service.calls  # the listener is dropped on disconnect


class EchoRequest(TypedDict):
    text: Annotated[str, Text(1, 10)]


class EchoPayload(TypedDict):
    echoed: str


def test_a_new_endpoint_is_one_row_of_the_table(service: Service) -> None:
    """A throwaway endpoint added to the table (and its service method): its route, its
    field checks, its OpenAPI entry and its Python client method follow, with no other
    file touched."""
    import threading

    import uvicorn

    from cardkit.pcsc_bridge.client import BridgeCallError, BridgeClient
    from cardkit.pcsc_bridge.openapi import openapi_document
    from mocks.harness import free_port

    row = Endpoint(
        "echo", "POST", "/v1/echo", "Echo a text", Kind.CARD, EchoRequest, EchoPayload, (400,)
    )
    table = (*ENDPOINTS, row)
    service.echo = lambda origin, text: {"echoed": f"{origin} {text}"}  # type: ignore[attr-defined]
    spec = openapi_document(PORT, table)["paths"]["/v1/echo"]["post"]
    assert spec["operationId"] == "echo" and spec["requestBody"]["required"] is True
    port = free_port()
    app = create_app(
        service, port=port, allowed_origins=lambda: frozenset({ORIGIN}), endpoints=table
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        client = BridgeClient(ORIGIN, port=port, timeout=5, endpoints=table)
        assert client.echo("salut") == {"echoed": f"{ORIGIN} salut"}
        with pytest.raises(BridgeCallError) as refused:
            client.echo("bien trop long")
        assert refused.value.code == "bad_request"
    finally:
        server.should_exit = True
        thread.join(5)


def test_the_browser_client_matches_the_table() -> None:
    """client.js calls exactly the table's paths with their methods, and has a call for
    every card endpoint and event stream (a new one needs its JS method)."""
    import re

    from cardkit.pcsc_bridge.hosted import hosted_client

    script = hosted_client().text
    calls = {
        (path, method or "GET")
        for path, method in re.findall(r'_request\("([^"]+)"(?:, \{ method: "([A-Z]+)")?', script)
    }
    calls |= {
        (path, "GET") for path in re.findall(r'EventSource\(this\.base \+ "([^"]+)"\)', script)
    }
    table = {(e.path, e.method) for e in ENDPOINTS}
    assert calls and calls <= table, calls - table
    needed = {(e.path, e.method) for e in ENDPOINTS if e.kind is not Kind.QUICK}
    assert needed <= calls, needed - calls
