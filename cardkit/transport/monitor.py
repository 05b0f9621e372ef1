"""Reader and card events, from any backend, without busy polling.

The backend blocks in its own wait primitive (SCardGetStatusChange for PC/SC) with a timeout,
so the monitor thread wakes on a change or at most once per ``wait_timeout`` to notice a stop
request. Events are derived by comparing snapshots (:func:`diff_states`), one rule for every
backend.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from cardkit.transport.base import (
    CardEvent,
    ReaderBackend,
    ReaderState,
    TransportError,
    diff_states,
)

log = logging.getLogger(__name__)

Listener = Callable[[CardEvent], None]


class ReaderMonitor:
    """Watches a backend in a thread and hands out :class:`CardEvent` objects.

    Use either :meth:`subscribe` (callbacks run on the monitor thread) or :meth:`get` (a
    queue). The readers present at start are reported as ``READER_ADDED`` (and
    ``CARD_INSERTED``) events too, so a listener needs no separate initial scan. When the
    backend fails (pcscd stopped), every known reader is reported removed and the monitor
    retries after ``retry_delay``.
    """

    def __init__(
        self,
        backend: ReaderBackend,
        *,
        wait_timeout: float = 1.0,
        retry_delay: float = 1.0,
        queue_events: bool = True,
    ) -> None:
        """``queue_events=False`` for callers that only :meth:`subscribe`: nobody would
        drain the queue, and a daemon must not keep every event it ever saw."""
        self._backend = backend
        self._queue_events = queue_events
        self._published = threading.Event()
        self._wait_timeout = wait_timeout
        self._retry_delay = retry_delay
        self._listeners: list[Listener] = []
        self._queue: queue.Queue[CardEvent] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._states: dict[str, ReaderState] = {}
        self._states_lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def states(self) -> dict[str, ReaderState]:
        """The last snapshot the monitor saw."""
        with self._states_lock:
            return dict(self._states)

    @property
    def running(self) -> bool:
        """Whether the monitor thread runs and its snapshot is current (taken, and PC/SC
        has not failed since)."""
        return self._thread is not None and self._published.is_set() and not self._stop.is_set()

    def start(self) -> ReaderMonitor:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="reader-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            # A cancel only interrupts a wait already under way: repeat it until the thread,
            # which may have been just about to wait, is gone.
            deadline = time.monotonic() + timeout
            while self._thread.is_alive() and time.monotonic() < deadline:
                self._backend.cancel_wait()
                self._thread.join(0.1)
            if self._thread.is_alive():
                log.warning("reader monitor did not stop within %.1f s", timeout)
                return  # left running (daemon thread): _thread stays set, as evidence
            self._thread = None

    def __enter__(self) -> ReaderMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def get(self, timeout: float | None = None) -> CardEvent | None:
        """The next event, or None when ``timeout`` seconds pass without one."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _publish(self, new: dict[str, ReaderState]) -> None:
        with self._states_lock:
            old, self._states = self._states, new
        self._published.set()
        for event in diff_states(old, new):
            log.debug("%s %s", event.kind.value, event.reader)
            if self._queue_events:
                self._queue.put(event)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    log.exception("reader event listener failed on %s", event)

    def _run(self) -> None:
        current: dict[str, ReaderState] | None = None
        while not self._stop.is_set():
            try:
                if current is None:
                    current = self._backend.states()
                else:
                    current = self._backend.wait_for_change(current, self._wait_timeout)
            except TransportError as exc:
                log.warning("reader monitor: %s; retrying", exc)
                self._publish({})
                self._published.clear()  # the snapshot is no answer while PC/SC fails
                current = None
                self._stop.wait(self._retry_delay)
                continue
            if not self._stop.is_set():
                self._publish(current)
