"""``cardkit pin``: tries left, change, unblock, on the card's own face."""

from __future__ import annotations

import click

from cardkit.cli._base import (
    State,
    card_command,
    emit_json,
    json_option,
    pin_stdin_option,
    read_secret,
    reader_option,
)
from cardkit.cps.card import open_cps
from cardkit.transport.readers import resolve_reader


@click.group()
def pin() -> None:
    """PIN of a CPS/CPE: tries left, change, unblock with the PUK."""


@pin.command("status")
@reader_option
@json_option
@click.pass_obj
@card_command
def pin_status(state: State, reader: str | None, as_json: bool) -> None:
    """Tries left, read without presenting the PIN (no try is spent)."""
    with open_cps(state.backend, resolve_reader(state.backend, reader)) as card:
        status = card.pin_status()
    if as_json:
        emit_json(status.to_dict())
    elif status.blocked:
        click.echo("PIN blocked: unblock it with the PUK (cardkit pin unblock)")
    elif status.verified:
        click.echo("PIN verified in this session")
    else:
        click.echo(f"PIN: {status.tries_left} tries left")


@pin.command("change")
@reader_option
@pin_stdin_option
@json_option
@click.pass_obj
@card_command
def pin_change(state: State, reader: str | None, pin_stdin: bool, as_json: bool) -> None:
    """Change the PIN (old PIN, then new PIN)."""
    old = read_secret("current PIN", pin_stdin)
    new = read_secret("new PIN", pin_stdin, confirm=True)
    with open_cps(state.backend, resolve_reader(state.backend, reader)) as card:
        card.change_pin(old, new)
    emit_json({"changed": True}) if as_json else click.echo("PIN changed")


@pin.command("unblock")
@reader_option
@pin_stdin_option
@json_option
@click.pass_obj
@card_command
def pin_unblock(state: State, reader: str | None, pin_stdin: bool, as_json: bool) -> None:
    """Unblock the PIN with the PUK (PUK, then the new PIN)."""
    puk = read_secret("PUK", pin_stdin)
    new = read_secret("new PIN", pin_stdin, confirm=True)
    with open_cps(state.backend, resolve_reader(state.backend, reader)) as card:
        card.unblock_pin(puk, new)
    emit_json({"unblocked": True}) if as_json else click.echo("PIN unblocked and changed")
