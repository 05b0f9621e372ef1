"""The ``cardkit`` command, built in this one place.

The library's own command groups are listed in :data:`COMMANDS`. Applications built on the
library (the workstation agent, the mock portal) contribute theirs through the
``cardkit.commands`` entry-point group declared in ``pyproject.toml``: the library never
imports them, and an installation without them simply has fewer commands.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points

import click

from cardkit import __version__
from cardkit.cli._base import CardkitGroup, State, emit_json, json_option, reader_option
from cardkit.cli.certs import certs
from cardkit.cli.doctor import doctor
from cardkit.cli.info import info
from cardkit.cli.nir import nir
from cardkit.cli.pin import pin
from cardkit.cli.readers import readers
from cardkit.cli.sign import sign
from cardkit.cli.token import token_group
from cardkit.cli.vitale import vitale

__all__ = [
    "COMMANDS",
    "State",
    "build_cli",
    "cli",
    "emit_json",
    "json_option",
    "main",
    "reader_option",
]

log = logging.getLogger(__name__)

#: The library's commands, in the order ``--help`` lists them.
COMMANDS: tuple[click.Command, ...] = (
    readers,
    info,
    pin,
    certs,
    sign,
    token_group,
    nir,
    vitale,
    doctor,
)
ENTRY_POINT_GROUP = "cardkit.commands"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _configure_logging(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    state = ctx.ensure_object(State)
    state.log_level = value
    if value is not None:
        logging.basicConfig(
            level=value, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
        )


def _extensions() -> list[click.Command]:
    """Command groups other installed packages register; one that fails to load (an extra
    not installed) is left out, with the reason at debug level."""
    found: list[click.Command] = []
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            command = entry.load()
        except ImportError as exc:
            log.debug("command %s not available: %s", entry.name, exc)
            continue
        if isinstance(command, click.Command):
            found.append(command)
    return found


def build_cli(extra: tuple[click.Command, ...] | None = None) -> click.Group:
    """The command tree: the library's commands, then the registered applications'."""

    @click.group(cls=CardkitGroup)
    @click.version_option(__version__, prog_name="cardkit")
    @click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        callback=_configure_logging,
        expose_value=False,
        is_eager=True,
        help="log to standard error at this level (default: warnings only)",
    )
    @click.pass_context
    def root(ctx: click.Context) -> None:
        """French health smart cards (CPS, CPE, Vitale) from the command line."""
        ctx.ensure_object(State)

    for command in (*COMMANDS, *(_extensions() if extra is None else extra)):
        root.add_command(command)
    return root


cli = build_cli()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cardkit`` console script and of ``python -m cardkit``."""
    cli.main(args=sys.argv[1:] if argv is None else argv, prog_name="cardkit", obj=State())
