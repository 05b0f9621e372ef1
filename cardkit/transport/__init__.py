"""Transports: how bytes reach a card. Only :mod:`cardkit.transport.pcsc` imports pyscard."""

from __future__ import annotations

from cardkit.transport.base import (
    CardConnection,
    CardEvent,
    CardRemoved,
    CardReset,
    EventKind,
    NoCard,
    NoSuchReader,
    ReaderAmbiguous,
    ReaderBackend,
    ReaderBusy,
    ReaderState,
    ReaderTimeout,
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
    "NoSuchReader",
    "ReaderAmbiguous",
    "ReaderBackend",
    "ReaderBusy",
    "ReaderMonitor",
    "ReaderState",
    "ReaderTimeout",
    "ReaderUnavailable",
    "TransportError",
    "TransportTimeout",
    "diff_states",
    "pcsc_backend",
]


def pcsc_backend() -> ReaderBackend:
    """The system's PC/SC readers (imports pyscard on first use only)."""
    from cardkit.transport.pcsc import PcscBackend

    return PcscBackend()
