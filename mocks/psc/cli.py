"""``cardkit psc run``: the mock Pro Santé Connect provider, for portal developers."""

from __future__ import annotations

import click

from cardkit.pcsc_bridge.contract import DEFAULT_PORT
from mocks.psc.model import REALM, Client
from mocks.psc.provider import AccessLog, ProviderConfig, create_provider


@click.group("psc")
def psc_group() -> None:
    """A mock Pro Santé Connect provider (OpenID Connect, CPS card login)."""


def _client(spec: str) -> Client:
    client_id, _, rest = spec.partition(":")
    secret, _, redirect = rest.partition(":")
    if not (client_id and secret and redirect.startswith(("https://", "http://"))):
        raise click.BadParameter("CLIENT_ID:SECRET:REDIRECT_URI", param_hint="--client")
    return Client(client_id, secret, [redirect])


@psc_group.command("run")
@click.option("--port", type=int, default=8600, show_default=True)
@click.option(
    "--base",
    help="the provider's base URL as portals and browsers reach it (default: "
    "http://127.0.0.1:PORT); the issuer is BASE" + REALM,
)
@click.option(
    "--client",
    "clients",
    multiple=True,
    default=("portail:secret-portail:http://localhost:8000/psc/retour",),
    show_default=True,
    help="a portal registered here, CLIENT_ID:SECRET:REDIRECT_URI (repeatable)",
)
@click.option("--bridge-port", type=int, default=DEFAULT_PORT, show_default=True)
@click.option("--redis", "redis_url", help="redis://... to share the state between processes")
@click.option("--token-lifetime", type=int, default=120, show_default=True, help="seconds")
@click.option("--refresh-lifetime", type=int, default=1800, show_default=True, help="seconds")
def psc_run(  # noqa: PLR0917 - click passes the options
    port: int,
    base: str | None,
    clients: tuple[str, ...],
    bridge_port: int,
    redis_url: str | None,
    token_lifetime: int,
    refresh_lifetime: int,
) -> None:
    """Serve the provider on loopback until stopped."""
    from werkzeug.serving import run_simple

    config = ProviderConfig(
        base or f"http://127.0.0.1:{port}",
        [_client(c) for c in clients],
        bridge_port=bridge_port,
        redis_url=redis_url,
        access_token_lifetime=token_lifetime,
        id_token_lifetime=token_lifetime,
        refresh_token_lifetime=refresh_lifetime,
    )
    click.echo(f"mock PSC provider: issuer {config.issuer.rstrip('/')}{REALM}", err=True)
    run_simple("127.0.0.1", port, create_provider(config), threaded=True, request_handler=AccessLog)
