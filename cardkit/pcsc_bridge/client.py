"""A small Python client of the bridge, for tests and scripts (stdlib only).

It sends an ``Origin`` header like a browser does; the agent must allow that origin.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from cardkit.errors import CardkitError
from cardkit.pcsc_bridge.app import DEFAULT_PORT


class BridgeCallError(CardkitError):
    """The bridge answered with a problem document (or not at all)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{problem.get('code')}: {problem.get('detail', '')}")
        self.status = status
        self.code = str(problem.get("code", "error"))
        self.problem = problem


class BridgeClient:
    def __init__(
        self,
        origin: str,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        timeout: float = 130,
    ) -> None:
        self.origin = origin
        self.base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Origin": self.origin}
        if data is not None:
            headers["Content-Type"] = "application/json"
        url = self.base + path  # always http://<loopback>:<port>/...
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            try:
                problem = json.loads(exc.read())
            except ValueError:
                problem = {"code": "error", "detail": str(exc)}
            raise BridgeCallError(exc.code, problem) from None
        except OSError as exc:
            raise BridgeCallError(0, {"code": "agent_not_running", "detail": str(exc)}) from None

    def status(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/status"))

    def authenticate(self, nonce: str, card: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"nonce": nonce}
        if card:
            body["card"] = card
        return dict(self.request("POST", "/v1/auth", body))

    def read_vitale(self, card: str | None = None) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/vitale/read", {"card": card} if card else {}))
