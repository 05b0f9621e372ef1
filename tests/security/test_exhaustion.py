"""Connection exhaustion and port squatting, against the agent as a real process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mocks.harness import AgentProcess, free_port


def test_silent_sockets_do_not_lock_anyone_out(agent: Callable[..., AgentProcess]) -> None:
    """Silent connections (the old limit answered 503 to everyone while 64 were open) are
    closed after the header timeout, and do not keep a real request from being served."""
    running = agent(config="header_timeout = 1.0\n")
    silent = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(60)]
    try:
        status = running.client(timeout=10).status()
        assert status["state"] == "running"  # served at once, with 60 silent sockets open
        for sock in silent:
            sock.settimeout(10)
        closed = sum(1 for sock in silent if sock.recv(1) == b"")
        assert closed == len(silent)  # each closed by the agent after the header timeout
    finally:
        for sock in silent:
            sock.close()
    lines = running.audit_lines()
    refused = [e for e in lines if e["event"] == "refused" and e["code"] == "header_timeout"]
    assert 0 < len(refused) <= 20  # rate-limited: 60 refusals, at most 20 lines a minute


def test_too_many_connections_get_a_problem_document(
    agent: Callable[..., AgentProcess],
) -> None:
    running = agent(config="header_timeout = 30.0\n")
    held = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(64)]
    try:
        time.sleep(0.3)
        status, headers, body = running.raw(
            "GET", "/v1/status", {"Host": f"127.0.0.1:{running.port}", "Origin": running.origin}
        )
        assert status == 503 and json.loads(body)["code"] == "overloaded"
        assert headers["content-type"] == "application/problem+json"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert running.client().status()["state"] == "running"  # and served once they go


def test_a_squatted_port_stops_the_agent_loudly(tmp_path: Path) -> None:
    """A program that holds the bridge's port first (at boot, in a restart gap) does not
    get a silent agent: it refuses to start and says which port."""
    port = free_port()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen(1)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cardkit", "agent", "run", "--port", str(port)],
            env={
                "PATH": "/usr/bin:/bin",
                "XDG_RUNTIME_DIR": str(tmp_path / "run"),
                "XDG_CONFIG_HOME": str(tmp_path / "config"),
                "XDG_STATE_HOME": str(tmp_path / "state"),
                "XDG_DATA_HOME": str(tmp_path / "data"),
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        squatter.close()
    assert done.returncode != 0
    assert f"port {port}" in done.stderr + done.stdout and "in use" in done.stderr + done.stdout
