"""What the agent does for the bridge: watch readers, and run card work one reader at a time.

Card access is serialised per reader: a request finding its reader busy is answered ``busy``
at once (no queue that grows while a person types a PIN). Card operations run in the
bridge's worker threads; PKCS#11 runs in the signer's child process (see agent.signer).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from agent.audit import AuditLog
from agent.consent import ConsentStore
from agent.pin import PinProvider, PinRequest
from agent.signer import SignerProcess
from cardkit import __version__
from cardkit.atr import CardFamily, identify, readers_holding
from cardkit.auth.challenge import check_nonce
from cardkit.cps import CpsCard
from cardkit.errors import PinBlocked, WrongPin
from cardkit.pcsc_bridge.problems import BridgeError
from cardkit.transport import CardEvent, NoCard, ReaderBackend, ReaderBusy, ReaderMonitor
from cardkit.transport.base import FEATURE_VERIFY_PIN_DIRECT
from cardkit.vitale.source import PcscVitaleSource

log = logging.getLogger("agent.service")

MAX_SUBSCRIBERS = 32
MONITOR_WAIT = 10.0
QUEUE_SIZE = 64


class AgentService:
    def __init__(
        self,
        *,
        backend: ReaderBackend,
        signer: SignerProcess,
        provider: PinProvider,
        consent: ConsentStore,
        audit: AuditLog,
        allowed_origins: Callable[[], frozenset[str]],
    ) -> None:
        self.backend = backend
        self.signer = signer
        self.provider = provider
        self.consent = consent
        self.audit = audit
        self.allowed_origins = allowed_origins
        # Changes wake the monitor at once; its timeout only bounds how long a missed
        # cancellation could delay shutdown, so it can be long: fewer idle wake-ups.
        self.monitor = ReaderMonitor(backend, wait_timeout=MONITOR_WAIT)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._subscribers: list[
            tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]
        ] = []
        self._sub_lock = threading.Lock()
        self.monitor.subscribe(self._on_event)

    def start(self) -> None:
        self.monitor.start()

    def stop(self) -> None:
        self.monitor.stop()
        self.signer.stop()

    # --- events ---

    def _on_event(self, event: CardEvent) -> None:
        payload = {
            "kind": event.kind.value,
            "reader": event.reader,
            "atr": event.atr.hex().upper() if event.atr else None,
        }
        with self._sub_lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            loop.call_soon_threadsafe(_offer, queue, payload)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        with self._sub_lock:
            if len(self._subscribers) >= MAX_SUBSCRIBERS:
                raise BridgeError(503, "busy", "too many event listeners")
            self._subscribers.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with self._sub_lock:
            self._subscribers = [(lp, q) for lp, q in self._subscribers if q is not queue]

    # --- status ---

    def status(self) -> dict[str, Any]:
        readers = []
        for name, state in self.backend.states().items():
            card = None
            if state.atr:
                identity = identify(state.atr, smartcard_list=False)
                card = {"family": identity.family.value, "name": identity.name}
            readers.append(
                {
                    "name": name,
                    "card_present": state.card_present,
                    "atr": state.atr.hex().upper() if state.atr else None,
                    "card": card,
                    "busy": self._lock_for(name).locked(),
                }
            )
        return {
            "name": "cardkit-agent",
            "version": __version__,
            "state": "running",
            "pin_provider": self.provider.name,
            "readers": readers,
        }

    # --- shared steps ---

    def _lock_for(self, reader: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(reader, threading.Lock())

    @contextmanager
    def _reader(self, reader: str) -> Iterator[None]:
        lock = self._lock_for(reader)
        if not lock.acquire(blocking=False):
            raise ReaderBusy(f"{reader} is busy with another request")
        try:
            yield
        finally:
            lock.release()

    def _check_consent(self, origin: str, action: str) -> None:
        if origin not in self.allowed_origins():
            raise BridgeError(403, "origin_not_allowed", "this origin may not use the bridge")
        decision = self.consent.decision(origin)
        if decision is None:
            decision = self.provider.ask_consent(origin, action)
            self.consent.record(origin, decision)
        if not decision:
            raise BridgeError(403, "consent_denied", "the user did not allow this site")

    def _pick(self, origin: str, family: CardFamily, wanted: str | None) -> str:
        candidates = readers_holding(self.backend, family)
        if wanted is not None:
            if wanted not in candidates:
                raise NoCard(f"no {family.value} card in {wanted!r}")
            return wanted
        if not candidates:
            raise NoCard(f"no {family.value} card in any reader")
        if len(candidates) == 1:
            return candidates[0]
        chosen = self.provider.choose_card(origin, candidates)
        if chosen not in candidates:
            raise BridgeError(409, "card_unknown", "no card was chosen")
        return chosen

    # --- endpoints ---

    @contextmanager
    def _audited(self, event: str, origin: str, endpoint: str) -> Iterator[dict[str, Any]]:
        """One audit line per request, whatever its outcome; the body adds fields."""
        started = time.monotonic()
        fields: dict[str, Any] = {"outcome": "error"}
        try:
            yield fields
            fields["outcome"] = "ok"
        except Exception as exc:
            fields["outcome"] = getattr(exc, "code", "error")
            raise
        finally:
            self.audit.record(
                event,
                origin=origin,
                endpoint=endpoint,
                duration_ms=round((time.monotonic() - started) * 1000),
                **fields,
            )

    def authenticate(self, origin: str, nonce: str, card: str | None) -> dict[str, Any]:
        with self._audited("auth", origin, "/v1/auth") as audit:
            check_nonce(nonce)
            self._check_consent(origin, "vous identifier avec votre carte CPS")
            reader = self._pick(origin, CardFamily.CPS, card)
            with self._reader(reader):
                connection = self.backend.connect(reader)
                try:
                    cps = CpsCard(connection)
                    status = cps.pin_status()
                    audit["card_type"] = cps.identity().card_type.value
                    pinpad = FEATURE_VERIFY_PIN_DIRECT in connection.features()
                finally:
                    connection.disconnect()
                if status.blocked:
                    raise PinBlocked("the PIN is blocked")
                pin: str | None = None
                if self.provider.uses_pinpad:
                    if not pinpad:
                        raise BridgeError(409, "pinpad_unavailable", f"{reader} has no PIN pad")
                    log.info("PIN to be typed on the reader's PIN pad (%s)", reader)
                else:
                    pin = self.provider.ask_pin(
                        PinRequest(origin, "votre identification", reader, status.tries_left)
                    )
                    if pin is None:
                        raise BridgeError(403, "pin_cancelled", "the user cancelled")
                try:
                    return self.signer.create_token(reader, pin, origin, nonce)
                except WrongPin as exc:
                    raise WrongPin(str(exc), self._tries_left(reader, exc.tries_left)) from None
                finally:
                    pin = None
                    self._forget_pin(reader)

    def _forget_pin(self, reader: str) -> None:
        """Reset the card after a login: a PIN left verified would let any local program
        sign without it until the card is pulled."""
        try:
            connection = self.backend.connect(reader)
            try:
                connection.reconnect(reset=True)
            finally:
                connection.disconnect()
        except Exception as exc:  # gone already is as good as reset
            log.debug("reset after login on %s: %s", reader, exc)

    def _tries_left(self, reader: str, known: int | None) -> int | None:
        """PKCS#11 rarely says how many tries are left; the card does, at no cost."""
        if known is not None:
            return known
        try:
            connection = self.backend.connect(reader)
            try:
                return CpsCard(connection).pin_status().tries_left
            finally:
                connection.disconnect()
        except Exception:
            return None

    def read_vitale(self, origin: str, card: str | None) -> dict[str, Any]:
        with self._audited("vitale_read", origin, "/v1/vitale/read") as audit:
            audit["card_type"] = "Vitale"
            self._check_consent(origin, "lire la carte Vitale du patient")
            reader = self._pick(origin, CardFamily.VITALE, card)
            with self._reader(reader):
                data = PcscVitaleSource(self.backend).read(reader)
            audit["nirs_masked"] = [b.nir.masked() for b in data.beneficiaries]
            return data.to_dict(show_nir=True)


def _offer(queue: asyncio.Queue[dict[str, Any]], payload: dict[str, Any]) -> None:
    if not queue.full():  # a slow listener loses events rather than the agent memory
        queue.put_nowait(payload)
