"""PKCS#11 signing in a worker process of its own.

PyKCS11 keeps Python's GIL for the whole of a module call: a C_Login or C_Sign on a real card
(tenths of a second) would freeze the agent's event loop and every other request. The module
therefore lives in a child process; the agent sends it one request at a time over a pipe and
waits in a thread. A crash of the vendor module takes down the child, not the agent: the next
request starts a new one.

The PIN crosses the pipe (to our own child, on this machine) and nothing else: it is never
logged, and the child forgets it when the request ends.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cardkit.errors import CardkitError, InvalidPinFormat, PinBlocked, WrongPin
from cardkit.transport.base import CardRemoved

log = logging.getLogger("agent.signer")

_ERRORS: dict[str, type[CardkitError]] = {
    "pin_wrong": WrongPin,
    "pin_blocked": PinBlocked,
    "pin_format": InvalidPinFormat,
    "card_absent": CardRemoved,
}


def _serve(conn: Connection, module_path: str, environ: dict[str, str]) -> None:
    """The child: load the module once, answer requests until the pipe closes."""
    os.environ.update(environ)
    from cardkit.auth import create_token  # imported here: the child owns PyKCS11
    from cardkit.pkcs11 import Algorithm, Module

    module = Module.load(Path(module_path))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        try:
            slot = module.slot_for_reader(request["reader"]).slot
            with module.open(slot) as token:
                token.login(request["pin"])
                pair = token.find_authentication_key()
                algorithm = Algorithm(request["algorithm"])
                created = create_token(
                    lambda data: token.sign(pair, data, algorithm),  # noqa: B023
                    pair.certificate,
                    request["origin"],
                    request["nonce"],
                    algorithm.value,
                )
            conn.send({"ok": created.to_dict()})
        except CardkitError as exc:
            conn.send(
                {
                    "error": exc.code,
                    "message": str(exc),
                    "tries_left": getattr(exc, "tries_left", None),
                }
            )
        except Exception as exc:  # the vendor module misbehaved: report, keep serving
            conn.send({"error": "pkcs11_error", "message": f"{type(exc).__name__}: {exc}"})
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

    def create_token(
        self, reader: str, pin: str | None, origin: str, nonce: str, algorithm: str = "RS256"
    ) -> dict[str, Any]:
        """``pin=None``: the PIN is typed on the reader's PIN pad."""
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
                    }
                )
                answer: dict[str, Any] = conn.recv()
            except (EOFError, OSError) as exc:
                self.stop()
                raise CardkitError(f"the PKCS#11 worker died: {exc}") from None
        if "ok" in answer:
            return dict(answer["ok"])
        code = answer.get("error", "pkcs11_error")
        if code == "pin_wrong":
            raise WrongPin(answer.get("message", "wrong PIN"), answer.get("tries_left"))
        cls = _ERRORS.get(code)
        if cls is not None:
            raise cls(answer.get("message", code))
        error = CardkitError(answer.get("message", code))
        error.code = code
        raise error

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(2)
            if self._process.is_alive():
                self._process.kill()
            self._process = None
