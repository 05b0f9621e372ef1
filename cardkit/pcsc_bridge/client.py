"""A small Python client of the bridge, for tests and scripts (stdlib only).

It sends an ``Origin`` header like a browser does (the agent must allow that origin), or,
for local tools of the agent's own user, no origin and the agent's control token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, cast

from cardkit.errors import CardkitError
from cardkit.pcsc_bridge.contract import DEFAULT_PORT, StatusPayload, TokenPayload, VitalePayload


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
        origin: str | None,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        timeout: float = 130,
        control_token: str | None = None,
    ) -> None:
        self.origin = origin
        self.control_token = control_token
        self.base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers: dict[str, str] = {}
        if self.origin is not None:
            headers["Origin"] = self.origin
        if self.control_token is not None:
            headers["Authorization"] = f"Bearer {self.control_token}"
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

    def status(self) -> StatusPayload:
        return cast(StatusPayload, self.request("GET", "/v1/status"))

    def authenticate(self, nonce: str, card: str | None = None) -> TokenPayload:
        body: dict[str, Any] = {"nonce": nonce}
        if card:
            body["card"] = card
        return cast(TokenPayload, self.request("POST", "/v1/auth", body))

    def read_vitale(self, card: str | None = None) -> VitalePayload:
        return dict(self.request("POST", "/v1/vitale/read", {"card": card} if card else {}))
