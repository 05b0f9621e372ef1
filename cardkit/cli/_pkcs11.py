"""What the commands that use the card's key through PKCS#11 share (``sign``, ``token``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from cardkit.algorithms import Algorithm
from cardkit.cli._base import State
from cardkit.cps.card import open_cps, with_tries_left
from cardkit.errors import CardkitError, WrongPin
from cardkit.pkcs11 import Module, find_module
from cardkit.transport.readers import explain_failure, resolve_reader

algorithm_option = click.option(
    "--mechanism",
    type=click.Choice([a.value for a in Algorithm]),
    default="RS256",
    show_default=True,
)
module_option = click.option("--module", "module_path", help="PKCS#11 module (default: discovery)")


@contextlib.contextmanager
def pkcs11_card(
    state: State, reader: str | None, module_path: str | None
) -> Iterator[tuple[str, Module, Any]]:
    """(reader, module, the certificate the card's own face carries): the certificate guides
    the PKCS#11 key lookup; a wrong PIN is reported with the tries the card says are left."""
    name = resolve_reader(state.backend, reader)
    with open_cps(state.backend, name) as card:
        expected = card.certificates().authentication
    module = Module.load(Path(find_module(module_path).path))
    try:
        yield name, module, expected
    except WrongPin as exc:
        raise with_tries_left(exc, state.backend, name) from None
    except CardkitError as exc:
        raise explain_failure(exc, state.backend, name) from exc
