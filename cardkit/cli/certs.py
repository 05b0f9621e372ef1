"""``cardkit certs``: the card's certificates, read from its own face (no PIN)."""

from __future__ import annotations

import sys

import click
from cryptography.hazmat.primitives import serialization

from cardkit.cli._base import State, card_command, emit_json, json_option, reader_option
from cardkit.cps.card import open_cps
from cardkit.identity import certificate_summary
from cardkit.transport.readers import resolve_reader


@click.command()
@reader_option
@click.option("--pem", "fmt", flag_value="pem", help="print the certificates as PEM")
@click.option("--der", "fmt", flag_value="der", help="write one certificate as DER to stdout")
@click.option(
    "--which",
    type=click.Choice(["authentication", "signature"]),
    default=None,
    help="only this certificate (--der defaults to authentication)",
)
@json_option
@click.pass_obj
@card_command
def certs(
    state: State, reader: str | None, fmt: str | None, which: str | None, as_json: bool
) -> None:
    """The card's certificates: summary, PEM or DER."""
    with open_cps(state.backend, resolve_reader(state.backend, reader)) as card:
        found = card.certificates()
    chosen = {"authentication": found.authentication, "signature": found.signature}
    if which:
        chosen = {which: chosen[which]}
    if fmt == "der":
        cert = chosen.get(which or "authentication")
        if cert is None:
            raise click.UsageError("the card has no such certificate")
        if sys.stdout.isatty():
            raise click.UsageError("--der writes binary: redirect standard output to a file")
        sys.stdout.buffer.write(cert.public_bytes(serialization.Encoding.DER))
        return
    if fmt == "pem":
        for cert in chosen.values():
            if cert is not None:
                click.echo(cert.public_bytes(serialization.Encoding.PEM).decode(), nl=False)
        return
    summary = {usage: certificate_summary(c) if c else None for usage, c in chosen.items()}
    if as_json:
        emit_json(summary)
        return
    for usage, details in summary.items():
        if details:
            click.echo(f"{usage}: {details['subject']}")
            click.echo(f"  issuer  {details['issuer']}")
            click.echo(f"  valid   {details['not_before']} .. {details['not_after']}")
            click.echo(f"  sha256  {details['sha256']}")
