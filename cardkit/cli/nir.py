"""``cardkit nir``: check a social security number as typed by a person."""

from __future__ import annotations

import sys
from typing import Any

import click

from cardkit.cli._base import emit_json, json_option
from cardkit.errors import ExitCode
from cardkit.vitale.nir import Nir, NirError


@click.group()
def nir() -> None:
    """NIR (social security number) tools."""


@nir.command("check")
@click.argument("number", nargs=-1, required=True)
@click.option("--strict", is_flag=True, help="CNAM rules for certified numbers only")
@json_option
def nir_check(number: tuple[str, ...], strict: bool, as_json: bool) -> None:
    """Check a NIR (13 or 15 characters, spaces allowed). Exit 0 if valid, 1 if not."""
    try:
        parsed = Nir.parse(" ".join(number), strict=strict)
    except NirError as exc:
        if as_json:
            error: dict[str, Any] = {"code": exc.code, "message": str(exc), **exc.details()}
            emit_json({"valid": False, "error": error})
        else:
            click.echo(f"invalid: {exc}")
        sys.exit(ExitCode.FAILURE)
    if as_json:
        emit_json({"valid": True, **parsed.to_dict()})
        return
    kind = " (provisional number, NNP)" if parsed.provisional else ""
    click.echo(f"valid: {parsed.formatted()}{kind}")
