"""``cardkit portal run|accounts``: the mock amelipro-like portal, for portal developers and
the demo. Registered through the ``cardkit.commands`` entry points."""

from __future__ import annotations

import json
from typing import Any

import click

from cardkit.auth import RevocationPolicy
from cardkit.pcsc_bridge.contract import DEFAULT_PORT


@click.group("portal")
def portal_group() -> None:
    """The mock portal (demonstration and integration tests only)."""


def _check_store(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from cardkit.portal import parse_store

    try:
        parse_store(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


store_option = click.option(
    "--store",
    default="sqlite:portal.db",
    show_default=True,
    callback=_check_store,
    help="sessions, login challenges and lockout: sqlite:PATH (records in the same file) or "
    "redis://HOST:PORT/DB (shared by several portal processes; records in --records)",
)
records_option = click.option(
    "--records",
    default="portal.db",
    show_default=True,
    help="SQLite file of accounts, events and links when --store is Redis",
)


def _portal(store: str, records: str, **options: Any) -> Any:
    from mocks.portal.app import PortalConfig, create_portal

    try:
        return create_portal(PortalConfig(store=store, records=records, **options))
    except Exception as exc:  # a Redis that does not answer, a file that cannot be opened
        raise click.ClickException(f"cannot open the store {store!r}: {exc}") from None


@portal_group.command("run")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--bridge-port", type=int, default=DEFAULT_PORT, show_default=True)
@click.option(
    "--origin",
    default=None,
    help="the portal's public origin (default http://localhost:PORT); several instances "
    "behind one address share it",
)
@store_option
@records_option
@click.option("--seed", type=click.Choice(["demo", "none"]), default="demo", show_default=True)
@click.option(
    "--revocation",
    type=click.Choice([p.value for p in RevocationPolicy]),
    default="off",
    show_default=True,
    help="the TEST PKI's responders run only in the tests; a real portal uses hard-fail",
)
@click.option(
    "--session-follows-card",
    is_flag=True,
    help="end a CPS session when its card leaves the reader",
)
@click.option(
    "--psc",
    "psc_issuer",
    metavar="ISSUER",
    help="offer Pro Santé Connect with this provider (e.g. cardkit psc run's "
    "http://127.0.0.1:8600/auth/realms/esante-wallet), as client 'portail'",
)
@click.option("--psc-secret", default="secret-portail", show_default=True)
def portal_run(
    *,
    port: int,
    bridge_port: int,
    origin: str | None,
    store: str,
    records: str,
    seed: str,
    revocation: str,
    session_follows_card: bool,
    psc_issuer: str | None,
    psc_secret: str,
) -> None:
    """Serve the portal on http://localhost:PORT (a loopback origin the bridge accepts)."""
    import uvicorn

    from mocks.portal.app import seed_demo

    origin = origin or f"http://localhost:{port}"
    app = _portal(
        store,
        records,
        origin=origin,
        bridge_port=bridge_port,
        revocation=RevocationPolicy(revocation),
        session_follows_card=session_follows_card,
        demo=seed == "demo",
        psc_issuer=psc_issuer,
        psc_client_secret=psc_secret,
    )
    if seed == "demo":
        seed_demo(app.state.site.doors)
    click.echo(f"portal on {origin}/identification (bridge port {bridge_port})", err=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@portal_group.command("accounts")
@store_option
@records_option
@click.option("--json", "as_json", is_flag=True)
def portal_accounts(store: str, records: str, as_json: bool) -> None:
    """The demo accounts with their identifiers and demo password, and the demo's clé de
    sécurité (demo data only)."""
    from mocks.portal.app import seed_demo
    from mocks.portal.demo import ACCOUNTS, DEMO_PASSWORD, DEMO_SECURITY_KEY

    demo = {row[3] or row[4] for row in ACCOUNTS}

    app = _portal(store, records)
    seed_demo(app.state.site.doors)
    rows = [
        {
            "name": a.display_name,
            "kind": a.kind,
            "email": a.email,
            "am_number": a.am_number,
            "finess": a.finess,
            "card": a.card_key,
            "password": DEMO_PASSWORD if (a.am_number or a.finess) in demo else None,
        }
        for a in app.state.site.stores.accounts.all()
    ]
    nir, iban = DEMO_SECURITY_KEY
    key = {"am_number": "751234567", "nir": nir, "iban_last4": iban}
    if as_json:
        click.echo(
            json.dumps({"accounts": rows, "security_key": key}, indent=2, ensure_ascii=False)
        )
        return
    for row in rows:
        ident = row["am_number"] or row["finess"] or ""
        click.echo(f"{row['name']:28} {row['email'] or '-':34} {ident:10} {row['card'] or '-'}")
    click.echo(f"mot de passe de démonstration : {DEMO_PASSWORD}")
    click.echo(f"clé de sécurité (N° AM {key['am_number']}) : NIR {nir}, IBAN …{iban}")
