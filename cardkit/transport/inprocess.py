"""Readers and cards living in this process: the fast path for unit tests and demos.

A simulated card is anything with an ``atr``, a ``reset()`` and an ``execute(apdu) -> rapdu``
(``mocks.cards`` provides them); cardkit does not import the mocks, they plug in here.
Behaviour follows PC/SC where it matters to callers: transactions exclude other connections,
a removed card makes every later call on old connections raise :class:`CardRemoved`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from cardkit.transport.base import (
    FEATURE_VERIFY_PIN_DIRECT,
    CardConnection,
    CardRemoved,
    NoCard,
    ReaderBusy,
    ReaderState,
    ReaderUnavailable,
)
from cardkit.transport.deadline import exchange


class SimulatedCard(Protocol):
    """The card side of an in-process reader."""

    @property
    def atr(self) -> bytes: ...

    def reset(self) -> None: ...

    def execute(self, apdu: bytes) -> bytes: ...


class _Slot:
    def __init__(self, name: str) -> None:
        self.name = name
        self.card: SimulatedCard | None = None
        self.events = 0
        self.transaction_owner: object | None = None
        self.transaction_depth = 0
        self.exclusive_owner: object | None = None
        self.pinpad = False


class InProcessBackend:
    """A set of simulated readers; implements :class:`ReaderBackend`."""

    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}
        self._changed = threading.Condition()
        self._cancelled = False

    # --- reader and card management (what a person does with their hands) ---

    def add_reader(self, name: str, *, pinpad: bool = False) -> None:
        """``pinpad``: the reader announces FEATURE_VERIFY_PIN_DIRECT (a PIN pad)."""
        with self._changed:
            slot = self._slots.setdefault(name, _Slot(name))
            slot.pinpad = pinpad
            self._changed.notify_all()

    def remove_reader(self, name: str) -> None:
        with self._changed:
            slot = self._slots.pop(name, None)
            if slot is not None and slot.card is not None:
                slot.events += 1
            self._changed.notify_all()

    def insert(self, reader: str, card: SimulatedCard) -> None:
        with self._changed:
            slot = self._slots.setdefault(reader, _Slot(reader))
            if slot.card is not None:
                raise ReaderBusy(f"{reader!r} already holds a card")
            card.reset()
            slot.card = card
            slot.events += 1
            self._changed.notify_all()

    def remove(self, reader: str) -> SimulatedCard | None:
        with self._changed:
            slot = self._slots.get(reader)
            if slot is None or slot.card is None:
                return None
            card, slot.card = slot.card, None
            slot.events += 1
            slot.transaction_owner = None
            slot.transaction_depth = 0
            slot.exclusive_owner = None
            self._changed.notify_all()
            return card

    # --- ReaderBackend ---

    def readers(self) -> list[str]:
        with self._changed:
            return list(self._slots)

    def states(self) -> dict[str, ReaderState]:
        with self._changed:
            return self._snapshot()

    def _snapshot(self) -> dict[str, ReaderState]:
        return {
            name: ReaderState(
                name=name,
                card_present=slot.card is not None,
                atr=slot.card.atr if slot.card is not None else None,
                in_use_exclusively=slot.exclusive_owner is not None,
                events=slot.events,
            )
            for name, slot in self._slots.items()
        }

    def connect(self, reader: str, *, exclusive: bool = False) -> CardConnection:
        with self._changed:
            slot = self._slots.get(reader)
            if slot is None:
                raise ReaderUnavailable(f"unknown reader {reader!r}")
            if slot.card is None:
                raise NoCard(f"no card in {reader!r}")
            if slot.exclusive_owner is not None:
                raise ReaderBusy(f"{reader!r} is used exclusively by another connection")
            connection = InProcessConnection(self, slot, slot.events)
            if exclusive:
                slot.exclusive_owner = connection
            return connection

    def wait_for_change(
        self, known: Mapping[str, ReaderState], timeout: float
    ) -> dict[str, ReaderState]:
        with self._changed:
            self._cancelled = False
            self._changed.wait_for(
                lambda: self._cancelled or self._snapshot() != dict(known), timeout
            )
            return self._snapshot()

    def cancel_wait(self) -> None:
        with self._changed:
            self._cancelled = True
            self._changed.notify_all()

    # --- used by connections ---

    def _card_for(self, connection: InProcessConnection) -> SimulatedCard:
        slot = connection._slot
        if slot.card is None or slot.events != connection._generation:
            raise CardRemoved(f"card removed from {slot.name!r}")
        return slot.card

    def _acquire(self, connection: InProcessConnection, timeout: float | None = None) -> None:
        slot = connection._slot
        with self._changed:
            ok = self._changed.wait_for(
                lambda: (
                    slot.transaction_owner in (None, connection)
                    or slot.events != connection._generation
                ),
                timeout,
            )
            self._card_for(connection)
            if not ok:
                raise ReaderBusy(f"{slot.name!r} is held by another transaction")
            slot.transaction_owner = connection
            slot.transaction_depth += 1

    def _release(self, connection: InProcessConnection) -> None:
        slot = connection._slot
        with self._changed:
            if slot.transaction_owner is connection:
                slot.transaction_depth -= 1
                if slot.transaction_depth == 0:
                    slot.transaction_owner = None
                    self._changed.notify_all()


#: The control code a simulated PIN pad announces (any value: nothing calls it).
SIMULATED_PINPAD_CONTROL = 0x42000DE8


class InProcessConnection:
    """A connection to a simulated card; implements :class:`CardConnection`."""

    def __init__(self, backend: InProcessBackend, slot: _Slot, generation: int) -> None:
        self._backend = backend
        self._slot = slot
        self._generation = generation
        self._closed = False

    @property
    def reader(self) -> str:
        return self._slot.name

    @property
    def atr(self) -> bytes:
        return self._backend._card_for(self).atr

    @property
    def protocol(self) -> str:
        return "T=1"

    def transmit(self, apdu: bytes) -> bytes:
        if self._closed:
            raise CardRemoved("connection is closed")
        # Like PC/SC: a single transmit is atomic, and waits while another holds a transaction.
        self._backend._acquire(self)
        try:
            card = self._backend._card_for(self)
            with exchange(self._slot.name):
                answer = card.execute(apdu)
            # Pulled while computing: the answer never reaches the reader.
            self._backend._card_for(self)
            return answer
        finally:
            self._backend._release(self)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._backend._acquire(self)
        try:
            yield
        finally:
            self._backend._release(self)

    def features(self) -> dict[int, int]:
        if self._slot.pinpad:
            return {FEATURE_VERIFY_PIN_DIRECT: SIMULATED_PINPAD_CONTROL}
        return {}

    def reconnect(self, reset: bool = False) -> None:
        card = self._backend._card_for(self)
        if reset:
            card.reset()

    def disconnect(self) -> None:
        self._closed = True
        slot = self._slot
        with self._backend._changed:
            if slot.exclusive_owner is self:
                slot.exclusive_owner = None
            if slot.transaction_owner is self:
                slot.transaction_owner = None
                slot.transaction_depth = 0
                self._backend._changed.notify_all()

    def __enter__(self) -> InProcessConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()
