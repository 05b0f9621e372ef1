"""The bridge's front door, as pure ASGI middleware (runs before any endpoint).

- ``Host`` must be a loopback name with the bridge's port: a page on ``evil.example`` that
  DNS-rebinds its name to 127.0.0.1 still sends ``Host: evil.example``;
- ``Origin`` must be exactly one of the allowlist (scheme://host[:port]); a missing or
  ``null`` Origin is refused, so neither other local programs posing as no-browser clients
  nor sandboxed frames get in by default;
- CORS answers echo the allowed origin (never ``*``) with ``Vary: Origin``; preflights
  answer ``Access-Control-Allow-Private-Network: true`` (Chrome's Private/Local Network
  Access) for allowed origins only;
- local tools of the agent's own user (``cardkit agent status``, ``cardkit doctor``) send no
  ``Origin`` but ``Authorization: Bearer <control token>``, the secret the agent keeps in a
  file only that user can read; they reach the read-only endpoints the endpoint table opens
  to them (``control_paths``);
- bodies are JSON and small: a wrong ``Content-Type`` is refused, a body larger than
  ``max_body`` is refused before it is read in full.

Refused requests never reach an endpoint, hence never a card.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cardkit.pcsc_bridge.peers import PeerGuard, address_of
from cardkit.pcsc_bridge.problems import PROBLEM_TYPE, problem_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
ALLOWED_HEADERS = "Content-Type"
MAX_BODY = 16 * 1024
#: Requests served at once (event streams included); more are answered ``overloaded``.
MAX_INFLIGHT = 64


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        if name in out:  # a repeated Host/Origin is ambiguous: treat as invalid
            out[name] = "\x00duplicate"
        else:
            out[name] = raw_value.decode("latin-1")
    return out


class BridgeSecurity:
    def __init__(
        self,
        app: ASGIApp,
        *,
        port: int,
        allowed_origins: Callable[[], frozenset[str]],
        control_paths: frozenset[str] = frozenset(),
        methods: frozenset[str] = frozenset({"GET", "POST"}),
        max_body: int = MAX_BODY,
        control_token: str | None = None,
        peer_guard: PeerGuard | None = None,
        on_refused: Callable[[str, dict[str, Any]], None] | None = None,
        max_inflight: int = MAX_INFLIGHT,
    ) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self._inflight = 0
        self.peer_guard = peer_guard
        self.on_refused = on_refused
        self._control = f"Bearer {control_token}".encode() if control_token else None
        #: What the control channel (no Origin, the agent's secret instead) may read.
        self.control_paths = control_paths
        self.allowed_methods = ", ".join(sorted({*methods, "OPTIONS"})).encode()
        self.port = port
        self.allowed_origins = allowed_origins
        self.max_body = max_body
        self.hosts = frozenset(f"{h}:{port}" for h in LOOPBACK_HOSTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # websocket and anything newer: not part of the bridge
            if scope["type"] == "websocket":
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": 1008})
            return
        if self.peer_guard is not None:
            peer, local = address_of(scope.get("client")), address_of(scope.get("server"))
            verdict = self.peer_guard.verdict(peer, local)
            if not verdict.allowed:
                self._refused("peer_not_allowed", scope, owner=verdict.owner)
                await _problem(
                    send, 403, "peer_not_allowed", "the bridge serves only its own user's programs"
                )
                return
        headers = _headers(scope)
        if headers.get("host", "").lower() not in self.hosts:
            await _problem(
                send, 403, "host_not_allowed", "Host must be the bridge's loopback address"
            )
            return
        if "origin" not in headers and self._is_control(scope, headers):
            await self.app(scope, receive, send)
            return
        origin = self._allowed(headers.get("origin"))
        if origin is None:
            await _problem(send, 403, "origin_not_allowed", "this origin may not use the bridge")
            return
        cors = [
            (b"access-control-allow-origin", origin.encode()),
            (b"vary", b"Origin"),
        ]
        if scope["method"] == "OPTIONS":
            await self._preflight(send, headers, cors)
            return
        if scope["method"] == "POST":
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                await _problem(send, 415, "unsupported_media_type", "send application/json", cors)
                return
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await _problem(send, 413, "too_large", f"at most {self.max_body} bytes", cors)
                return
        if self._inflight >= self.max_inflight:
            self._refused("overloaded", scope)
            await _problem(send, 503, "overloaded", "too many requests at once; retry", cors)
            return
        scope.setdefault("state", {})["origin"] = origin
        self._inflight += 1
        try:
            await self.app(scope, self._limited(receive, send, cors), self._with_cors(send, cors))
        finally:
            self._inflight -= 1

    def _refused(self, code: str, scope: Scope, **fields: Any) -> None:
        if self.on_refused is not None:
            self.on_refused(code, {"path": str(scope.get("path", ""))[:200], **fields})

    def _is_control(self, scope: Scope, headers: dict[str, str]) -> bool:
        given = headers.get("authorization")
        return (
            self._control is not None
            and given is not None
            and scope["method"] == "GET"
            and scope["path"] in self.control_paths
            and hmac.compare_digest(given.encode("latin-1"), self._control)
        )

    def _allowed(self, origin: str | None) -> str | None:
        """The origin, if it is exactly one of the allowlist's. Allowlist entries are
        normalised when configured, and a browser sends the serialised origin: an exact
        string match is the whole check (no parsing of hostile input on the hot path).
        ``null``, a duplicated header and anything not serialised canonically never match."""
        return origin if origin and origin in self.allowed_origins() else None

    async def _preflight(
        self, send: Send, headers: dict[str, str], cors: list[tuple[bytes, bytes]]
    ) -> None:
        reply = [
            *cors,
            (b"access-control-allow-methods", self.allowed_methods),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", b"600"),
            (b"content-length", b"0"),
        ]
        if headers.get("access-control-request-private-network", "").lower() == "true":
            reply.append((b"access-control-allow-private-network", b"true"))
        await send({"type": "http.response.start", "status": 204, "headers": reply})
        await send({"type": "http.response.body", "body": b""})

    def _with_cors(self, send: Send, cors: list[tuple[bytes, bytes]]) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        return wrapped

    def _limited(self, receive: Receive, send: Send, cors: list[tuple[bytes, bytes]]) -> Receive:
        seen = 0
        limit = self.max_body

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message

        return wrapped


class BodyTooLarge(Exception):
    """A chunked body went over the limit while being read."""


async def _problem(
    send: Send, status: int, code: str, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(problem_body(status, code, detail)).encode()
    headers = [
        (b"content-type", PROBLEM_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
