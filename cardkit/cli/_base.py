"""What every command shares: the state object, common options, JSON output, secrets.

Errors are not handled here: :class:`CardkitGroup` maps any :class:`CardkitError` to its
message and the exit code the error class itself declares (see :mod:`cardkit.errors`).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from cardkit.errors import CardkitError
from cardkit.i18n import detect_language, translator
from cardkit.transport import ReaderBackend, pcsc_backend
from cardkit.transport.deadline import guarded

F = TypeVar("F", bound=Callable[..., Any])


class State:
    """What every command needs: the backend (injectable for tests) and output mode."""

    def __init__(self, backend_factory: Callable[[], ReaderBackend] = pcsc_backend) -> None:
        self._factory = backend_factory
        self._backend: ReaderBackend | None = None
        self.json = False
        self.log_level: str | None = None
        self.console = Console()

    @property
    def backend(self) -> ReaderBackend:
        if self._backend is None:
            self._backend = self._factory()
        return self._backend


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


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
pin_stdin_option = click.option(
    "--pin-stdin", is_flag=True, help="read PIN/PUK lines from standard input instead of a prompt"
)


def read_secret(what: str, from_stdin: bool, *, confirm: bool = False) -> str:
    """A PIN or PUK: one line of standard input with ``--pin-stdin``, else a hidden TTY
    prompt. Never a command-line argument (it would show in ``ps`` and shell history)."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.UsageError(f"--pin-stdin: no line for the {what} on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise click.UsageError(f"no terminal to ask the {what}: use --pin-stdin")
    return str(click.prompt(what, hide_input=True, confirmation_prompt=confirm))


def card_command(function: F) -> F:
    """A command that talks to a card: it runs under the card deadline, so a card that stops
    answering ends it with ``reader_timeout`` (see :mod:`cardkit.transport.deadline`)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return guarded(lambda: function(*args, **kwargs))

    return wrapper  # type: ignore[return-value]


def fail(ctx: click.Context, exc: CardkitError) -> None:
    """Report ``exc`` as the command's outcome and exit with the error's own exit code; the
    error's advice, if it has one, follows in the user's language."""
    state = ctx.find_object(State)
    if state is not None and state.json:
        emit_json({"error": {"code": exc.code, "message": str(exc), **exc.details()}})
    else:
        click.echo(f"cardkit: {exc}", err=True)
        if exc.hint:
            click.echo(translator(detect_language()).gettext(exc.hint), err=True)
    ctx.exit(int(exc.exit_code))


class CardkitGroup(click.Group):
    """Maps cardkit errors to a message and an exit code, whoever invokes the command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CardkitError as exc:
            fail(ctx, exc)
