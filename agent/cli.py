"""The agent's commands: ``agent run|status|origins|install-service`` and ``bridge call``.

Registered in the ``cardkit`` command tree through the ``cardkit.commands`` entry points
(see ``pyproject.toml`` and :mod:`cardkit.cli`): the library never imports the agent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from agent.config import AgentConfig
from agent.consent import ConsentStore, open_consent_store
from agent.runtime import announcement, config_path
from cardkit.auth.origin import normalize_origin
from cardkit.cli import State, emit_json, json_option
from cardkit.errors import ExitCode
from cardkit.pcsc_bridge.client import BridgeCallError, BridgeClient
from cardkit.pcsc_bridge.contract import DEFAULT_PORT, ENDPOINTS


@click.group("agent")
def agent_group() -> None:
    """The workstation agent and its localhost bridge."""


@agent_group.command("run")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--port", type=int, help=f"bridge port (default {DEFAULT_PORT})")
@click.option("--allow-origin", "origins", multiple=True, help="allowed portal origin (repeat)")
@click.option(
    "--pin-provider", help="auto | dialog | console | pinpad | scripted:FILE (tests, demos)"
)
@click.option("--module", "module_path", help="PKCS#11 module (default: discovery)")
@click.pass_obj
def agent_run(  # noqa: PLR0917 - click passes options positionally
    state: State,
    config_file: Path | None,
    port: int | None,
    origins: tuple[str, ...],
    pin_provider: str | None,
    module_path: str | None,
) -> None:
    """Run the agent in the foreground (Ctrl-C or SIGTERM stops it).

    Logs go to standard error at the root ``--log-level``, else at the config file's."""
    import logging

    from agent.daemon import run

    config = AgentConfig.load(config_file).with_overrides(
        port=port,
        allowed_origins=list(origins) or None,
        pin_provider=pin_provider,
        pkcs11_module=module_path,
        log_level=state.log_level.upper() if state.log_level else None,
    )
    if state.log_level is None:
        logging.basicConfig(
            level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    run(config)


@agent_group.command("status")
@json_option
def agent_status(as_json: bool) -> None:
    """Is the agent answering? Asks the running agent through its local control channel
    (no portal origin needed). Exit 0 running, 1 not."""
    runtime = announcement()
    if runtime is None:
        _not_running(as_json, "no running agent for this user", "agent_not_running")
    assert runtime is not None
    client = BridgeClient(None, port=runtime.port, timeout=5, control_token=runtime.control_token)
    try:
        status = client.status()
    except BridgeCallError as exc:
        _not_running(as_json, f"agent not answering on port {runtime.port}: {exc}", exc.code)
    if as_json:
        emit_json({"running": True, "pid": runtime.pid, "port": runtime.port, **status})
        return
    readers = status.get("readers", [])
    click.echo(
        f"agent {status['version']} running (pid {runtime.pid}, port {runtime.port}, "
        f"{len(readers)} reader(s))"
    )


def _not_running(as_json: bool, message: str, code: str) -> None:
    if as_json:
        emit_json({"running": False, "error": code, "message": message})
    else:
        click.echo(message)
    sys.exit(ExitCode.FAILURE)


@agent_group.group("origins")
def origins_group() -> None:
    """Sites the user allowed (or refused) to use the cards."""


def _consent() -> ConsentStore:
    return open_consent_store(AgentConfig.load().state_dir)


@origins_group.command("list")
@json_option
def origins_list(as_json: bool) -> None:
    decisions = _consent().all()
    config = AgentConfig.load()
    rows = [
        {"origin": o, "action": a, "allowlisted": o in config.allowed_origins, **d}
        for o, actions in sorted(decisions.items())
        for a, d in sorted(actions.items())
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "allowed" if row["allowed"] else "refused"
        click.echo(f"{row['origin']}  {row['action']}  {state}  ({row['at']})")


ACTIONS = sorted({str(row.consent) for row in ENDPOINTS if row.consent})
action_option = click.option(
    "--action",
    "actions",
    multiple=True,
    type=click.Choice(ACTIONS),
    help="the action (repeatable; default: every action)",
)


@origins_group.command("allow")
@click.argument("origin")
@action_option
def origins_allow(origin: str, actions: tuple[str, ...]) -> None:
    store = _consent()
    for action in actions or ACTIONS:
        store.record(normalize_origin(origin), action, True)
    click.echo(
        f"{origin}: {', '.join(actions or ACTIONS)} allowed "
        f"(it must also be in allowed_origins of {config_path()})"
    )


@origins_group.command("revoke")
@click.argument("origin")
@action_option
def origins_revoke(origin: str, actions: tuple[str, ...]) -> None:
    store = _consent()
    found = [store.revoke(normalize_origin(origin), a) for a in actions or (None,)]
    click.echo(f"{origin}: {'revoked' if any(found) else 'no decision recorded'}")


@agent_group.command("install-service")
@click.option("--dry-run", is_flag=True, help="print what would be written, change nothing")
def agent_install_service(dry_run: bool) -> None:
    """Start the agent with the user's session: a systemd user unit (Linux), a LaunchAgent
    (macOS) or a scheduled task at log-on (Windows)."""
    from agent.autostart import plan_for_this_system

    plan = plan_for_this_system()
    if dry_run:
        click.echo(f"# {plan.path}\n{plan.text}")
        click.echo(f"# then: {' '.join(plan.activate)}" if plan.activate else "")
        return
    plan.install()
    click.echo(f"wrote {plan.path}")
    if plan.activate:
        click.echo(f"then: {' '.join(plan.activate)}")


@agent_group.command("shortcut")
@click.option("--url", help="the page to open (default: portal_url in agent.toml)")
@click.option("--name", default=None, help="the shortcut's name on the desktop")
@click.option("--uninstall", is_flag=True, help="remove the shortcut")
@click.option("--dry-run", is_flag=True, help="print what would be written, change nothing")
def agent_shortcut(url: str | None, name: str | None, uninstall: bool, dry_run: bool) -> None:
    """Put on the desktop a shortcut that opens the portal in a window of its own (an app
    window of Chrome, Edge or Chromium, with its own profile; else the default browser)."""
    from urllib.parse import urlsplit

    import platformdirs

    from agent.shortcut import DEFAULT_NAME, find_browser, plan_for

    target = url or AgentConfig.load().portal_url
    if not uninstall and not target:
        raise click.UsageError(f"no portal URL: pass --url or set portal_url in {config_path()}")
    if target and urlsplit(target).scheme not in ("https", "http"):
        raise click.UsageError("the portal URL must be https://... (http:// for a local test)")
    plan = plan_for(
        sys.platform,
        Path(platformdirs.user_desktop_dir()),
        target or "",
        Path(platformdirs.user_data_dir("cardkit")) / "portal-window",
        find_browser(sys.platform),
        name or DEFAULT_NAME,
    )
    if uninstall:
        found = plan.uninstall()
        click.echo(f"{plan.remove}: {'removed' if found else 'no shortcut there'}")
        return
    if dry_run:
        for file in plan.files:
            click.echo(f"# {file.path}\n{file.text}")
        if plan.activate:
            click.echo(f"# then: {' '.join(plan.activate)}")
        return
    plan.install()
    how = f"an app window of {plan.browser}" if plan.browser else "the default browser"
    click.echo(f"wrote {plan.remove}: opens {target} in {how}")


@click.group("bridge")
def bridge_group() -> None:
    """Talk to a running agent's bridge, as a portal page would."""


@bridge_group.command("call")
@click.argument("method", type=click.Choice(["GET", "POST"]))
@click.argument("path")
@click.option("--origin", required=True, help="the Origin header to send")
@click.option("--data", default=None, help="JSON body for POST")
@click.option("--port", type=int, default=None)
def bridge_call(method: str, path: str, origin: str, data: str | None, port: int | None) -> None:
    body: dict[str, Any] | None = json.loads(data) if data else ({} if method == "POST" else None)
    client = BridgeClient(origin, port=port or AgentConfig.load().port)
    try:
        click.echo(json.dumps(client.request(method, path, body), indent=2, ensure_ascii=False))
    except BridgeCallError as exc:
        click.echo(json.dumps(exc.problem, indent=2, ensure_ascii=False))
        sys.exit(ExitCode.FAILURE)


@bridge_group.command("client-js")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="write cardkit-bridge-<version>.js into this folder of your portal's static files",
)
@click.option("--url", help="the URL your pages load it from, for the import map printed")
@json_option
def bridge_client_js(out: Path | None, url: str | None, as_json: bool) -> None:
    """The browser client for portals to host themselves, with its integrity hash.

    Portals never load script from the bridge's port: any local program could hold it."""
    from cardkit.pcsc_bridge.hosted import hosted_client

    client = hosted_client()
    written = client.write(out) if out is not None else None
    where = url or f"/js/{client.filename}"
    if as_json:
        emit_json(
            {
                "filename": client.filename,
                "integrity": client.integrity,
                "written": str(written) if written else None,
                "import_map": client.import_map(where),
            }
        )
        return
    if written is not None:
        click.echo(f"wrote {written}")
    click.echo(f"integrity: {client.integrity}")
    click.echo(client.import_map(where))
