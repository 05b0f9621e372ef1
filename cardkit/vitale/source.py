"""Where Vitale data comes from.

cardkit reads Vitale cards directly over PC/SC (:class:`PcscVitaleSource`, the default). In
production, practice software reads them through the SESAM-Vitale components, which are
proprietary and licensed: an adapter for them implements :class:`VitaleSource` (for instance
by calling the vendor's API) and is registered by the integrator; cardkit ships none, rather
than a stub that pretends to work. ``cardkit doctor`` reports which sources are available.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cardkit.atr import CardFamily
from cardkit.errors import CardkitError
from cardkit.transport import ReaderBackend
from cardkit.transport.readers import resolve_reader
from cardkit.vitale.card import VitaleCardData, open_vitale


@dataclass(frozen=True, slots=True)
class SourceStatus:
    available: bool
    detail: str


class VitaleSource(Protocol):
    """Anything that can read the patient's card."""

    name: str

    def status(self) -> SourceStatus: ...

    def read(self, reader: str | None = None) -> VitaleCardData:
        """Read the card in ``reader``, or the only Vitale card present."""
        ...


class PcscVitaleSource:
    """Vitale cards read by cardkit itself, through PC/SC."""

    name = "pcsc"

    def __init__(self, backend: ReaderBackend) -> None:
        self.backend = backend

    def status(self) -> SourceStatus:
        try:
            readers = self.backend.readers()
        except CardkitError as exc:
            return SourceStatus(False, f"PC/SC unavailable: {exc}")
        return SourceStatus(bool(readers), f"{len(readers)} reader(s)")

    def read(self, reader: str | None = None) -> VitaleCardData:
        name = resolve_reader(self.backend, reader, family=CardFamily.VITALE)
        with open_vitale(self.backend, name) as card:
            return card.read()
