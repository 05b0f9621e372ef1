"""What the commands that use the card's key through PKCS#11 share (``sign``, ``token``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
from cryptography.hazmat.primitives.serialization import Encoding

from cardkit.algorithms import Algorithm
from cardkit.cli._base import State
from cardkit.cps.card import open_cps
from cardkit.pkcs11.discovery import find_module
from cardkit.transport.deadline import card_timeout
from cardkit.transport.readers import resolve_reader
from cardkit.worker import CardWorker

algorithm_option = click.option(
    "--mechanism",
    type=click.Choice([a.value for a in Algorithm]),
    default="RS256",
    show_default=True,
)
module_option = click.option("--module", "module_path", help="PKCS#11 module (default: discovery)")


@dataclass(frozen=True)
class Pkcs11Card:
    """The card a PKCS#11 command works on, and how: its reader, the module, and the
    certificate the card's own face carries (it picks the PKCS#11 key)."""

    reader: str
    module: str
    certificate: bytes

    def run(self, job: str, **arguments: Any) -> Any:
        """A job of :mod:`cardkit.jobs` in a worker process: a PKCS#11 module that waits on a
        mute card keeps Python's GIL, so only a process can be abandoned at the deadline."""
        worker = CardWorker("cardkit-pkcs11")
        try:
            return worker.run(
                job,
                self.reader,
                limit=2 * card_timeout(),
                module_path=self.module,
                certificate=self.certificate,
                **arguments,
            )
        finally:
            worker.stop()


def pkcs11_card(state: State, reader: str | None, module_path: str | None) -> Pkcs11Card:
    name = resolve_reader(state.backend, reader)
    with open_cps(state.backend, name) as card:
        expected = card.certificates().authentication
    return Pkcs11Card(name, str(find_module(module_path).path), expected.public_bytes(Encoding.DER))
