"""Account lockout: the third wrong password blocks the account for a while, and a valid CPS
login of the same professional unblocks it at once (as amelipro does).

Exact under concurrency, on one portal process or many: an attempt is *reserved* before its
password is checked, and reservations count against the policy like failures do. With three
failures allowed, at most three passwords of a burst are ever checked against the hash; the
others are answered "blocked" at once, while the account is blocked or while its last
allowed attempts are being checked. A blocked answer costs no hash. A right password
succeeds only if the account is still unblocked when its result is recorded, and only
failures that count can block: one block, journaled once, however many arrive together.

Each step is atomic in every store: SQLite (one ``BEGIN IMMEDIATE`` transaction), memory (a
lock), Redis (one Lua script, :mod:`cardkit.portal.redis_lockout`). A reservation whose
process died before settling it stops counting after ``LockoutPolicy.reservation_ttl``.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from cardkit.errors import CardkitError
from cardkit.sqlite import Database


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 3
    block_for: dt.timedelta = dt.timedelta(minutes=30)
    #: How long a reserved attempt holds its place: far longer than a password check takes,
    #: short enough that a crashed process does not hold the account for long.
    reservation_ttl: dt.timedelta = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class LockState:
    failures: int
    blocked_until: dt.datetime | None

    def blocked(self, now: dt.datetime) -> bool:
        return self.blocked_until is not None and now < self.blocked_until

    def minutes_left(self, now: dt.datetime) -> int:
        """Whole minutes, rounded up (what "réessayer dans X min" shows)."""
        if not self.blocked(now):
            return 0
        assert self.blocked_until is not None
        return max(1, math.ceil((self.blocked_until - now).total_seconds() / 60))


CLEAR = LockState(0, None)


@dataclass(frozen=True)
class Reserved:
    """The store's answer to a reservation: an id to settle, or why there is none."""

    id: str | None
    #: When refused: the block's end, or (every allowed attempt in flight) the end of the
    #: block those attempts would cause.
    until: dt.datetime | None = None


class Outcome(Enum):
    RIGHT = "right"
    WRONG = "wrong"
    #: Neither: the check could not be made or its result does not count (an error, a
    #: temporary password that expired).
    VOID = "void"


@dataclass(frozen=True)
class Settled:
    state: LockState
    #: A wrong attempt that blocked the account: once per block.
    blocked_now: bool = False
    #: A right attempt on an account still unblocked: its failures are forgotten.
    accepted: bool = False


class AccountBlocked(CardkitError):
    """The account is blocked after too many wrong passwords; a CPS login unblocks it."""

    code = "account_blocked"
    http_status = 423

    def __init__(self, minutes_left: int) -> None:
        super().__init__(f"account blocked for {minutes_left} more minute(s)")
        self.minutes_left = minutes_left


class LockoutStore(Protocol):
    def reserve(self, key: str, now: dt.datetime, policy: LockoutPolicy) -> Reserved:
        """Reserve one attempt, atomically: refused while blocked or while failures and
        attempts in flight already reach the policy's maximum."""
        ...

    def settle(
        self, key: str, reservation: str, outcome: Outcome, now: dt.datetime, policy: LockoutPolicy
    ) -> Settled:
        """Record a reserved attempt's outcome and drop the reservation, atomically."""
        ...

    def state(self, key: str, now: dt.datetime) -> LockState: ...

    def release(self, key: str, now: dt.datetime) -> bool:
        """Forget the failures and any block (a CPS login), saying whether it was blocked."""
        ...


def _settled(
    state: LockState, outcome: Outcome, now: dt.datetime, policy: LockoutPolicy
) -> Settled:
    """The state after an attempt's outcome: the rule every store applies in its atomic
    step (Redis in its Lua script), then keeps ``settled.state`` if it changed."""
    if state.blocked(now):
        return Settled(state)  # blocked meanwhile (a reservation that outlived its ttl)
    if outcome is Outcome.RIGHT:
        return Settled(CLEAR, accepted=True)
    if outcome is Outcome.VOID:
        return Settled(state)
    failures = state.failures + 1
    until = now + policy.block_for if failures >= policy.max_failures else None
    return Settled(LockState(failures, until), blocked_now=until is not None)


def _refusal(state: LockState, pending: int, now: dt.datetime, policy: LockoutPolicy) -> Reserved:
    if state.blocked(now):
        return Reserved(None, state.blocked_until)
    if state.failures + pending >= policy.max_failures:
        return Reserved(None, now + policy.block_for)
    return Reserved(secrets.token_hex(8))


class MemoryLockoutStore:
    """One process only (tests, a single-process portal)."""

    def __init__(self) -> None:
        self._states: dict[str, LockState] = {}
        self._pending: dict[str, dict[str, dt.datetime]] = {}
        self._lock = threading.Lock()

    def _current(self, key: str, now: dt.datetime) -> LockState:
        state = self._states.get(key, CLEAR)
        if state.blocked_until is not None and now >= state.blocked_until:
            return CLEAR  # the block ran out: a fresh start
        return state

    def reserve(self, key: str, now: dt.datetime, policy: LockoutPolicy) -> Reserved:
        with self._lock:
            pending = self._pending.setdefault(key, {})
            for stale in [r for r, expires in pending.items() if expires <= now]:
                del pending[stale]
            answer = _refusal(self._current(key, now), len(pending), now, policy)
            if answer.id is not None:
                pending[answer.id] = now + policy.reservation_ttl
            return answer

    def settle(
        self, key: str, reservation: str, outcome: Outcome, now: dt.datetime, policy: LockoutPolicy
    ) -> Settled:
        with self._lock:
            self._pending.get(key, {}).pop(reservation, None)
            state = self._current(key, now)
            settled = _settled(state, outcome, now, policy)
            if settled.accepted:
                self._states.pop(key, None)
            elif settled.state != state:
                self._states[key] = settled.state
            return settled

    def state(self, key: str, now: dt.datetime) -> LockState:
        with self._lock:
            return self._current(key, now)

    def release(self, key: str, now: dt.datetime) -> bool:
        with self._lock:
            state = self._states.pop(key, CLEAR)
        return state.blocked(now)


class SqliteLockoutStore:
    """The default: a file shared by the portal's threads and processes (or a
    :class:`~cardkit.sqlite.Database` shared with the portal's other stores). A blocked
    account is answered by one read, without the write lock."""

    def __init__(self, db: Database | str | Path = ":memory:") -> None:
        self._db = Database.of(db)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS lockout (account TEXT PRIMARY KEY, "
            "failures INTEGER NOT NULL, blocked_until REAL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS lockout_attempts (account TEXT NOT NULL, "
            "id TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (account, id)) WITHOUT ROWID"
        )

    def _row(self, key: str, now: dt.datetime) -> LockState:
        row = self._db.one("SELECT failures, blocked_until FROM lockout WHERE account = ?", (key,))
        if row is None:
            return CLEAR
        until = dt.datetime.fromtimestamp(row[1], dt.UTC) if row[1] is not None else None
        if until is not None and now >= until:
            return CLEAR
        return LockState(int(row[0]), until)

    def reserve(self, key: str, now: dt.datetime, policy: LockoutPolicy) -> Reserved:
        state = self._row(key, now)
        if state.blocked(now):  # the common refusal: no write lock, no transaction
            return Reserved(None, state.blocked_until)
        with self._db.transaction():
            self._db.execute(
                "DELETE FROM lockout_attempts WHERE account = ? AND expires <= ?",
                (key, now.timestamp()),
            )
            pending = self._db.one(
                "SELECT count(*) FROM lockout_attempts WHERE account = ?", (key,)
            )[0]
            answer = _refusal(self._row(key, now), int(pending), now, policy)
            if answer.id is not None:
                expires = now + policy.reservation_ttl
                self._db.execute(
                    "INSERT INTO lockout_attempts VALUES (?, ?, ?)",
                    (key, answer.id, expires.timestamp()),
                )
            return answer

    def settle(
        self, key: str, reservation: str, outcome: Outcome, now: dt.datetime, policy: LockoutPolicy
    ) -> Settled:
        with self._db.transaction():
            self._db.execute(
                "DELETE FROM lockout_attempts WHERE account = ? AND id = ?", (key, reservation)
            )
            state = self._row(key, now)
            settled = _settled(state, outcome, now, policy)
            if settled.accepted:
                self._db.execute("DELETE FROM lockout WHERE account = ?", (key,))
            elif settled.state != state:
                until = settled.state.blocked_until
                self._db.execute(
                    "INSERT OR REPLACE INTO lockout VALUES (?, ?, ?)",
                    (key, settled.state.failures, until.timestamp() if until else None),
                )
            return settled

    def state(self, key: str, now: dt.datetime) -> LockState:
        return self._row(key, now)

    def release(self, key: str, now: dt.datetime) -> bool:
        row = self._db.one("DELETE FROM lockout WHERE account = ? RETURNING blocked_until", (key,))
        return bool(row and row[0] is not None and now.timestamp() < row[0])

    def close(self) -> None:
        self._db.close()


class Attempt:
    """One reserved attempt (see :meth:`Lockout.attempt`); settled once."""

    def __init__(self, lockout: Lockout, key: str, reservation: str) -> None:
        self.lockout = lockout
        self.key = key
        self.reservation = reservation
        self.settled: Settled | None = None

    def _settle(self, outcome: Outcome) -> Settled:
        if self.settled is not None:
            raise RuntimeError("an attempt is settled once")
        lockout = self.lockout
        now = lockout.now()
        self.settled = lockout.store.settle(
            self.key, self.reservation, outcome, now, lockout.policy
        )
        return self.settled

    def wrong(self) -> Settled:
        """The password (or key) was wrong: one failure counted."""
        return self._settle(Outcome.WRONG)

    def right(self) -> Settled:
        """It was right: ``accepted`` unless the account was blocked meanwhile."""
        return self._settle(Outcome.RIGHT)

    def void(self) -> Settled:
        """No result that counts: the reservation is given back."""
        return self._settle(Outcome.VOID)


class Lockout:
    """What a portal calls around a password (or any guessable secret) check."""

    def __init__(self, store: LockoutStore, policy: LockoutPolicy | None = None) -> None:
        self.store = store
        self.policy = policy or LockoutPolicy()

    @staticmethod
    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    @contextmanager
    def attempt(self, key: str) -> Iterator[Attempt]:
        """A reserved attempt for ``key``, or :class:`AccountBlocked` before anything is
        checked. Settle it with ``wrong()``, ``right()`` or ``void()``; one left unsettled
        (an exception in the check) is given back."""
        now = self.now()
        reserved = self.store.reserve(key, now, self.policy)
        if reserved.id is None:
            assert reserved.until is not None
            raise AccountBlocked(
                LockState(self.policy.max_failures, reserved.until).minutes_left(now)
            )
        attempt = Attempt(self, key, reserved.id)
        try:
            yield attempt
        finally:
            if attempt.settled is None:
                attempt.void()

    def state(self, key: str) -> LockState:
        return self.store.state(key, self.now())

    def blocked_minutes(self, key: str) -> int:
        """What "blocked" says when a right attempt was refused because a block was set
        meanwhile: its minutes left, at least one (the block may end as this is asked)."""
        now = self.now()
        return max(1, self.store.state(key, now).minutes_left(now))

    def release(self, key: str, now: dt.datetime | None = None) -> bool:
        """Failures and any block forgotten: a valid CPS login of the account's
        professional (blocked or not, the account is usable at once), a reset by e-mail
        link. Whether it was blocked (for the event journal)."""
        return self.store.release(key, now or self.now())
