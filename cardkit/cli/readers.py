"""``cardkit readers``: the readers the PC/SC service sees, and the card in each."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from cardkit.atr import identify
from cardkit.cli._base import State, emit_json, json_option


@click.command()
@json_option
@click.pass_obj
def readers(state: State, as_json: bool) -> None:
    """List readers, whether they hold a card, and which card."""
    rows: list[dict[str, Any]] = []
    for index, (name, reader) in enumerate(state.backend.states().items()):
        identity = identify(reader.atr) if reader.atr else None
        rows.append(
            {
                "index": index,
                "name": name,
                "card_present": reader.card_present,
                "atr": reader.atr.hex().upper() if reader.atr else None,
                "card": identity.to_dict() if identity else None,
            }
        )
    if as_json:
        emit_json({"readers": rows})
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
