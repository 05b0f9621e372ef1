"""Where the agent's card work runs: in one worker process per reader (:class:`ReaderWorkers`),
so that a card that stops answering costs a killed process, never a stuck thread of the agent,
and a slow card in one reader never delays another.

The agent asks for four things (:class:`CardWork`); each is a job of :mod:`cardkit.jobs`.
In-process tests run the same jobs against mock cards (:class:`InProcessCardWork`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from cardkit.jobs import cps_face, reset_card, vitale_read
from cardkit.pcsc_bridge.contract import TokenPayload, VitalePayload, WebEidTokenPayload
from cardkit.transport import ReaderBackend
from cardkit.transport.deadline import card_timeout, guarded
from cardkit.worker import CardWorker

#: Seconds a person may take to type the PIN on a reader's PIN pad (readers give up after
#: 30 to 60 s themselves): the token job's limit then allows for it.
PINPAD_ENTRY = 90.0


@dataclass(frozen=True)
class Login:
    """What a card login signs, as the bridge has it: this origin's challenge, with the PIN
    (None: typed on the reader's pad) and the certificate the card's face carries (DER: it
    picks the key)."""

    reader: str
    pin: str | None = field(repr=False)
    origin: str
    nonce: str
    certificate: bytes | None
    wire_format: str = "cardkit:1"


class CardWork(Protocol):
    def face(self, reader: str) -> dict[str, Any]:
        """:func:`cardkit.jobs.cps_face`."""
        ...

    def read_vitale(self, reader: str) -> VitalePayload: ...

    def reset(self, reader: str) -> None: ...

    def forget(self, reader: str) -> None:
        """The reader is gone: whatever was kept for it goes too."""
        ...

    def create_token(self, login: Login) -> TokenPayload | WebEidTokenPayload: ...

    def stop(self) -> None: ...


def token_limit(pin: str | None) -> float:
    """How long a login may take: C_Login and C_Sign through the middleware (a few dozen
    APDUs), plus the person typing on the pad when the PIN is typed there."""
    return 2 * card_timeout() + (PINPAD_ENTRY if pin is None else 0.0)


#: A job of a few dozen APDUs in the worker is bounded there per exchange; this limit only
#: catches a worker wedged elsewhere.
def apdu_job_limit() -> float:
    return 6 * card_timeout()


class ReaderWorkers:
    """One :class:`CardWorker` per reader, started at its first job and kept."""

    def __init__(self, module_path: Path, initializer: str | None = None) -> None:
        self.module_path = module_path
        self.initializer = initializer
        self._workers: dict[str, CardWorker] = {}
        self._guard = threading.Lock()

    def worker(self, reader: str) -> CardWorker:
        with self._guard:
            if reader not in self._workers:
                self._workers[reader] = CardWorker("cardkit-card", self.initializer)
            return self._workers[reader]

    def face(self, reader: str) -> dict[str, Any]:
        return cast(
            dict[str, Any], self.worker(reader).run("cps_face", reader, limit=apdu_job_limit())
        )

    def read_vitale(self, reader: str) -> VitalePayload:
        return cast(
            VitalePayload, self.worker(reader).run("vitale_read", reader, limit=apdu_job_limit())
        )

    def reset(self, reader: str) -> None:
        self.worker(reader).run("reset_card", reader, limit=apdu_job_limit())

    def create_token(self, login: Login) -> TokenPayload | WebEidTokenPayload:
        return cast(
            TokenPayload | WebEidTokenPayload,
            self.worker(login.reader).run(
                "login_token",
                login.reader,
                limit=token_limit(login.pin),
                module_path=str(self.module_path),
                pin=login.pin,
                origin=login.origin,
                nonce=login.nonce,
                certificate=login.certificate,
                wire_format=login.wire_format,
            ),
        )

    def forget(self, reader: str) -> None:
        """A reader unplugged takes its worker with it (ended in the background: the reader
        monitor, which tells, must not wait for a process to end)."""
        with self._guard:
            worker = self._workers.pop(reader, None)
        if worker is not None:
            threading.Thread(target=worker.stop, name="worker-stop", daemon=True).start()

    def stop(self) -> None:
        with self._guard:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.stop()


class TokenMaker(Protocol):
    def create_token(self, login: Login) -> TokenPayload | WebEidTokenPayload: ...


class InProcessCardWork:
    """The same jobs in this process, under the same per-exchange deadline: for tests with
    in-process mock cards, and ``signer`` standing for the PKCS#11 side."""

    def __init__(self, backend: ReaderBackend, signer: TokenMaker | None = None) -> None:
        self.backend = backend
        self.signer = signer

    def face(self, reader: str) -> dict[str, Any]:
        return guarded(lambda: cps_face(self.backend, reader))

    def read_vitale(self, reader: str) -> VitalePayload:
        return cast(VitalePayload, guarded(lambda: vitale_read(self.backend, reader)))

    def reset(self, reader: str) -> None:
        guarded(lambda: reset_card(self.backend, reader))

    def create_token(self, login: Login) -> TokenPayload | WebEidTokenPayload:
        if self.signer is None:
            raise RuntimeError("no PKCS#11 side in this test")
        return self.signer.create_token(login)

    def forget(self, reader: str) -> None:
        pass

    def stop(self) -> None:
        pass
