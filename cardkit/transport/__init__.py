"""Transports: how bytes reach a card. Only :mod:`cardkit.transport.pcsc` imports pyscard."""

from __future__ import annotations

from cardkit.transport.base import (
    CardConnection,
    CardEvent,
    CardRemoved,
    CardReset,
    EventKind,
    NoCard,
    ReaderBackend,
    ReaderBusy,
    ReaderState,
    ReaderUnavailable,
    TransportError,
    TransportTimeout,
    diff_states,
)
from cardkit.transport.monitor import ReaderMonitor

__all__ = [
    "CardConnection",
    "CardEvent",
    "CardRemoved",
    "CardReset",
    "EventKind",
    "NoCard",
    "ReaderBackend",
    "ReaderBusy",
    "ReaderMonitor",
    "ReaderState",
    "ReaderUnavailable",
    "TransportError",
    "TransportTimeout",
    "diff_states",
    "pcsc_backend",
    "select_reader",
]


def pcsc_backend() -> ReaderBackend:
    """The system's PC/SC readers (imports pyscard on first use only)."""
    from cardkit.transport.pcsc import PcscBackend

    return PcscBackend()


def select_reader(backend: ReaderBackend, spec: str | None, *, need_card: bool = True) -> str:
    """Resolve a user's reader choice: an index, an exact name, or a unique substring.

    With no choice, the only reader holding a card (or the only reader) is taken; anything
    ambiguous is an error that names the candidates, rather than a guess.
    """
    states = backend.states()
    names = list(states)
    if not names:
        raise ReaderUnavailable("no reader found (is pcscd running and a reader plugged in?)")
    if spec is not None:
        if spec.isdigit() and int(spec) < len(names):
            return names[int(spec)]
        if spec in states:
            return spec
        matches = [n for n in names if spec.lower() in n.lower()]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ReaderUnavailable(f"no reader matches {spec!r}; readers: {', '.join(names)}")
        raise ReaderUnavailable(f"{spec!r} matches several readers: {', '.join(matches)}")
    with_card = [n for n, s in states.items() if s.card_present]
    if len(with_card) == 1:
        return with_card[0]
    if not with_card:
        if need_card:
            raise NoCard(f"no card in any reader ({', '.join(names)})")
        return names[0]
    raise ReaderUnavailable(f"several readers hold a card, choose one: {', '.join(with_card)}")
