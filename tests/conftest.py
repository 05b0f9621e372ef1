"""Shared test plumbing.

Rule: under CI (``CI=true``) a test never skips because a real component is missing;
it fails, because a green run that skipped pcscd, vpcd or a tool proves nothing.
Elsewhere such tests skip with the reason, so a developer without pcscd can still run the
in-process suite.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from mocks.revocation import RevocationServer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_component(what: str) -> NoReturn:
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: real components are required, not skipped)")
    pytest.skip(what)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing_component(f"{name} is not installed (run scripts/setup.sh)")
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reader",
        default=None,
        help="run the hardware tests against a real card in this PC/SC reader",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Real-card tests are opt-in: collected only with ``--reader``, so a run without a card
    reports nothing skipped."""
    if collection_path.name == "hardware" and not config.getoption("--reader"):
        return True
    return None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the session (no persistence), on a free loopback port."""
    from mocks.harness import free_port

    server = require_tool("redis-server")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def revocation_server() -> Iterator[RevocationServer]:
    """The TEST PKI's CRL and OCSP services on their fixed loopback ports (one per session:
    the certificates name those ports)."""
    try:
        server = RevocationServer().start()
    except OSError as exc:
        pytest.fail(f"the TEST PKI's CRL/OCSP ports are taken: {exc}")
    yield server
    server.stop()


@pytest.fixture
def x_display(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A virtual X display (Xvfb) for this test, in ``DISPLAY``; desktop programs run on it
    and ``xdotool`` drives them as a person would."""
    for tool in ("Xvfb", "xdotool"):
        require_tool(tool)
    number = 90 + os.getpid() % 9
    server = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    monkeypatch.setenv("DISPLAY", f":{number}")
    deadline = time.monotonic() + 10
    while not os.path.exists(f"/tmp/.X11-unix/X{number}"):
        if time.monotonic() > deadline or server.poll() is not None:
            pytest.fail("Xvfb did not start")
        time.sleep(0.05)
    yield f":{number}"
    server.terminate()
    server.wait(10)
