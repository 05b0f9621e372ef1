"""``cardkit agent run``: one agent per user, serving the bridge on loopback until stopped."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import uvicorn

from agent.audit import AuditLog
from agent.config import AgentConfig, runtime_dir
from agent.consent import open_consent_store
from agent.pin import provider_from_spec
from agent.service import AgentService
from agent.signer import SignerProcess
from cardkit import __version__
from cardkit.errors import CardkitError
from cardkit.pcsc_bridge import create_app
from cardkit.pkcs11 import find_module
from cardkit.transport import pcsc_backend

log = logging.getLogger("agent")


class AgentError(CardkitError):
    """The agent cannot start."""

    code = "agent_error"


class InstanceLock:
    """An exclusive lock file: a second agent of the same user fails to take it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise AgentError(
                f"another cardkit agent is running for this user ({self.path})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def loopback_sockets(port: int) -> list[socket.socket]:
    """Listening sockets on 127.0.0.1 and ::1 only (never a wildcard address)."""
    sockets: list[socket.socket] = []
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 on this machine
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted connections: a response written as headers then body must
        # not wait for the client's delayed ACK (~40 ms per keep-alive request otherwise).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                for other in sockets:
                    other.close()
                raise AgentError(
                    f"port {port} on {address} is in use (another agent? choose --port)"
                ) from None
            if family == socket.AF_INET6:
                continue  # ::1 not configured
            raise
        sock.listen(64)
        sock.set_inheritable(True)
        sockets.append(sock)
    if not sockets:
        raise AgentError("no loopback address to listen on")
    return sockets


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT once it has stopped serving, which would kill the
    process before the agent's own clean-up (worker process, monitor, audit "stop", lock).
    The agent swallows it: a signal means "shut down cleanly", and it does."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            captured = getattr(self, "_captured_signals", None)
            if captured:
                log.info("stopping on signal %s", ", ".join(str(s) for s in captured))
                captured.clear()


def run(config: AgentConfig, *, lock_path: Path | None = None) -> None:
    lock = InstanceLock(lock_path or runtime_dir() / "agent.lock")
    lock.acquire()
    with contextlib.ExitStack() as stack:
        stack.callback(lock.release)
        sockets = loopback_sockets(config.port)
        for sock in sockets:
            stack.callback(sock.close)
        module = find_module(config.pkcs11_module)
        provider = provider_from_spec(config.pin_provider)
        audit = AuditLog(config.audit_log)
        service = AgentService(
            backend=pcsc_backend(),
            signer=SignerProcess(Path(module.path)),
            provider=provider,
            consent=open_consent_store(config.state_dir),
            audit=audit,
            allowed_origins=lambda: frozenset(config.allowed_origins),
        )
        service.start()
        stack.callback(service.stop)
        app = create_app(
            service, port=config.port, allowed_origins=lambda: frozenset(config.allowed_origins)
        )
        audit.record(
            "start",
            version=__version__,
            port=config.port,
            origins=list(config.allowed_origins),
            pin_provider=provider.name,
            pkcs11_module=str(module.path),
        )
        stack.callback(audit.record, "stop")
        log.info(
            "cardkit agent %s on http://127.0.0.1:%d (origins: %s; PIN: %s)",
            __version__,
            config.port,
            ", ".join(config.allowed_origins) or "none",
            provider.name,
        )
        server = _Server(
            uvicorn.Config(
                app,
                log_level=config.log_level.lower(),
                access_log=False,
                lifespan="off",
                timeout_keep_alive=5,
                limit_concurrency=64,
            )
        )
        server.run(sockets=sockets)  # returns on SIGINT/SIGTERM
