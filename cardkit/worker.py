"""Card work in a process of its own, which the caller kills when the card stops answering.

Two things can hang on a card that stops answering mid-command: a PC/SC exchange (bounded in
the worker itself by :func:`cardkit.transport.deadline.guarded`, which abandons the thread),
and a PKCS#11 module's call, which keeps Python's GIL for as long as the card is silent, so
nothing in its process can even notice. Either way the process is what can be abandoned: the
caller waits for each answer with a limit, and at the limit kills the worker and answers
:class:`ReaderTimeout`. A worker that reported a timeout is replaced too (it holds a thread
stuck in the PC/SC library). The next job starts a fresh one; the caller's own threads never
stay stuck, which is what a long-running agent needs.

A vendor module that crashes takes down the worker, not the caller. The PIN crosses the pipe
(to our own child, on this machine) and nothing else does: it is never logged, and the child
drops the request when it is answered. Errors cross back as their stable code
(:func:`cardkit.errors.to_wire`).
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, cast

from cardkit.errors import CardkitError, rebuild, to_wire
from cardkit.transport.base import ReaderTimeout
from cardkit.transport.deadline import card_timeout

log = logging.getLogger(__name__)


class WorkerDied(CardkitError):
    """The worker process ended in the middle of a job (a PKCS#11 module crashed)."""

    code = "pkcs11_error"
    http_status = 502


def _serve(conn: Connection, initializer: str | None) -> None:
    """The child: run jobs until the pipe closes."""
    if initializer:
        module, _, name = initializer.partition(":")
        getattr(importlib.import_module(module), name)()
    from cardkit.jobs import JOBS
    from cardkit.transport import pcsc_backend
    from cardkit.transport.deadline import guarded

    backend = pcsc_backend()
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        try:
            job = cast(Callable[..., Any], JOBS[request["job"]])
            arguments = request["arguments"]
            conn.send({"ok": guarded(lambda: job(backend, **arguments))})  # noqa: B023
        except CardkitError as exc:
            conn.send(to_wire(exc))
        except Exception as exc:  # a module or a card misbehaved: report, keep serving
            conn.send({"error": "pkcs11_error", "message": type(exc).__name__, "http_status": 502})
        finally:
            request = arguments = None  # drop the PIN


class CardWorker:
    """The caller's handle on one worker process; thread-safe, one job at a time.

    ``initializer`` ("module:function") runs first in the child (the agent hardens it:
    no core dump, no ptrace, since it holds PINs).
    """

    def __init__(self, name: str = "cardkit-card", initializer: str | None = None) -> None:
        self.name = name
        self.initializer = initializer
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else int(self._process.pid)

    def _ensure(self) -> Connection:
        if self._process is None or not self._process.is_alive():
            self._drop()
            parent, child = self._context.Pipe()
            self._process = self._context.Process(
                target=_serve, args=(child, self.initializer), name=self.name, daemon=True
            )
            self._process.start()
            child.close()
            self._conn = parent
        assert self._conn is not None
        return self._conn

    def run(self, job: str, reader: str, *, limit: float | None = None, **arguments: Any) -> Any:
        """The job's result; the job's own error; :class:`ReaderTimeout` when no answer came
        within ``limit`` seconds (default: the card timeout), the worker then killed."""
        wait = card_timeout() if limit is None else limit
        with self._lock:
            conn = self._ensure()
            try:
                conn.send({"job": job, "arguments": {"reader": reader, **arguments}})
                answered = conn.poll(wait)
                answer: dict[str, Any] | None = conn.recv() if answered else None
            except (EOFError, OSError) as exc:
                self._drop(kill=True)
                raise WorkerDied(f"the card worker died: {exc}") from None
            finally:
                arguments.clear()  # the PIN, if any, is not kept here either
            if answer is None:
                log.warning("card work on %r: no answer within %g s; worker killed", reader, wait)
                self._drop(kill=True)
                raise ReaderTimeout(f"the card in {reader!r} did not answer within {wait:g} s")
            if answer.get("error") == ReaderTimeout.code:
                self._drop(kill=True)  # it holds a thread stuck in the PC/SC library
        if "ok" in answer:
            return answer["ok"]
        fields = {k: v for k, v in answer.items() if k not in ("error", "message")}
        raise rebuild(answer.get("error", "card_error"), answer.get("message", ""), **fields)

    def _drop(self, *, kill: bool = False) -> None:
        """Close the pipe and end the process: it ends on its own when idle (the pipe's end
        is its signal), it is killed when stuck."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        process, self._process = self._process, None
        if process is not None:
            if not kill:
                process.join(2)
            if process.is_alive():
                process.kill()
            process.join(2)

    def stop(self) -> None:
        with self._lock:
            self._drop()
