"""The agent's HTTP connections: uvicorn's protocol with the bridge's connection rules
(another user's peer refused at once, a deadline for the request head, connections per owner
bounded). It subclasses uvicorn's protocol: the agent's own business, since it is the agent
that serves the bridge with uvicorn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from cardkit.pcsc_bridge.peers import PeerGuard, address_of
from cardkit.pcsc_bridge.problems import PROBLEM_TYPE, problem_body

#: Seconds a new connection has to send a complete request head.
HEADER_TIMEOUT = 10.0
#: Connections one owner may hold open at once (a browser opens a handful).
MAX_CONNECTIONS = 64
#: Seconds a refused connection stays open to read its request before it is closed.
REFUSAL_LINGER = 1.0


def _refusal(status: int, reason: str, code: str, detail: str) -> bytes:
    body = json.dumps(problem_body(status, code, detail)).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {PROBLEM_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def guarded_protocol(
    guard: PeerGuard,
    *,
    header_timeout: float = HEADER_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    on_refused: Callable[[str, dict[str, Any]], None] | None = None,
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with the bridge's connection rules:

    - a peer of another user is answered ``peer_not_allowed`` and closed at once (it holds
      no connection slot);
    - a connection that sends no complete request head within ``header_timeout`` seconds
      is closed (silent or trickling sockets cannot pile up; uvicorn's own keep-alive
      timeout covers idle connections after a request);
    - one owner holds at most ``max_connections`` connections; more are answered
      ``overloaded`` and closed.
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    base: Any = AutoHTTPProtocol
    open_count: list[int] = [0]

    def refuse(code: str, fields: dict[str, Any]) -> None:
        if on_refused is not None:
            on_refused(code, fields)

    class GuardedProtocol(base):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._cardkit_peer = address_of(transport.get_extra_info("peername"))
            self._cardkit_timer: asyncio.TimerHandle | None = None
            self._cardkit_counted = False
            local = address_of(transport.get_extra_info("sockname"))
            super().connection_made(transport)
            if self._cardkit_peer is None or local is None:
                return
            guard.opened(self._cardkit_peer, local)
            verdict = guard.verdict(self._cardkit_peer, local)
            if not verdict.allowed:
                refuse("peer_not_allowed", {"owner": verdict.owner, "stage": "connect"})
                self._cardkit_close(
                    _refusal(
                        403,
                        "Forbidden",
                        "peer_not_allowed",
                        "the bridge serves only its own user's programs",
                    )
                )
                return
            if open_count[0] >= max_connections:
                refuse("overloaded", {"open": open_count[0]})
                self._cardkit_close(
                    _refusal(503, "Service Unavailable", "overloaded", "too many connections")
                )
                return
            open_count[0] += 1
            self._cardkit_counted = True
            loop = asyncio.get_running_loop()
            self._cardkit_timer = loop.call_later(header_timeout, self._cardkit_expire)

        def _cardkit_close(self, answer: bytes) -> None:
            """Answer at once, then drain what the client sends for a moment before
            closing: closing on unread data would reset the connection, and the client
            would lose the answer."""
            self._cardkit_refused = True
            self.transport.write(answer)
            asyncio.get_running_loop().call_later(REFUSAL_LINGER, self.transport.close)

        def data_received(self, data: bytes) -> None:
            if getattr(self, "_cardkit_refused", False):
                return  # refused: its request is read and dropped, never served
            super().data_received(data)

        def _cardkit_expire(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                refuse("header_timeout", {})
                self.transport.close()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and self._cardkit_timer is not None:
                self._cardkit_timer.cancel()  # a request head arrived in time
                self._cardkit_timer = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._cardkit_timer is not None:
                self._cardkit_timer.cancel()
            if self._cardkit_counted:
                open_count[0] -= 1
                self._cardkit_counted = False
            if self._cardkit_peer is not None:
                guard.closed(self._cardkit_peer)
            super().connection_lost(exc)

    return GuardedProtocol
