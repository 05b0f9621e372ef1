"""The ``cardkit`` command. Thin: it opens things, calls the library, and prints.

Errors are mapped to messages and exit codes in one place (:func:`main`); ``--json`` output
is a stable contract documented in the README (keys are only ever added).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cardkit import __version__
from cardkit.apdu import ApduError
from cardkit.atr import Atr, AtrError, CardIdentity, identify
from cardkit.errors import CardkitError
from cardkit.transport import (
    NoCard,
    ReaderBackend,
    ReaderUnavailable,
    TransportError,
    pcsc_backend,
    select_reader,
)
from cardkit.transport.base import CardRemoved

#: Exit codes, stable for scripts: 0 ok, 1 failure, 2 usage, then by cause.
EXIT_FAILURE = 1
EXIT_NO_READER = 3
EXIT_NO_CARD = 4
EXIT_CARD_ERROR = 5

_EXIT_CODES: list[tuple[type[Exception], int]] = [
    (ReaderUnavailable, EXIT_NO_READER),
    (NoCard, EXIT_NO_CARD),
    (CardRemoved, EXIT_NO_CARD),
    (ApduError, EXIT_CARD_ERROR),
    (TransportError, EXIT_CARD_ERROR),
    (CardkitError, EXIT_FAILURE),
]


def exit_code_for(exc: CardkitError) -> int:
    return next(code for cls, code in _EXIT_CODES if isinstance(exc, cls))


class State:
    """What every command needs: the backend (injectable for tests) and output mode."""

    def __init__(self, backend_factory: Callable[[], ReaderBackend] = pcsc_backend) -> None:
        self._factory = backend_factory
        self._backend: ReaderBackend | None = None
        self.json = False
        self.console = Console()

    @property
    def backend(self) -> ReaderBackend:
        if self._backend is None:
            self._backend = self._factory()
        return self._backend


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _card_json(identity: CardIdentity) -> dict[str, Any]:
    return {
        "family": identity.family.value,
        "name": identity.name,
        "source": identity.source,
        "known": identity.known,
        "descriptions": list(identity.descriptions),
    }


def _atr_json(raw: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {"hex": raw.hex().upper()}
    try:
        atr = Atr.parse(raw)
    except AtrError as exc:
        out.update(valid=False, error=str(exc))
        return out
    out.update(
        valid=True,
        error=None,
        convention=atr.convention,
        protocols=[f"T={p}" for p in atr.protocols],
        fi=atr.fi,
        di=atr.di,
        max_clock_mhz=atr.max_clock_mhz,
        extra_guard_time=atr.extra_guard_time,
        historical=atr.historical.hex().upper(),
        tck=None if atr.tck is None else f"{atr.tck:02X}",
    )
    return out


def _remember_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    state = ctx.find_object(State)
    if state is not None and value:
        state.json = True
    return value


json_option = click.option(
    "--json", "as_json", is_flag=True, callback=_remember_json, help="machine-readable output"
)
reader_option = click.option(
    "--reader", "-r", "reader", metavar="R", help="reader index, name, or part of its name"
)


class _Group(click.Group):
    """Maps cardkit errors to a message and an exit code, whoever invokes the command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CardkitError as exc:
            state = ctx.find_object(State)
            as_json = state.json if state is not None else False
            if as_json:
                _emit_json({"error": {"code": exc.code, "message": str(exc)}})
            else:
                click.echo(f"cardkit: {exc}", err=True)
            ctx.exit(exit_code_for(exc))


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="cardkit")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """French health smart cards (CPS, CPE, Vitale) from the command line."""
    if ctx.obj is None:
        ctx.obj = State()


@cli.command()
@json_option
@click.pass_obj
def readers(state: State, as_json: bool) -> None:
    """List readers, whether they hold a card, and which card."""
    found = state.backend.states()
    rows: list[dict[str, Any]] = []
    for index, (name, reader) in enumerate(found.items()):
        identity = identify(reader.atr) if reader.atr else None
        rows.append(
            {
                "index": index,
                "name": name,
                "card_present": reader.card_present,
                "atr": reader.atr.hex().upper() if reader.atr else None,
                "card": _card_json(identity) if identity else None,
            }
        )
    if as_json:
        _emit_json({"readers": rows})
        return
    if not rows:
        state.console.print("No reader found.")
        return
    table = Table(title="Readers")
    for column in ("#", "Reader", "Card", "ATR"):
        table.add_column(column)
    for row in rows:
        card = row["card"]["name"] if row["card"] else "-"
        atr = bytes.fromhex(row["atr"]).hex(" ").upper() if row["atr"] else "-"
        table.add_row(str(row["index"]), row["name"], card, atr)
    state.console.print(table)


@cli.command()
@reader_option
@json_option
@click.pass_obj
def info(state: State, reader: str | None, as_json: bool) -> None:
    """Details of the card in a reader: ATR fields and identification."""
    name = select_reader(state.backend, reader)
    connection = state.backend.connect(name)
    try:
        raw = connection.atr
        protocol = connection.protocol
    finally:
        connection.disconnect()
    identity = identify(raw)
    data: dict[str, Any] = {
        "reader": name,
        "protocol": protocol,
        "atr": _atr_json(raw),
        "card": _card_json(identity),
    }
    if as_json:
        _emit_json(data)
        return
    table = Table(show_header=False, title=f"Card in {name}")
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("Card", identity.name)
    if identity.source:
        table.add_row("Identified by", identity.source)
    table.add_row("ATR", raw.hex(" ").upper())
    atr = data["atr"]
    if atr["valid"]:
        table.add_row("Protocols", ", ".join(atr["protocols"]) + f" (active {protocol})")
        table.add_row("Convention", atr["convention"])
        table.add_row("Historical bytes", bytes.fromhex(atr["historical"]).hex(" ").upper())
    else:
        table.add_row("ATR problem", atr["error"])
    state.console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cardkit`` console script."""
    cli.main(args=sys.argv[1:] if argv is None else argv, prog_name="cardkit", obj=State())
