"""What every transport offers: readers, connections, transactions, and their errors.

The card applications above see only :class:`CardConnection`; whether bytes go through pcscd
or straight into a simulated card is the backend's business. That is what lets the same
``CpsCard`` code run against an in-process mock in a unit test and a real card in a reader.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

from cardkit.errors import CardError, ExitCode


class TransportError(CardError):
    """The reader or the PC/SC service failed."""

    code = "transport_error"


class ReaderUnavailable(TransportError):
    """The reader is unknown, was unplugged, or the PC/SC service is not running."""

    code = "reader_unavailable"
    exit_code = ExitCode.NO_READER
    http_status = 503


class NoSuchReader(ReaderUnavailable):
    """No reader matches the name or index asked for."""

    code = "reader_not_found"
    http_status = 404


class ReaderAmbiguous(ReaderUnavailable):
    """Several readers match, or several hold a fitting card, and nothing says which."""

    code = "reader_ambiguous"
    http_status = 409


class NoCard(TransportError):
    """There is no card in the reader."""

    code = "card_absent"
    exit_code = ExitCode.NO_CARD
    http_status = 409


class CardRemoved(NoCard):
    """The card was removed (or the reader went away) while it was in use."""


class CardReset(TransportError):
    """Another application reset the card: volatile state (PIN verified, selections) is lost."""

    code = "card_reset"


class ReaderBusy(TransportError):
    """Another application holds the card exclusively."""

    code = "busy"
    http_status = 409


class TransportTimeout(TransportError):
    """A PC/SC wait ran out of time."""

    code = "timeout"
    http_status = 504


class ReaderTimeout(TransportError):
    """The card (or the reader) received a command and gave no answer within the deadline.

    A card that stops answering mid-command (half inserted, a USB glitch, a broken chip) holds
    the reader until it answers or is pulled out: nothing on the computer can make it answer,
    so the one useful advice is to take it out.
    """

    code = "reader_timeout"
    exit_code = ExitCode.CARD_TIMEOUT
    http_status = 504
    hint = "The card did not answer: take it out of the reader, insert it again and try again."


@runtime_checkable
class CardConnection(Protocol):
    """A connection to the card in one reader.

    ``transmit`` takes a whole command APDU and returns the whole response APDU, status word
    included; it never interprets status words (the APDU layer does).
    """

    @property
    def reader(self) -> str: ...

    @property
    def atr(self) -> bytes: ...

    @property
    def protocol(self) -> str:
        """``"T=0"`` or ``"T=1"``."""
        ...

    def transmit(self, apdu: bytes) -> bytes: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Exclusive access for a multi-APDU sequence; no other client interleaves."""
        ...

    def reconnect(self, reset: bool = False) -> None:
        """Re-establish the connection; ``reset=True`` warm-resets the card."""
        ...

    def disconnect(self) -> None: ...

    def features(self) -> dict[int, int]:
        """PC/SC part 10 reader features: feature tag -> control code (empty if none)."""
        ...

    def __enter__(self) -> CardConnection: ...

    def __exit__(self, *exc: object) -> None:
        """Disconnects."""
        ...


#: PC/SC part 10 feature tags cardkit uses.
FEATURE_VERIFY_PIN_DIRECT = 0x06
FEATURE_MODIFY_PIN_DIRECT = 0x07


def parse_features(data: bytes) -> dict[int, int]:
    """The answer to CM_IOCTL_GET_FEATURE_REQUEST: TLV items ``tag 04 <control code, BE>``.

    Malformed items end the parse (a reader's answer is untrusted input).
    """
    features: dict[int, int] = {}
    pos = 0
    while pos + 2 <= len(data):
        tag, length = data[pos], data[pos + 1]
        value = data[pos + 2 : pos + 2 + length]
        if length != 4 or len(value) != 4:
            break
        features[tag] = int.from_bytes(value, "big")
        pos += 2 + length
    return features


@dataclass(frozen=True, slots=True)
class ReaderState:
    """What a backend knows of one reader at one moment.

    ``events`` is the reader's event counter where the backend has one (pcsc-lite keeps it in
    the upper 16 bits of the event state): a card pulled and reinserted between two looks
    changes it even though presence and ATR look the same.
    """

    name: str
    card_present: bool
    atr: bytes | None = None
    in_use_exclusively: bool = False
    events: int = 0


class EventKind(Enum):
    READER_ADDED = "reader_added"
    READER_REMOVED = "reader_removed"
    CARD_INSERTED = "card_inserted"
    CARD_REMOVED = "card_removed"


@dataclass(frozen=True, slots=True)
class CardEvent:
    kind: EventKind
    reader: str
    atr: bytes | None = None


class ReaderBackend(Protocol):
    """A source of readers: pcscd through pyscard, or simulated readers in this process."""

    def readers(self) -> list[str]: ...

    def states(self) -> dict[str, ReaderState]: ...

    def connect(self, reader: str, *, exclusive: bool = False) -> CardConnection: ...

    def wait_for_change(
        self, known: Mapping[str, ReaderState], timeout: float
    ) -> dict[str, ReaderState]:
        """Block until a reader or card changes from ``known``, or ``timeout`` seconds pass.

        Returns the states as they are on return. Must be interruptible by
        :meth:`cancel_wait` from another thread.
        """
        ...

    def cancel_wait(self) -> None: ...


def diff_states(
    old: Mapping[str, ReaderState], new: Mapping[str, ReaderState]
) -> Iterator[CardEvent]:
    """The events that lead from ``old`` to ``new``, in an order a listener can replay."""
    for name, before in old.items():
        if name not in new:
            if before.card_present:
                yield CardEvent(EventKind.CARD_REMOVED, name)
            yield CardEvent(EventKind.READER_REMOVED, name)
    for name, after in new.items():
        before_state = old.get(name)
        if before_state is None:
            yield CardEvent(EventKind.READER_ADDED, name)
            if after.card_present:
                yield CardEvent(EventKind.CARD_INSERTED, name, after.atr)
            continue
        swapped = (
            before_state.card_present
            and after.card_present
            and (before_state.atr != after.atr or _card_cycled(before_state, after))
        )
        if before_state.card_present and (not after.card_present or swapped):
            yield CardEvent(EventKind.CARD_REMOVED, name)
        if after.card_present and (not before_state.card_present or swapped):
            yield CardEvent(EventKind.CARD_INSERTED, name, after.atr)


def _card_cycled(before: ReaderState, after: ReaderState) -> bool:
    """A removal and an insertion both happened between the two looks.

    pcsc-lite bumps the counter once per insertion and once per removal, so a card pulled and
    put back unseen moves it by two.
    """
    return after.events - before.events >= 2
