"""A small Python client of the bridge, for tests and scripts (stdlib only), built from the
endpoint table: ``client.status()``, ``client.authenticate(nonce, card=None)``,
``client.read_vitale()``... one method per row (event streams excepted: a browser's).

It sends an ``Origin`` header like a browser does (the agent must allow that origin), or,
for local tools of the agent's own user, no origin and the agent's control token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from cardkit.errors import CardkitError
from cardkit.pcsc_bridge.contract import DEFAULT_PORT, ENDPOINTS, Endpoint, Kind, fields_of


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
        endpoints: tuple[Endpoint, ...] = ENDPOINTS,
    ) -> None:
        self.origin = origin
        self.control_token = control_token
        self.base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        self.timeout = timeout
        self.endpoints = {e.name: e for e in endpoints if e.kind is not Kind.EVENTS}

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

    def call(self, name: str, *args: Any, **fields: Any) -> Any:
        """The endpoint ``name`` of the table, its request fields given in their order or by
        name (None: not sent)."""
        row = self.endpoints[name]
        names = [f.name for f in fields_of(row.request)] if row.request is not None else []
        if len(args) > len(names):
            raise TypeError(f"{name}() takes at most {len(names)} positional fields")
        given = {**dict(zip(names, args, strict=False)), **fields}
        unknown = set(given) - set(names)
        if unknown:
            raise TypeError(f"{name}() has no field {sorted(unknown)}")
        body = {k: v for k, v in given.items() if v is not None}
        return self.request(row.method, row.path, body if row.method == "POST" else None)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_") or name not in self.__dict__.get("endpoints", {}):
            raise AttributeError(name)
        return lambda *args, **fields: self.call(name, *args, **fields)
