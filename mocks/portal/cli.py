"""``cardkit portal run|accounts``: the mock amelipro-like portal, for portal developers and
the demo. Registered through the ``cardkit.commands`` entry points."""

from __future__ import annotations

import json

import click

from cardkit.auth import RevocationPolicy


@click.group("portal")
def portal_group() -> None:
    """The mock portal (demonstration and integration tests only)."""


store_option = click.option(
    "--store",
    "data",
    default="portal.db",
    show_default=True,
    help="SQLite file for accounts, sessions, lockout, events (sqlite:PATH or PATH)",
)


@portal_group.command("run")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--bridge-port", type=int, default=38470, show_default=True)
@store_option
@click.option("--seed", type=click.Choice(["demo", "none"]), default="demo", show_default=True)
@click.option(
    "--revocation",
    type=click.Choice([p.value for p in RevocationPolicy]),
    default="off",
    show_default=True,
    help="the TEST PKI's responders run only in the tests; a real portal uses hard-fail",
)
def portal_run(port: int, bridge_port: int, data: str, seed: str, revocation: str) -> None:
    """Serve the portal on http://localhost:PORT (a loopback origin the bridge accepts)."""
    import uvicorn

    from mocks.portal.app import PortalConfig, create_portal, seed_demo

    origin = f"http://localhost:{port}"
    config = PortalConfig(
        origin=origin,
        bridge_port=bridge_port,
        data_path=data.removeprefix("sqlite:"),
        revocation=RevocationPolicy(revocation),
    )
    app = create_portal(config)
    if seed == "demo":
        seed_demo(app.state.portal)
    click.echo(f"portal on {origin}/identification (bridge port {bridge_port})")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@portal_group.command("accounts")
@store_option
@click.option("--json", "as_json", is_flag=True)
def portal_accounts(data: str, as_json: bool) -> None:
    """The demo accounts with their identifiers and demo password (demo data only)."""
    from mocks.portal.app import DEMO_PASSWORD, PortalConfig, create_portal, seed_demo

    app = create_portal(PortalConfig(data_path=data.removeprefix("sqlite:")))
    seed_demo(app.state.portal)
    rows = [
        {
            "name": a.display_name,
            "kind": a.kind,
            "email": a.email,
            "am_number": a.am_number,
            "finess": a.finess,
            "card": a.card_key,
            "password": DEMO_PASSWORD,
        }
        for a in app.state.portal.data.all()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        ident = row["am_number"] or row["finess"]
        click.echo(f"{row['name']:28} {row['email']:34} {ident:10} {row['card'] or '-'}")
    click.echo(f"mot de passe de démonstration : {DEMO_PASSWORD}")
