"""Deadlines on card exchanges: a card that stops answering ends the work with
:class:`ReaderTimeout` instead of hanging it.

A command sent to a card that never answers blocks inside the PC/SC service for as long as
the card stays silent (a real reader gives up after its own, driver-specific time; a virtual
reader never does), and nothing can cancel it. What cardkit can do is stop *waiting*: the
card work runs in a thread of its own (:func:`guarded`), every exchange says when it started
(:func:`exchange`, about a microsecond: the PC/SC transport marks every APDU), and the
caller gives up when one exchange has waited longer than the deadline. The thread left behind
is marked abandoned: if the card answers later, its next exchange fails at once instead of
carrying on with work nobody waits for.

The deadline is per exchange, not per command: a slow but working card (a CPS3 reading its
certificates over T=0) may take seconds in all and is never cut off. Its default is 10 s,
``CARDKIT_CARD_TIMEOUT`` (seconds) changes it.

This bounds what runs in the caller's process only where the blocked call releases Python's
GIL (pyscard's SCardTransmit does). Work inside a PKCS#11 module keeps the GIL, and runs in a
worker process the caller can kill (:mod:`cardkit.worker`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from cardkit.transport.base import ReaderTimeout

DEFAULT_CARD_TIMEOUT = 10.0
TIMEOUT_VARIABLE = "CARDKIT_CARD_TIMEOUT"

T = TypeVar("T")

# thread ident -> (monotonic start, reader) of the exchange it is blocked in
_in_flight: dict[int, tuple[float, str]] = {}
_abandoned: set[int] = set()
# idents of the threads running guarded work: the only ones whose exchanges are watched
_guarded: set[int] = set()


def card_timeout() -> float:
    """Seconds a card may take to answer one command (``CARDKIT_CARD_TIMEOUT``, default 10)."""
    value = os.environ.get(TIMEOUT_VARIABLE)
    if not value:
        return DEFAULT_CARD_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{TIMEOUT_VARIABLE}={value!r} is not a number of seconds") from None
    if not 0 < seconds <= 600:
        raise ValueError(f"{TIMEOUT_VARIABLE} must be between 0 and 600 seconds")
    return seconds


def _late(reader: str, timeout: float) -> ReaderTimeout:
    return ReaderTimeout(f"the card in {reader!r} did not answer within {timeout:g} s")


class _Exchange:
    __slots__ = ("_ident", "_reader")

    def __init__(self, reader: str) -> None:
        self._reader = reader
        self._ident = threading.get_ident()

    def __enter__(self) -> None:
        if self._ident in _abandoned:
            raise ReaderTimeout(f"the work on {self._reader!r} was abandoned after a card timeout")
        _in_flight[self._ident] = (time.monotonic(), self._reader)

    def __exit__(self, *exc: object) -> None:
        _in_flight.pop(self._ident, None)


_UNWATCHED = contextlib.nullcontext()


def exchange(reader: str) -> contextlib.AbstractContextManager[None]:
    """Around one blocking call to the card: what :func:`guarded` watches. Outside a guard
    nobody watches, and it costs next to nothing (it runs once per APDU)."""
    if _guarded and threading.get_ident() in _guarded:
        return _Exchange(reader)
    return _UNWATCHED


def guarded(call: Callable[[], T], timeout: float | None = None) -> T:
    """``call()``, run in a thread; :class:`ReaderTimeout` once one of its card exchanges has
    waited ``timeout`` seconds (default :func:`card_timeout`). Its own exceptions, any kind,
    are re-raised here. Nested calls run inline, under the outer guard."""
    if threading.get_ident() in _guarded:
        return call()
    limit = card_timeout() if timeout is None else timeout
    outcome: list[tuple[bool, object]] = []
    finished = threading.Event()

    def run() -> None:
        ident = threading.get_ident()
        _guarded.add(ident)
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed over to the waiting thread, whatever it is
            outcome.append((False, exc))
        finally:
            _guarded.discard(ident)
            _abandoned.discard(ident)
            finished.set()

    worker = threading.Thread(target=run, name="card-work", daemon=True)
    worker.start()
    ident = worker.ident
    assert ident is not None
    while not finished.wait(_next_look(ident, limit)):
        started = _in_flight.get(ident)
        if started is not None and time.monotonic() - started[0] >= limit:
            _abandoned.add(ident)
            if finished.is_set():  # it answered at the last moment after all
                _abandoned.discard(ident)
                break
            raise _late(started[1], limit)
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[return-value]
    assert isinstance(value, BaseException)
    raise value


def _next_look(ident: int, limit: float) -> float:
    """When the exchange in flight would pass the deadline; a quarter of it when none is
    (an exchange starting right after this look is then caught at most ``limit / 4`` late)."""
    started = _in_flight.get(ident)
    if started is None:
        return limit / 4
    return max(0.01, min(limit / 4, started[0] + limit - time.monotonic()))
