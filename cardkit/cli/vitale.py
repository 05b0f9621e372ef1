"""``cardkit vitale``: the patient's card."""

from __future__ import annotations

import click
from rich.table import Table

from cardkit.cli._base import State, card_command, emit_json, json_option, reader_option
from cardkit.vitale.source import PcscVitaleSource


@click.group()
def vitale() -> None:
    """Vitale card (the patient's card)."""


def _french_date(text: str | None) -> str:
    """DD/MM/YYYY as the card's users read it; "lunar" dates (day 00, 30/02...) stay as
    they are on the card."""
    if text and len(text) == 8 and text.isdigit():
        return f"{text[6:]}/{text[4:6]}/{text[:4]}"
    return text or "-"


@vitale.command("read")
@reader_option
@click.option("--show-nir", is_flag=True, help="print full NIRs (masked by default)")
@json_option
@click.pass_obj
@card_command
def vitale_read(state: State, reader: str | None, show_nir: bool, as_json: bool) -> None:
    """The people on the card: insured person first, then beneficiaries."""
    data = PcscVitaleSource(state.backend).read(reader)
    if as_json:
        emit_json(data.to_dict(show_nir=show_nir))
        return
    title = data.card + (f", valid from {data.valid_from}" if data.valid_from else "")
    table = Table(title=title)
    for column in ("", "Nom", "Prénom", "Né(e) le", "NIR", "Régime / caisse"):
        table.add_column(column, no_wrap=column in ("NIR", "Né(e) le"))
    for person in data.beneficiaries:
        insurance = person.insurance
        table.add_row(
            "assuré(e)" if person.insured else "ayant droit",
            person.surname,
            person.first_name,
            _french_date(person.birth_date),
            person.nir.formatted() if show_nir else person.nir.masked(),
            f"{insurance.scheme or '-'} / {insurance.caisse or '-'}" if insurance else "-",
        )
    state.console.print(table)
