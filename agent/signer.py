"""PKCS#11 signing in a worker process of its own.

PyKCS11 keeps Python's GIL for the whole of a module call: a C_Login or C_Sign on a real card
(tenths of a second) would freeze the agent's event loop and every other request. The module
therefore lives in a child process; the agent sends it one request at a time over a pipe and
waits in a thread. A crash of the vendor module takes down the child, not the agent: the next
request starts a new one.

The PIN crosses the pipe (to our own child, on this machine) and nothing else: it is never
logged, and the child forgets it when the request ends. Errors cross back as their stable
code (:func:`cardkit.errors.to_wire`) and are rebuilt on this side.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cardkit.errors import CardkitError, rebuild, to_wire
from cardkit.pcsc_bridge.contract import TokenPayload

log = logging.getLogger(__name__)


class WorkerDied(CardkitError):
    """The PKCS#11 worker process ended in the middle of a request (the module crashed)."""

    code = "pkcs11_error"
    http_status = 502


def _serve(conn: Connection, module_path: str, environ: dict[str, str]) -> None:
    """The child: load the module once, answer requests until the pipe closes."""
    os.environ.update(environ)
    from agent.private import harden_process

    harden_process()  # this process holds PINs in memory: no core dump, no ptrace
    from cardkit.algorithms import Algorithm
    from cardkit.auth.card_login import create_login_token  # the child owns PyKCS11
    from cardkit.pkcs11 import Module

    module = Module.load(Path(module_path))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        try:
            expected = request["certificate"]
            created = create_login_token(
                module,
                request["reader"],
                request["pin"],
                request["origin"],
                request["nonce"],
                Algorithm(request["algorithm"]),
                x509.load_der_x509_certificate(expected) if expected else None,
            )
            conn.send({"ok": created.to_dict()})
        except CardkitError as exc:
            conn.send(to_wire(exc))
        except Exception as exc:  # the vendor module misbehaved: report, keep serving
            conn.send(
                {"error": "pkcs11_error", "message": f"{type(exc).__name__}", "http_status": 502}
            )
        finally:
            request = None  # drop the PIN


class SignerProcess:
    """The agent's handle on the child; thread-safe (one request at a time)."""

    def __init__(self, module_path: Path, environ: dict[str, str] | None = None) -> None:
        self.module_path = module_path
        self.environ = dict(environ or {})
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None

    def _ensure(self) -> Connection:
        if self._process is None or not self._process.is_alive():
            parent, child = self._context.Pipe()
            self._process = self._context.Process(
                target=_serve,
                args=(child, str(self.module_path), self.environ),
                name="cardkit-pkcs11",
                daemon=True,
            )
            self._process.start()
            child.close()
            self._conn = parent
        assert self._conn is not None
        return self._conn

    def create_token(  # noqa: PLR0917 - the login's inputs, as the bridge receives them
        self,
        reader: str,
        pin: str | None,
        origin: str,
        nonce: str,
        certificate: x509.Certificate | None = None,
        algorithm: str = "RS256",
    ) -> TokenPayload:
        """``pin=None``: the PIN is typed on the reader's PIN pad. ``certificate``: the one
        the card's own face carries, which picks the key on the token."""
        der = certificate.public_bytes(serialization.Encoding.DER) if certificate else None
        with self._lock:
            conn = self._ensure()
            try:
                conn.send(
                    {
                        "reader": reader,
                        "pin": pin,
                        "origin": origin,
                        "nonce": nonce,
                        "algorithm": algorithm,
                        "certificate": der,
                    }
                )
                answer: dict[str, Any] = conn.recv()
            except (EOFError, OSError) as exc:
                self.stop()
                raise WorkerDied(f"the PKCS#11 worker died: {exc}") from None
        if "ok" in answer:
            return cast(TokenPayload, answer["ok"])
        fields = {k: v for k, v in answer.items() if k not in ("error", "message")}
        raise rebuild(answer.get("error", "pkcs11_error"), answer.get("message", ""), **fields)

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(2)
            if self._process.is_alive():
                self._process.kill()
            self._process = None
