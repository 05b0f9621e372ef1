"""Running the mock setup from tests and benchmarks: a free vpcd slot, a mock card served by a
process of its own, and the agent started as a user starts it and waited for.

One copy of each, here, rather than one per benchmark and test module.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardkit.pcsc_bridge.client import BridgeCallError, BridgeClient
from cardkit.transport import ReaderBackend

VPCD_PREFIX = "Virtual PCD"
DEFAULT_ORIGIN = "https://portal.example"
#: Headless Chromium as the browser tests and the portal benchmark run it (the distribution's
#: build: nothing is downloaded at run time).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class HarnessError(RuntimeError):
    """The mock setup could not be brought up (no free slot, agent did not start...)."""


def vpcd_readers(backend: ReaderBackend) -> list[str]:
    """pcscd's vpcd readers, in slot order."""
    return sorted(n for n in backend.readers() if n.startswith(VPCD_PREFIX))


def free_vpcd_slot(backend: ReaderBackend, taken: Iterable[int] = ()) -> tuple[int, str]:
    """(slot, reader name) of the first vpcd reader without a card and not in ``taken``."""
    states = backend.states()
    busy = set(taken)
    for slot, reader in enumerate(vpcd_readers(backend)):
        if slot not in busy and not states[reader].card_present:
            return slot, reader
    raise HarnessError("no free vpcd slot: stop the demo's mock cards (scripts/demo.sh stop)")


def wait_for_card(
    backend: ReaderBackend, reader: str, present: bool = True, timeout: float = 10.0
) -> None:
    """Block until pcscd reports the card present (or absent) in ``reader``."""
    deadline = time.monotonic() + timeout
    states = backend.states()
    while states[reader].card_present != present:
        left = deadline - time.monotonic()
        if left <= 0:
            raise HarnessError(f"{reader}: card still {'absent' if present else 'present'}")
        states = backend.wait_for_change(states, min(left, 1.0))


@dataclass
class CardProcess:
    """A mock card served by ``python -m mocks.vpcd`` in a process of its own.

    Needed whenever a C library that keeps Python's GIL talks to the card (PyKCS11 does, for
    the whole of C_Initialize or C_Sign): a card served by a thread of the same process
    could never answer.
    """

    process: subprocess.Popen[str]
    slot: int
    reader: str
    run_dir: Path

    def ctl(self, command: str) -> str:
        """``insert``, ``remove`` or ``status``, through the card's control socket."""
        done = subprocess.run(
            [sys.executable, "-m", "mocks.vpcd", "ctl", "--slot", str(self.slot), command],
            env={**os.environ, "CARDKIT_RUN_DIR": str(self.run_dir)},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout.strip()

    def stop(self, backend: ReaderBackend | None = None) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if backend is not None:
            wait_for_card(backend, self.reader, present=False)


def start_card_process(
    backend: ReaderBackend, profile: str, run_dir: Path, taken: Iterable[int] = ()
) -> CardProcess:
    """Serve ``profile`` in the first free vpcd slot from a new process; returns once pcscd
    sees the card."""
    slot, reader = free_vpcd_slot(backend, taken)
    process = subprocess.Popen(
        [sys.executable, "-m", "mocks.vpcd", "--profile", profile, "--slot", str(slot)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CARDKIT_RUN_DIR": str(run_dir)},
    )
    card = CardProcess(process, slot, reader, run_dir)
    try:
        wait_for_card(backend, reader, present=True, timeout=20)
    except HarnessError:
        card.stop()
        raise
    return card


def run_cardkit(*args: str, stdin: str = "", timeout: float = 600) -> tuple[int, str, float]:
    """``cardkit ARGS`` as a person runs it, in a process of its own: (exit code, what it
    printed on both outputs, seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cardkit", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AgentProcess:
    """``cardkit agent run`` in a process of its own, with a private home."""

    process: subprocess.Popen[str]
    port: int
    home: Path
    env: dict[str, str]
    pin_file: Path
    origin: str = DEFAULT_ORIGIN
    output: list[str] = field(default_factory=list)

    @property
    def audit(self) -> Path:
        return self.home / "state" / "cardkit" / "log" / "audit.jsonl"

    def client(self, origin: str | None = None, timeout: float = 60) -> BridgeClient:
        return BridgeClient(origin or self.origin, port=self.port, timeout=timeout)

    def raw(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """A request exactly as given (no helpful defaults), for attack tests."""
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
        connection.close()
        head, _, payload = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.decode().partition(":")
            fields[name.strip().lower()] = value.strip()
        return status, fields, payload

    def audit_lines(self) -> list[dict[str, object]]:
        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines()]

    def authenticate_in_thread(self) -> tuple[threading.Thread, list[object]]:
        """A ``/v1/auth`` call running in a thread; ``outcome`` gets the token or the
        :class:`BridgeCallError` (for tests that act while the agent waits for the PIN)."""
        from cardkit.auth.challenge import Challenge

        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(self.client().authenticate(Challenge.new().nonce))
            except BridgeCallError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=call)
        thread.start()
        return thread, outcome

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, and the exit code (killed after ``timeout``: then an error)."""
        self.process.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise HarnessError("the agent did not stop on SIGTERM") from None


def start_agent(
    home: Path,
    module: str,
    *,
    origins: Sequence[str] = (DEFAULT_ORIGIN,),
    prompt: str | None = None,
    pin: str | None = "1234",
    fifo: bool = False,
    log_level: str | None = None,
    env: dict[str, str] | None = None,
    quiet: bool = False,
    timeout: float = 30,
    config: str = "",
) -> AgentProcess:
    """Start the agent on a free port with its XDG directories under ``home`` and the
    scripted prompt reading ``pin`` (or a FIFO the caller writes to), and wait until its
    bridge answers."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    pin_file = home / "pin"
    if fifo:
        os.mkfifo(pin_file)
    else:
        pin_file.write_text(f"{pin}\n")
    full_env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "CARDKIT_TEST_MODE": "1",  # the scripted prompt is refused otherwise
        **(env or {}),
    }
    (home / "run").mkdir(mode=0o700, exist_ok=True)
    if config:  # agent.toml, for settings with no flag
        (home / "config" / "cardkit").mkdir(parents=True, exist_ok=True)
        (home / "config" / "cardkit" / "agent.toml").write_text(config, encoding="utf-8")
    command = [sys.executable, "-m", "cardkit"]
    if log_level:
        command += ["--log-level", log_level]
    command += ["agent", "run", "--port", str(port), "--module", module]
    command += ["--pin-provider", prompt or f"scripted:{pin_file}"]
    for origin in origins:
        command += ["--allow-origin", origin]
    process = subprocess.Popen(
        command,
        env=full_env,
        stdout=subprocess.DEVNULL if quiet else subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else subprocess.STDOUT,
        text=True,
    )
    running = AgentProcess(process, port, home, full_env, pin_file, origins[0])
    deadline = time.monotonic() + timeout
    while True:
        try:
            running.client(timeout=2).request("GET", "/v1/version")
            return running
        except BridgeCallError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout and process.poll() else ""
                if process.poll() is None:
                    process.kill()
                raise HarnessError(f"the agent did not start: {output}") from None
            time.sleep(0.1)


@dataclass
class PortalServer:
    """The mock portal served by uvicorn on a thread of this process (its records stay
    reachable for set-ups and checks), for the browser tests and the portal benchmark."""

    origin: str
    port: int
    site: Any  # mocks.portal.site.Site
    server: Any  # uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def portal_origin(port: int) -> str:
    return f"http://localhost:{port}"


def start_portal(
    port: int,
    bridge_port: int,
    store: Path,
    *,
    origin: str | None = None,
    tls: tuple[Path, Path] | None = None,
    **options: Any,
) -> PortalServer:
    """The demo portal at ``origin`` (default :func:`portal_origin` of ``port``; the agent
    on ``bridge_port`` must allow it: start it first), records in ``store``; over HTTPS
    with ``tls`` (certificate and key files)."""
    import uvicorn

    from mocks.portal.app import PortalConfig, create_portal, seed_demo

    origin = origin or portal_origin(port)
    config = PortalConfig(
        origin=origin, bridge_port=bridge_port, store=str(store), demo=True, **options
    )
    app = create_portal(config)
    seed_demo(app.state.site.doors)
    certificate, key = tls if tls else (None, None)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(certificate) if certificate else None,
            ssl_keyfile=str(key) if key else None,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return PortalServer(origin, port, app.state.site, server, thread)
