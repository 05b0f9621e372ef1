"""``cardkit agent run``: one agent per user, serving the bridge on loopback until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import uvicorn
from filelock import FileLock, Timeout

from agent.audit import AuditLog, RefusalAudit
from agent.cardwork import ReaderWorkers
from agent.config import AgentConfig
from agent.consent import open_consent_store
from agent.private import harden_process
from agent.prompt import prompt_from_spec
from agent.protocol import guarded_protocol
from agent.runtime import announce, runtime_dir
from agent.service import AgentService
from cardkit import __version__
from cardkit.errors import CardkitError
from cardkit.pcsc_bridge.app import create_app
from cardkit.pcsc_bridge.peers import PeerGuard
from cardkit.pcsc_bridge.runtime import RuntimeInfo
from cardkit.pkcs11 import find_module
from cardkit.transport import pcsc_backend
from cardkit.transport.deadline import TIMEOUT_VARIABLE

log = logging.getLogger(__name__)


class AgentError(CardkitError):
    """The agent cannot start."""

    code = "agent_error"


class InstanceLock:
    """An exclusive lock file: a second agent of the same user fails to take it.

    ``filelock`` uses ``fcntl.flock`` on POSIX and ``msvcrt.locking`` on Windows; the OS
    releases it when the process dies, so a crashed agent never blocks the next one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path), timeout=0)

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise AgentError(
                f"another cardkit agent is running for this user ({self.path})"
            ) from None

    def release(self) -> None:
        self._lock.release()


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
    """uvicorn's server with two changes for an agent that runs all day on practice PCs.

    uvicorn re-raises SIGTERM/SIGINT once it has stopped serving, which would kill the
    process before the agent's own clean-up (worker processes, monitor, audit "stop", lock):
    the agent swallows it, since a signal means "shut down cleanly", and it does.

    uvicorn wakes ten times a second to see whether it should stop; idle, that was most of
    the agent's CPU. The agent's loop wakes once a second (the Date header's own resolution),
    and at once when a signal asks it to stop.
    """

    async def main_loop(self) -> None:
        self._cardkit_wake = asyncio.Event()
        self._cardkit_loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000  # on_tick refreshes the Date when counter % 10 == 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cardkit_wake.wait(), 1.0)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        loop = getattr(self, "_cardkit_loop", None)
        if loop is not None:
            loop.call_soon_threadsafe(self._cardkit_wake.set)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            captured = getattr(self, "_captured_signals", None)
            if captured:
                log.info("stopping on signal %s", ", ".join(str(s) for s in captured))
                captured.clear()


def run(config: AgentConfig, *, lock_path: Path | None = None) -> None:
    harden_process()
    # The card workers read the deadline from their environment, which they inherit.
    os.environ.setdefault(TIMEOUT_VARIABLE, str(config.card_timeout))
    lock = InstanceLock(lock_path or runtime_dir() / "agent.lock")
    lock.acquire()
    with contextlib.ExitStack() as stack:
        stack.callback(lock.release)
        sockets = loopback_sockets(config.port)
        for sock in sockets:
            stack.callback(sock.close)
        module = find_module(config.pkcs11_module)
        prompt = prompt_from_spec(config.pin_provider)
        audit = AuditLog(config.audit_log)
        service = AgentService(
            backend=pcsc_backend(),
            work=ReaderWorkers(Path(module.path), initializer="agent.private:harden_process"),
            prompt=prompt,
            consent=open_consent_store(config.state_dir),
            audit=audit,
        )
        service.start()
        stack.callback(service.stop)
        origins = frozenset(config.allowed_origins)  # normalised by the config
        runtime = RuntimeInfo.new(config.port, config.allowed_origins)
        runtime_file = announce(runtime)
        stack.callback(runtime_file.unlink, missing_ok=True)
        guard = PeerGuard()
        if not guard.available:
            raise AgentError(
                f"cannot tell which user owns a loopback connection on {sys.platform}: "
                "refusing to serve the cards to every local program"
            )
        refusals = RefusalAudit(audit)
        app = create_app(
            service,
            port=config.port,
            allowed_origins=lambda: origins,
            control_token=runtime.control_token,
            peer_guard=guard,
            on_refused=refusals.record,
        )
        audit.record(
            "start",
            version=__version__,
            port=config.port,
            origins=list(config.allowed_origins),
            pin_provider=prompt.name,
            pkcs11_module=str(module.path),
        )
        stack.callback(audit.record, "stop")
        log.info(
            "cardkit agent %s on http://127.0.0.1:%d (origins: %s; PIN: %s)",
            __version__,
            config.port,
            ", ".join(config.allowed_origins) or "none",
            prompt.name,
        )
        server = _Server(
            uvicorn.Config(
                app,
                log_level=config.log_level.lower(),
                access_log=False,
                lifespan="off",
                timeout_keep_alive=5,
                # A page listening to /v1/events keeps its stream open as long as it lives:
                # on a stop signal the agent gives streams this long, then closes them.
                timeout_graceful_shutdown=2,
                # The bridge is reached directly, never through a proxy: a forwarded-for
                # header must not rewrite the client address the per-request peer check reads.
                proxy_headers=False,
                forwarded_allow_ips=[],
                # uvicorn's own limit counts idle connections and answers in plain text;
                # the bridge's limits (agent.protocol, security.MAX_INFLIGHT) do not.
                limit_concurrency=None,
                http=guarded_protocol(
                    guard, header_timeout=config.header_timeout, on_refused=refusals.record
                ),
            )
        )
        server.run(sockets=sockets)  # returns on SIGINT/SIGTERM
