"""The bridge's front door against hostile requests, in-process (the app, a recording
service): refused origins, non-HTTP protocols."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest

from cardkit.pcsc_bridge.app import create_app
from tests.unit.test_bridge import ORIGIN, PORT, Service, get, run


@pytest.fixture
def service() -> Service:
    return Service()


def test_a_refused_origin_gets_nothing_but_the_refusal(service: Service) -> None:
    service.refused_origins.add(ORIGIN)
    for path in ("/v1/status", "/v1/version", "/v1/events", "/openapi.json"):
        response = run(get(service, path))
        assert response.status_code == 403 and response.json()["code"] == "consent_denied"
    assert ("status", None) not in service.calls


def test_websocket_scopes_are_refused(service: Service) -> None:
    app = create_app(service, port=PORT, allowed_origins=lambda: frozenset({ORIGIN}))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "websocket",
        "path": "/v1/status",
        "headers": [(b"host", f"127.0.0.1:{PORT}".encode()), (b"origin", ORIGIN.encode())],
    }
    run(app(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert service.calls == []
