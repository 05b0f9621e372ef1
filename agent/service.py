"""What the agent does for the bridge: watch readers, and run card work one reader at a time.

Card access is serialised per reader: a request finding its reader busy is answered ``busy``
at once (no queue that grows while a person types a PIN). Card operations run in the
bridge's worker threads, which hand the card work to a process per reader (see
agent.cardwork): a card that stops answering costs a killed process, never a stuck thread.

The agent speaks in domain errors (consent refused, PIN cancelled, reader busy...); what
they become in HTTP is the bridge's business. Which origins may call at all is the bridge's
front door too: the agent only sees origins that passed it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from agent.audit import AuditLog
from agent.cardwork import CardWork, Login
from agent.consent import ConsentStore
from agent.prompt import PinRequest, UserPrompt
from cardkit import __version__
from cardkit.atr import CardFamily, identify
from cardkit.auth import webeid
from cardkit.auth.token import FORMAT as CARDKIT_FORMAT
from cardkit.errors import (
    AgentBusy,
    CardkitError,
    ConsentDenied,
    PinBlocked,
    PinCancelled,
    PinCooldown,
    PinpadUnavailable,
    PromptUnavailable,
    WrongPin,
)
from cardkit.pcsc_bridge.contract import (
    Endpoint,
    EventPayload,
    ReaderPayload,
    StatusPayload,
    TokenPayload,
    VersionPayload,
    VitalePayload,
    WebEidTokenPayload,
    endpoint,
)
from cardkit.transport import (
    CardEvent,
    EventKind,
    ReaderBackend,
    ReaderBusy,
    ReaderMonitor,
    ReaderState,
    ReaderTimeout,
)
from cardkit.transport.readers import resolve_reader

log = logging.getLogger(__name__)

MAX_SUBSCRIBERS = 32
#: What the consent dialog says each action of the endpoint table does ("... vous
#: identifier avec votre carte CPS ?").
CONSENT_QUESTIONS = {
    "identify": "vous identifier avec votre carte CPS",
    "read_vitale": "lire la carte Vitale du patient",
}
AUTH = endpoint("authenticate")
VITALE = endpoint("read_vitale")
#: Seconds a site must wait before prompting again after a cancelled or wrong PIN.
PIN_COOLDOWN = 10.0
MONITOR_WAIT = 10.0
QUEUE_SIZE = 64


class AgentService:
    def __init__(
        self,
        *,
        backend: ReaderBackend,
        work: CardWork,
        prompt: UserPrompt,
        consent: ConsentStore,
        audit: AuditLog,
        pin_cooldown: float = PIN_COOLDOWN,
    ) -> None:
        self.backend = backend
        self.work = work
        self.prompt = prompt
        self.consent = consent
        self.audit = audit
        # Changes wake the monitor at once; its timeout only bounds how long a missed
        # cancellation could delay shutdown, so it can be long: fewer idle wake-ups.
        self.monitor = ReaderMonitor(backend, wait_timeout=MONITOR_WAIT, queue_events=False)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._questions: dict[str, threading.Lock] = {}
        self._choosers: dict[str, threading.Lock] = {}
        self.pin_cooldown = pin_cooldown
        self._cooldowns: dict[str, float] = {}
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[EventPayload]]] = []
        self._sub_lock = threading.Lock()
        self.monitor.subscribe(self._on_event)

    def start(self) -> None:
        self.monitor.start()

    def stop(self) -> None:
        self.monitor.stop()
        self.work.stop()

    # --- events ---

    def _on_event(self, event: CardEvent) -> None:
        if event.kind is EventKind.READER_REMOVED:
            self.work.forget(event.reader)
        payload: EventPayload = {
            "kind": event.kind.value,
            "reader": event.reader,
            "atr": event.atr.hex().upper() if event.atr else None,
        }
        with self._sub_lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            loop.call_soon_threadsafe(_offer, queue, payload)

    def subscribe(self) -> asyncio.Queue[EventPayload]:
        queue: asyncio.Queue[EventPayload] = asyncio.Queue(QUEUE_SIZE)
        with self._sub_lock:
            if len(self._subscribers) >= MAX_SUBSCRIBERS:
                raise AgentBusy("too many event listeners")
            self._subscribers.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[EventPayload]) -> None:
        with self._sub_lock:
            self._subscribers = [(lp, q) for lp, q in self._subscribers if q is not queue]

    # --- status ---

    def _states(self) -> dict[str, ReaderState]:
        """The monitor's snapshot once it has one (no PC/SC round trip per request: the
        monitor wakes on every change), the backend's own answer before that."""
        return self.monitor.states if self.monitor.running else self.backend.states()

    def status(self) -> StatusPayload:
        """Non-blocking once the monitor runs: answered from its snapshot."""
        readers: list[ReaderPayload] = []
        for name, state in self._states().items():
            identity = identify(state.atr, smartcard_list=False) if state.atr else None
            readers.append(
                {
                    "name": name,
                    "card_present": state.card_present,
                    "atr": state.atr.hex().upper() if state.atr else None,
                    "card": {"family": identity.family.value, "name": identity.name}
                    if identity
                    else None,
                    "busy": self._lock_for(name).locked(),
                }
            )
        return {
            **self.version(),
            "state": "running",
            "pin_provider": self.prompt.name,
            "readers": readers,
        }

    def version(self) -> VersionPayload:
        return {"name": "cardkit-agent", "version": __version__}

    # --- shared steps ---

    def _lock_for(self, reader: str) -> threading.Lock:
        return self._lock_in(self._locks, reader)

    def _lock_in(self, table: dict[str, threading.Lock], name: str) -> threading.Lock:
        """``table``'s lock for ``name``, made at its first use."""
        with self._locks_guard:
            return table.setdefault(name, threading.Lock())

    @contextmanager
    def _reader(self, reader: str) -> Iterator[None]:
        lock = self._lock_for(reader)
        if not lock.acquire(blocking=False):
            raise ReaderBusy(f"{reader} is busy with another request")
        try:
            yield
        finally:
            lock.release()

    def _check_consent(self, origin: str, row: Endpoint) -> None:
        """The user's decision for this origin and this row's action, asked if there is none.
        One consent question in flight per origin: concurrent requests wait for its answer
        instead of opening dialogs of their own, so twenty "no" and one late "yes" cannot
        race each other; a decision, once recorded, is what every request sees."""
        action = str(row.consent)
        if self.consent.decision(origin, action) is None:
            with self._lock_in(self._questions, origin):
                if self.consent.decision(origin, action) is None:
                    allowed = self.prompt.ask_consent(origin, CONSENT_QUESTIONS[action])
                    self.consent.record(origin, action, allowed)
        if not self.consent.decision(origin, action):
            raise ConsentDenied(f"the user did not allow this site to {action.replace('_', ' ')}")

    def refused(self, origin: str) -> bool:
        """Whether the user refused everything ``origin`` asked: it then gets nothing but
        the refusal."""
        return self.consent.refused(origin)

    def _pick(self, origin: str, family: CardFamily, wanted: str | None) -> str:
        return resolve_reader(
            self.backend,
            wanted,
            family=family,
            chooser=lambda candidates: self._choose(origin, candidates),
        )

    def _choose(self, origin: str, candidates: list[str]) -> str | None:
        """The card question ("quelle carte ?"): one open at a time per site (a page firing requests
        gets ``busy`` for the others, not a pile of dialogs), and after a cancel the same
        cooldown as a cancelled PIN prompt, so that cancelling costs the page something."""
        self._check_cooldown(origin)
        question = self._lock_in(self._choosers, origin)
        if not question.acquire(blocking=False):
            raise ReaderBusy("this site already asks which card to use")
        try:
            chosen = self.prompt.choose_card(origin, candidates)
        finally:
            question.release()
        if chosen is None:
            self._start_cooldown(origin)
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

    def _check_cooldown(self, origin: str) -> None:
        left = self._cooldowns.get(origin, 0.0) - time.monotonic()
        if left > 0:
            raise PinCooldown(
                f"the last PIN prompt of this site failed a moment ago; retry in {left:.0f} s",
                retry_after=math.ceil(left),
            )

    def _start_cooldown(self, origin: str) -> None:
        """After a cancel or a wrong PIN a page cannot prompt again at once: a person must
        not be pushed into typing in a hurry, and tries are too few to spend in bursts."""
        self._cooldowns[origin] = time.monotonic() + self.pin_cooldown

    def authenticate(
        self,
        origin: str,
        nonce: str,
        card: str | None = None,
        format: str | None = None,
    ) -> TokenPayload | WebEidTokenPayload:
        wire = format or CARDKIT_FORMAT
        with self._audited("auth", origin, AUTH.path) as audit:
            audit["format"] = wire
            webeid.check_login_nonce(nonce, wire)
            self._check_cooldown(origin)
            self._check_consent(origin, AUTH)
            reader = self._pick(origin, CardFamily.CPS, card)
            with self._reader(reader):
                face = self.work.face(reader)
                audit["card_type"] = face["card_type"]
                if face["blocked"]:
                    raise PinBlocked("the PIN is blocked")
                request = PinRequest(origin, "votre identification", reader, face["tries_left"])
                login = Login(
                    reader,
                    self._collect_pin(request, face["pinpad"]),
                    origin,
                    nonce,
                    face["certificate"],
                    wire,
                )
                stalled = False
                try:
                    return self.work.create_token(login)
                except WrongPin:
                    self._start_cooldown(origin)
                    raise
                except ReaderTimeout:
                    stalled = True
                    raise
                finally:
                    del login  # and the PIN with it
                    if stalled:  # the answer need not wait for a card that may never answer
                        threading.Thread(
                            target=self._forget_pin, args=(reader,), name="reset", daemon=True
                        ).start()
                    else:
                        self._forget_pin(reader)

    def _collect_pin(self, request: PinRequest, pinpad: bool) -> str | None:
        """The PIN (None: it will be typed on the reader's pad), after the last-try
        confirmation; a cancel starts the site's cooldown."""
        if request.last_try and not self.prompt.confirm_last_try(request):
            self._start_cooldown(request.origin)
            raise PinCancelled("the user stopped before the last try")
        if self.prompt.uses_pinpad:
            if not pinpad:
                raise PinpadUnavailable(f"{request.reader} has no PIN pad")
            if not self.prompt.announce_pinpad(request):
                raise PromptUnavailable("nothing can show which site asks for the PIN")
            log.info("PIN to be typed on the reader's PIN pad (%s)", request.reader)
            return None
        pin = self.prompt.ask_pin(request)
        if pin is None:
            self._start_cooldown(request.origin)
            raise PinCancelled("the user cancelled")
        return pin

    def _forget_pin(self, reader: str) -> None:
        """Reset the card after a login: a PIN left verified would let any local program
        sign without it until the card is pulled."""
        try:
            self.work.reset(reader)
        except CardkitError as exc:  # a card that stopped answering holds no session either
            log.debug("reset after login on %s: %s", reader, exc)

    def read_vitale(self, origin: str, card: str | None = None) -> VitalePayload:
        with self._audited("vitale_read", origin, VITALE.path) as audit:
            audit["card_type"] = "Vitale"
            self._check_consent(origin, VITALE)
            reader = self._pick(origin, CardFamily.VITALE, card)
            with self._reader(reader):
                data = self.work.read_vitale(reader)
            audit["nirs_masked"] = [b["nir_masked"] for b in data["beneficiaries"]]
            return data


def _offer(queue: asyncio.Queue[EventPayload], payload: EventPayload) -> None:
    if not queue.full():  # a slow listener loses events rather than the agent memory
        queue.put_nowait(payload)
