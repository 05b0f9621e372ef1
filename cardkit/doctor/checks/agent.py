"""The agent and its bridge: running for this user, answering, on loopback only, starting
with the session, serving the portal; or what holds its port instead."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

from cardkit.doctor.checks.base import Context, Facts, Out, RunningAgent
from cardkit.doctor.model import Finding, Status
from cardkit.pcsc_bridge.client import BridgeCallError, BridgeClient
from cardkit.pcsc_bridge.contract import DEFAULT_PORT
from cardkit.pcsc_bridge.peers import proc_tcp_sockets


def _port_owner(port: int) -> str | None:
    """Which process listens on ``port`` (Linux), to name a squatter."""
    inodes = {s.inode for s in proc_tcp_sockets() if s.listening and s.local[1] == port}
    if not inodes:
        return None
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                    return f"pid {pid_dir.name}: {cmdline.decode(errors='replace')[:200]}"
        except OSError:
            continue
    return None


def _non_loopback_listeners(port: int) -> list[str]:
    """Addresses other than loopback where something listens on ``port`` (Linux)."""
    return [
        str(s.local[0])
        for s in proc_tcp_sockets()
        if s.listening and s.local[1] == port and not s.local[0].is_loopback
    ]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _not_running(ctx: Context, out: Out, port: int, installed: bool) -> Finding:
    _ = ctx.gettext
    title = _("Agent and bridge")
    if _listening(port):
        owner = _port_owner(port)
        return out(
            Status.ERROR,
            title,
            _("Another program holds the bridge's port {port}: {owner}.").format(
                port=port, owner=owner or _("unknown program")
            ),
            _("Stop that program (or choose another port with --port), then start the agent."),
            port=port,
            owner=owner,
        )
    if not installed:
        return out(
            Status.ERROR,
            title,
            _("The card reading software (cardkit agent) is not installed."),
            _('Install cardkit with its agent (pip install "cardkit[agent]").'),
            port=port,
        )
    return out(
        Status.ERROR,
        title,
        _("The agent is not running for this user."),
        _(
            "Start it (cardkit agent run) and have it start with the session "
            "(cardkit agent install-service)."
        ),
        port=port,
    )


def check_agent(ctx: Context, facts: Facts, out: Out) -> Iterator[Finding]:
    _ = ctx.gettext
    running = out.item("running")
    runtime = ctx.agent.announcement() if ctx.agent is not None else None
    if runtime is None:
        port = ctx.port or DEFAULT_PORT
        yield _not_running(ctx, running, port, ctx.agent is not None)
        return
    assert ctx.agent is not None
    client = BridgeClient(None, port=runtime.port, timeout=5, control_token=runtime.control_token)
    try:
        status = client.status()
    except BridgeCallError as exc:
        yield running(
            Status.ERROR,
            _("Agent and bridge"),
            _("The agent (pid {pid}) does not answer on port {port}: {error}.").format(
                pid=runtime.pid, port=runtime.port, error=exc.code
            ),
            _("Restart the agent; if another program holds the port, stop it."),
            port=runtime.port,
            owner=_port_owner(runtime.port),
        )
        return
    facts.agent = RunningAgent(runtime.port, runtime.allowed_origins)
    exposed = _non_loopback_listeners(runtime.port)
    if exposed:
        yield out.item("loopback")(
            Status.ERROR,
            _("Bridge exposure"),
            _("The bridge's port {port} is open on {addresses}, not only on loopback.").format(
                port=runtime.port, addresses=", ".join(exposed)
            ),
            _("Stop what listens there; the agent itself binds 127.0.0.1 and ::1 only."),
            addresses=exposed,
        )
    autostart = ctx.agent.autostart_installed()
    yield running(
        Status.OK,
        _("Agent and bridge"),
        _("Agent {version} running (pid {pid}), bridge on 127.0.0.1:{port}, PIN: {prompt}.").format(
            version=status["version"],
            pid=runtime.pid,
            port=runtime.port,
            prompt=status["pin_provider"],
        ),
        port=runtime.port,
        pid=runtime.pid,
        version=status["version"],
        pin_provider=status["pin_provider"],
        allowed_origins=list(runtime.allowed_origins),
        autostart_installed=autostart,
    )
    if autostart is False:
        yield out.item("autostart")(
            Status.WARNING,
            _("Agent start with the session"),
            _("The agent runs now, but will not start again with the next session."),
            _("cardkit agent install-service"),
        )
    if not ctx.origin:
        return
    allowed = ctx.origin in runtime.allowed_origins
    yield out.item("origin")(
        Status.OK if allowed else Status.ERROR,
        _("Portal {origin}").format(origin=ctx.origin),
        _("The agent serves this portal.") if allowed else _("The agent refuses this portal."),
        ""
        if allowed
        else _(
            "Add it: allowed_origins in agent.toml (or --allow-origin), then restart the agent."
        ),
        origin=ctx.origin,
        allowed_origins=list(runtime.allowed_origins),
    )
