"""The ``cardkit`` command with the agent's subcommands: ``agent run|status|origins|
install-service`` and ``bridge call``. The library's commands come from cardkit.cli; the
agent adds its own here, so that the library never imports the agent."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from agent.config import AgentConfig, config_path
from agent.consent import ConsentStore, open_consent_store
from cardkit.cli import State, cli, json_option
from cardkit.pcsc_bridge.client import BridgeCallError, BridgeClient


@cli.group("agent")
def agent_group() -> None:
    """The workstation agent and its localhost bridge."""


@agent_group.command("run")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--port", type=int, help="bridge port (default 38470)")
@click.option("--allow-origin", "origins", multiple=True, help="allowed portal origin (repeat)")
@click.option(
    "--pin-provider", help="auto | dialog | console | pinpad | scripted:FILE (tests, demos)"
)
@click.option("--module", "module_path", help="PKCS#11 module (default: discovery)")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def agent_run(  # noqa: PLR0917 - click passes options positionally
    config_file: Path | None,
    port: int | None,
    origins: tuple[str, ...],
    pin_provider: str | None,
    module_path: str | None,
    log_level: str | None,
) -> None:
    """Run the agent in the foreground (Ctrl-C or SIGTERM stops it)."""
    from agent.daemon import run

    config = AgentConfig.load(config_file).with_overrides(
        port=port,
        allowed_origins=list(origins) or None,
        pin_provider=pin_provider,
        pkcs11_module=module_path,
        log_level=log_level,
    )
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run(config)


@agent_group.command("status")
@json_option
def agent_status(as_json: bool) -> None:
    """Is the agent answering? (asks as the first allowed origin)"""
    config = AgentConfig.load()
    if not config.allowed_origins:
        raise click.UsageError(f"no allowed origin in {config_path()}: cannot ask the bridge")
    try:
        status = BridgeClient(config.allowed_origins[0], port=config.port, timeout=5).status()
    except BridgeCallError as exc:
        if as_json:
            click.echo(json.dumps({"running": False, "error": exc.code}))
        else:
            click.echo(f"agent not answering on port {config.port}: {exc}")
        sys.exit(1)
    click.echo(json.dumps(status, indent=2) if as_json else f"agent {status['version']} running")


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
        {"origin": o, "allowlisted": o in config.allowed_origins, **d}
        for o, d in sorted(decisions.items())
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "allowed" if row["allowed"] else "refused"
        click.echo(f"{row['origin']}  {state}  ({row['at']})")


@origins_group.command("allow")
@click.argument("origin")
def origins_allow(origin: str) -> None:
    from cardkit.auth.origin import normalize_origin

    _consent().record(normalize_origin(origin), True)
    click.echo(f"{origin}: allowed (it must also be in allowed_origins of {config_path()})")


@origins_group.command("revoke")
@click.argument("origin")
def origins_revoke(origin: str) -> None:
    from cardkit.auth.origin import normalize_origin

    found = _consent().revoke(normalize_origin(origin))
    click.echo(f"{origin}: {'revoked' if found else 'no decision recorded'}")


@agent_group.command("install-service")
def agent_install_service() -> None:
    """Install a systemd --user unit that starts the agent with the session (Linux)."""
    from agent.service_unit import UNIT_NAME, install

    path = install()
    click.echo(f"wrote {path}")
    click.echo(f"then: systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}")


@cli.group("bridge")
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
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=sys.argv[1:] if argv is None else argv, prog_name="cardkit", obj=State())
