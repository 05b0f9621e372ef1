"""The PC/SC backend: pcscd (or WinSCard) through pyscard's thin ``scard`` module.

This is the only module in cardkit that imports ``smartcard``. It uses the raw SCard calls,
not pyscard's framework, so that every wait has a timeout, every PC/SC return code maps to a
typed error, and bytes stay ``bytes`` outside this file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from smartcard import scard

from cardkit.transport.base import (
    CardConnection,
    CardRemoved,
    CardReset,
    NoCard,
    ReaderBusy,
    ReaderState,
    ReaderUnavailable,
    TransportError,
    TransportTimeout,
    parse_features,
)
from cardkit.transport.deadline import exchange

log = logging.getLogger(__name__)

PNP_READER = "\\\\?PnP?\\Notification"

_REMOVED = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD}
_READER_GONE = {
    scard.SCARD_E_READER_UNAVAILABLE,
    scard.SCARD_E_UNKNOWN_READER,
    scard.SCARD_E_NO_READERS_AVAILABLE,
    scard.SCARD_E_NO_SERVICE,
    scard.SCARD_E_SERVICE_STOPPED,
}
_MAYBE_REMOVED = {
    scard.SCARD_E_NOT_TRANSACTED,
    scard.SCARD_F_COMM_ERROR,
    scard.SCARD_W_UNRESPONSIVE_CARD,
    scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_E_INVALID_HANDLE,
}


def _message(hr: int) -> str:
    try:
        return str(scard.SCardGetErrorMessage(hr))
    except Exception:  # pragma: no cover - pyscard builds without the helper
        return f"PC/SC error 0x{hr & 0xFFFFFFFF:08X}"


def _raise_for(hr: int, what: str, reader: str = "") -> None:
    """Map a PC/SC return code to cardkit's error family."""
    if hr == scard.SCARD_S_SUCCESS:
        return
    where = f" on {reader!r}" if reader else ""
    text = f"{what}{where}: {_message(hr)}"
    if hr in _REMOVED:
        raise CardRemoved(text) if what != "connect" else NoCard(text)
    if hr in _READER_GONE:
        raise ReaderUnavailable(text)
    if hr == scard.SCARD_W_RESET_CARD:
        raise CardReset(text)
    if hr == scard.SCARD_E_SHARING_VIOLATION:
        raise ReaderBusy(text)
    if hr == scard.SCARD_E_TIMEOUT:
        raise TransportTimeout(text)
    raise TransportError(text)


# --- waits another program can make endless ---------------------------------------------------
#
# While another program holds a PC/SC transaction on a card, pcsc-lite's SCardConnect and
# SCardBeginTransaction wait for it to end, with no timeout and no way to cancel; and
# pyscard's wrappers keep Python's GIL meanwhile, so a helper thread cannot even be watched.
# These two calls therefore go through ctypes (which releases the GIL during the call) into
# the same PC/SC library pyscard uses, in a helper thread with a deadline. (SCardTransmit, which
# a mute card holds, releases the GIL in pyscard: it is bounded by the caller's guard instead,
# see cardkit.transport.deadline.) A call still
# waiting at the deadline is abandoned: the thread keeps the handles and releases them (and
# ends the transaction it may finally get) when the call returns, so the card is never left
# locked by cardkit.


class _Native:
    """SCardConnect and SCardBeginTransaction through ctypes, typed per platform."""

    def __init__(self, lib: Any, platform: str) -> None:
        long_: Any
        dword: Any
        handle: Any
        if platform == "win32":
            long_, dword, handle = ctypes.c_long, ctypes.c_uint32, ctypes.c_size_t
            connect = lib.SCardConnectA
        elif platform == "darwin":
            long_, dword, handle = ctypes.c_int32, ctypes.c_uint32, ctypes.c_int32
            connect = lib.SCardConnect
        else:  # pcsc-lite: LONG and SCARDHANDLE are long, DWORD unsigned long
            long_, dword, handle = ctypes.c_long, ctypes.c_ulong, ctypes.c_long
            connect = lib.SCardConnect
        connect.argtypes = [
            handle,
            ctypes.c_char_p,
            dword,
            dword,
            ctypes.POINTER(handle),
            ctypes.POINTER(dword),
        ]
        connect.restype = long_
        begin = lib.SCardBeginTransaction
        begin.argtypes = [handle]
        begin.restype = long_
        self._connect, self._begin, self._handle, self._dword = connect, begin, handle, dword

    def connect(
        self, context: Any, reader: str, share: int, protocols: int
    ) -> tuple[int, Any, int]:
        card = self._handle()
        active = self._dword()
        hr = self._connect(
            context, reader.encode(), share, protocols, ctypes.byref(card), ctypes.byref(active)
        )
        return int(hr) & 0xFFFFFFFF, card.value, int(active.value)

    def begin_transaction(self, card: Any) -> int:
        return int(self._begin(card)) & 0xFFFFFFFF


@functools.cache
def _native() -> _Native | None:
    name = {"win32": "winscard", "darwin": "PCSC"}.get(sys.platform, "pcsclite")
    path = ctypes.util.find_library(name)
    if path is None:
        log.warning("no %s library for ctypes: PC/SC waits on a locked card are unbounded", name)
        return None
    loader = getattr(ctypes, "WinDLL", ctypes.CDLL)
    return _Native(loader(path), sys.platform)


T = TypeVar("T")


def _within(call: Callable[[], T], timeout: float, if_late: Callable[[T], None]) -> list[T]:
    """``[result]`` of ``call`` if it returns within ``timeout`` seconds; else ``[]``, and
    ``if_late(result)`` runs in the helper thread once the call returns."""
    guard = threading.Lock()
    box: list[T] = []
    given_up = False
    finished = threading.Event()

    def run() -> None:
        result = call()
        with guard:
            box.append(result)
            late = given_up
        finished.set()
        if late:
            if_late(result)

    threading.Thread(target=run, name="pcsc-wait", daemon=True).start()
    finished.wait(timeout)
    with guard:
        if box:
            return box
        given_up = True
        return []


def _context() -> Any:
    hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    _raise_for(hr, "establishing a PC/SC context (is pcscd running?)")
    return context


class PcscConnection:
    """A connection to one card through PC/SC; implements :class:`CardConnection`."""

    #: Seconds to wait for pcscd to notice a removal after a failed exchange.
    removal_settle = 1.5
    #: Seconds to wait while another program holds the card in a transaction.
    lock_timeout = 5.0

    def __init__(self, reader: str, *, exclusive: bool = False) -> None:
        self._reader = reader
        self._share = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
        self._context = _context()
        self._lock = threading.RLock()
        self._handle: Any = None
        try:
            hr, self._handle, active = self._connect()
            _raise_for(hr, "connect", reader)
        except BaseException:
            if self._context is not None:
                scard.SCardReleaseContext(self._context)
            raise
        self._set_protocol(active)
        self._atr = self._read_atr()
        log.debug("connected to %r (%s)", reader, self.protocol)

    def _in_use(self) -> ReaderBusy:
        return ReaderBusy(
            f"{self._reader!r} is in use by another program, or its card stopped answering "
            f"(held for more than {self.lock_timeout:g} s: if no program uses it, take the "
            "card out and insert it again)"
        )

    def _connect(self) -> tuple[int, Any, int]:
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        native = _native()
        if native is None:
            hr, handle, active = scard.SCardConnect(
                self._context, self._reader, self._share, protocols
            )
            return int(hr), handle, int(active)
        context = self._context

        def release(late: tuple[int, Any, int]) -> None:
            if late[0] == scard.SCARD_S_SUCCESS:
                scard.SCardDisconnect(late[1], scard.SCARD_LEAVE_CARD)
            scard.SCardReleaseContext(context)

        answer = _within(
            lambda: native.connect(context, self._reader, self._share, protocols),
            self.lock_timeout,
            release,
        )
        if not answer:
            self._context = None  # the helper thread releases it
            raise self._in_use()
        return answer[0]

    def _begin_transaction(self) -> None:
        native = _native()
        if native is None:
            self._raise(scard.SCardBeginTransaction(self._handle), "begin transaction")
            return
        handle, context = self._handle, self._context

        def release(hr: int) -> None:
            if hr == scard.SCARD_S_SUCCESS:
                scard.SCardEndTransaction(handle, scard.SCARD_LEAVE_CARD)
            scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
            scard.SCardReleaseContext(context)

        answer = _within(lambda: native.begin_transaction(handle), self.lock_timeout, release)
        if not answer:
            self._handle = self._context = None  # the helper thread owns them now
            raise self._in_use()
        self._raise(answer[0], "begin transaction")

    def _set_protocol(self, active: int) -> None:
        self._active = active
        self._pci = scard.SCARD_PCI_T1 if active == scard.SCARD_PROTOCOL_T1 else scard.SCARD_PCI_T0

    def _read_atr(self) -> bytes:
        hr, _name, _state, _proto, atr = scard.SCardStatus(self._handle)
        self._raise(hr, "status")
        return bytes(atr)

    @property
    def reader(self) -> str:
        return self._reader

    @property
    def atr(self) -> bytes:
        return self._atr

    @property
    def protocol(self) -> str:
        return "T=1" if self._active == scard.SCARD_PROTOCOL_T1 else "T=0"

    def _raise(self, hr: int, what: str) -> None:
        """Like :func:`_raise_for`, but tells a removed card from a generic failure."""
        if hr != scard.SCARD_S_SUCCESS and hr in _MAYBE_REMOVED and self._card_gone():
            raise CardRemoved(f"{what} on {self._reader!r}: card removed ({_message(hr)})")
        _raise_for(hr, what, self._reader)

    def _card_gone(self) -> bool:
        """Whether a failed exchange was a removal.

        The driver fails the exchange at once, but pcscd notices the removal only at its next
        poll of the reader (about 400 ms for vpcd, similar for CCID readers on interrupt-less
        hardware), so a "present" answer is given ``removal_settle`` seconds to change.
        """
        hr, states = scard.SCardGetStatusChange(
            self._context, 0, [(self._reader, scard.SCARD_STATE_UNAWARE)]
        )
        if hr != scard.SCARD_S_SUCCESS:
            return True
        event = states[0][1]
        if not event & scard.SCARD_STATE_PRESENT:
            return True
        hr, states = scard.SCardGetStatusChange(
            self._context,
            int(self.removal_settle * 1000),
            [(self._reader, event & ~scard.SCARD_STATE_CHANGED)],
        )
        if hr != scard.SCARD_S_SUCCESS:
            return bool(hr != scard.SCARD_E_TIMEOUT)
        return not states[0][1] & scard.SCARD_STATE_PRESENT

    def transmit(self, apdu: bytes) -> bytes:
        if self._handle is None:
            raise TransportError(f"connection to {self._reader!r} is closed")
        with self._lock, exchange(self._reader):
            hr, response = scard.SCardTransmit(self._handle, self._pci, list(apdu))
        if hr != scard.SCARD_S_SUCCESS:
            self._raise(hr, "transmit")
        if len(response) < 2:
            # vpcd (and some drivers) report a card vanishing mid-command as success with
            # an empty answer; no card answers without a status word.
            if self._card_gone():
                raise CardRemoved(f"transmit on {self._reader!r}: card removed mid-command")
            raise TransportError(f"transmit on {self._reader!r}: response of {len(response)} bytes")
        return bytes(response)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._handle is None:
                raise TransportError(f"connection to {self._reader!r} is closed")
            self._begin_transaction()
            try:
                yield
            finally:
                hr = scard.SCardEndTransaction(self._handle, scard.SCARD_LEAVE_CARD)
                if hr != scard.SCARD_S_SUCCESS:
                    # The card may be gone already; the caller's own error (if any) matters more.
                    log.debug("end transaction on %r: %s", self._reader, _message(hr))

    def reconnect(self, reset: bool = False) -> None:
        init = scard.SCARD_RESET_CARD if reset else scard.SCARD_LEAVE_CARD
        with self._lock, exchange(self._reader):
            hr, active = scard.SCardReconnect(
                self._handle, self._share, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1, init
            )
            self._raise(hr, "reconnect")
            self._set_protocol(active)
            self._atr = self._read_atr()

    def features(self) -> dict[int, int]:
        """Reader features (PC/SC part 10): e.g. a PIN pad's FEATURE_VERIFY_PIN_DIRECT."""
        with self._lock, exchange(self._reader):
            hr, answer = scard.SCardControl(
                self._handle,
                scard.SCARD_CTL_CODE(3400),
                [],  # CM_IOCTL_GET_FEATURE_REQUEST
            )
        if hr != scard.SCARD_S_SUCCESS:
            return {}  # the driver answers no feature request: no features
        return parse_features(bytes(answer))

    def disconnect(self) -> None:
        with self._lock:
            if self._handle is not None:
                scard.SCardDisconnect(self._handle, scard.SCARD_LEAVE_CARD)
                self._handle = None
            if self._context is not None:
                scard.SCardReleaseContext(self._context)
                self._context = None

    def __enter__(self) -> PcscConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # For benchmarks that compare against raw pyscard on the very same card handle.
    @property
    def raw_handle(self) -> tuple[Any, Any]:
        """The pyscard (handle, PCI) pair; for benchmarks only."""
        return self._handle, self._pci


def _state_from_event(name: str, event: int, atr: list[int] | bytes) -> ReaderState:
    present = bool(event & scard.SCARD_STATE_PRESENT) and not event & scard.SCARD_STATE_MUTE
    return ReaderState(
        name=name,
        card_present=present,
        atr=bytes(atr) if present and atr else None,
        in_use_exclusively=bool(event & scard.SCARD_STATE_EXCLUSIVE),
        events=(event >> 16) & 0xFFFF,
    )


class PcscBackend:
    """Readers known to pcscd; implements :class:`ReaderBackend`.

    One PC/SC context is kept for listing, another for blocking waits (pcsc-lite holds a
    context's lock for the whole of a wait, and SCardCancel targets one context); each
    connection gets its own.
    """

    def __init__(self) -> None:
        self._context: Any = None
        self._wait_context: Any = None
        self._lock = threading.Lock()

    def _ctx(self) -> Any:
        if self._context is None:
            self._context = _context()
        return self._context

    def close(self) -> None:
        for attr in ("_context", "_wait_context"):
            context = getattr(self, attr)
            if context is not None:
                scard.SCardReleaseContext(context)
                setattr(self, attr, None)

    def readers(self) -> list[str]:
        with self._lock:
            hr, readers = scard.SCardListReaders(self._ctx(), [])
        if hr in (scard.SCARD_E_NO_READERS_AVAILABLE, scard.SCARD_E_READER_UNAVAILABLE):
            return []
        if hr in (scard.SCARD_E_NO_SERVICE, scard.SCARD_E_INVALID_HANDLE):
            # pcscd restarted since the context was made: one fresh try.
            self.close()
            with self._lock:
                hr, readers = scard.SCardListReaders(self._ctx(), [])
        _raise_for(hr, "listing readers")
        return list(readers)

    def states(self) -> dict[str, ReaderState]:
        names = self.readers()
        if not names:
            return {}
        with self._lock:
            hr, found = scard.SCardGetStatusChange(
                self._ctx(), 0, [(n, scard.SCARD_STATE_UNAWARE) for n in names]
            )
        if hr == scard.SCARD_E_TIMEOUT:  # pragma: no cover - zero timeout with UNAWARE
            return {}
        _raise_for(hr, "reading reader states")
        return {name: _state_from_event(name, event, atr) for name, event, atr in found}

    def connect(self, reader: str, *, exclusive: bool = False) -> CardConnection:
        return PcscConnection(reader, exclusive=exclusive)

    def wait_for_change(
        self, known: Mapping[str, ReaderState], timeout: float
    ) -> dict[str, ReaderState]:
        watch: list[tuple[str, int]] = []
        for name, state in known.items():
            flag = scard.SCARD_STATE_PRESENT if state.card_present else scard.SCARD_STATE_EMPTY
            watch.append((name, (state.events << 16) | flag))
        watch.append((PNP_READER, len(known) << 16))
        if self._wait_context is None:
            self._wait_context = _context()
        hr, _ = scard.SCardGetStatusChange(self._wait_context, max(0, int(timeout * 1000)), watch)
        if hr in (scard.SCARD_E_NO_SERVICE, scard.SCARD_E_INVALID_HANDLE):
            self.close()  # pcscd restarted: the next call starts afresh
        if hr not in (
            scard.SCARD_S_SUCCESS,
            scard.SCARD_E_TIMEOUT,
            scard.SCARD_E_CANCELLED,
            scard.SCARD_E_UNKNOWN_READER,
        ):
            _raise_for(hr, "waiting for reader changes")
        return self.states()

    def cancel_wait(self) -> None:
        if self._wait_context is not None:
            scard.SCardCancel(self._wait_context)
