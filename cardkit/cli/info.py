"""``cardkit info``: one card in detail (ATR, identification; for a CPS/CPE its holder,
serial, PIN tries and certificates)."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from cardkit.atr import MIDDLEWARE_NAMES, Atr, CardFamily, identify
from cardkit.cli._base import State, card_command, emit_json, json_option, reader_option
from cardkit.cps import CardType
from cardkit.cps.card import open_cps
from cardkit.errors import CardkitError
from cardkit.identity import certificate_summary
from cardkit.transport import ReaderBackend
from cardkit.transport.readers import open_card, resolve_reader


def cps_details(backend: ReaderBackend, reader: str) -> dict[str, Any]:
    """Identity, serial, PIN tries and certificates; an error is reported, not raised, since
    the ATR part of ``info`` is still worth showing."""
    try:
        with open_cps(backend, reader) as card:
            certs = card.certificates()
            return {
                "identity": card.identity().to_dict(),
                "serial": card.serial(),
                "pin": card.pin_status().to_dict(),
                "certificates": {
                    "authentication": certificate_summary(certs.authentication),
                    "signature": certificate_summary(certs.signature) if certs.signature else None,
                },
            }
    except CardkitError as exc:
        return {"error": {"code": exc.code, "message": str(exc)}}


@click.command()
@reader_option
@json_option
@click.pass_obj
@card_command
def info(state: State, reader: str | None, as_json: bool) -> None:
    """Details of the card in a reader: ATR fields and identification."""
    name = resolve_reader(state.backend, reader)
    with open_card(state.backend, name) as connection:
        raw = connection.atr
        protocol = connection.protocol
    identity = identify(raw)
    data: dict[str, Any] = {
        "reader": name,
        "protocol": protocol,
        "atr": Atr.describe(raw),
        "card": identity.to_dict(),
    }
    if identity.family is CardFamily.CPS:
        data["cps"] = cps_details(state.backend, name)
    if as_json:
        emit_json(data)
        return
    state.console.print(_info_table(name, raw, protocol, data))


def _info_table(name: str, raw: bytes, protocol: str, data: dict[str, Any]) -> Table:
    table = Table(show_header=False, title=f"Card in {name}")
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("Card", data["card"]["name"])
    if data["card"]["source"]:
        table.add_row("Identified by", data["card"]["source"])
    if data["card"]["middleware"]:
        names = [MIDDLEWARE_NAMES[kind] for kind in data["card"]["middleware"]]
        table.add_row("Middleware", " or ".join(names))
    table.add_row("ATR", raw.hex(" ").upper())
    atr = data["atr"]
    if atr["valid"]:
        table.add_row("Protocols", ", ".join(atr["protocols"]) + f" (active {protocol})")
        table.add_row("Convention", atr["convention"])
        table.add_row("Historical bytes", bytes.fromhex(atr["historical"]).hex(" ").upper())
    else:
        table.add_row("ATR problem", atr["error"])
    cps = data.get("cps")
    if cps is not None and "error" in cps:
        table.add_row("Card data", f"unreadable: {cps['error']['message']}")
    elif cps is not None:
        who = cps["identity"]
        table.add_row("Card type", CardType(who["card_type"]).label)
        table.add_row("Serial", cps["serial"])
        holder = " ".join(x for x in (who["given_name"], who["surname"]) if x)
        table.add_row("Holder", holder or who["structure"] or "-")
        if who["structure"] and holder:
            table.add_row("Structure", who["structure"])
        table.add_row("Profession", who["profession"] or "-")
        table.add_row(who["identifier_type"], who["identifier"])
        pin = cps["pin"]
        table.add_row("PIN", "blocked" if pin["blocked"] else f"{pin['tries_left']} tries left")
        for usage, cert in cps["certificates"].items():
            if cert:
                table.add_row(
                    f"Certificate ({usage})",
                    f"{cert['subject']}\nissuer {cert['issuer']}\n"
                    f"valid {cert['not_before'][:10]} to {cert['not_after'][:10]}",
                )
    return table
