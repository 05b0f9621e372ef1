"""Account lockout: the third wrong password in a row blocks the account for a while, and a
valid CPS login of the same professional unblocks it at once (as amelipro does).

The count and the block are one atomic step in every store, so fifty concurrent wrong
passwords block the account once and never count more than the policy's failures, on one
portal process or many (SQLite: one ``BEGIN IMMEDIATE`` transaction; Redis: one Lua script).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cardkit.errors import CardkitError
from cardkit.sqlite import Database


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 3
    block_for: dt.timedelta = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class LockState:
    failures: int
    blocked_until: dt.datetime | None
    #: From record_failure: whether this failure was counted (not while already blocked).
    #: ``counted and blocked`` is the failure that blocked the account: once per block,
    #: however many arrive together (what the event journal records).
    counted: bool = True

    def blocked(self, now: dt.datetime) -> bool:
        return self.blocked_until is not None and now < self.blocked_until

    def minutes_left(self, now: dt.datetime) -> int:
        """Whole minutes, rounded up (what "réessayer dans X min" shows)."""
        if not self.blocked(now):
            return 0
        assert self.blocked_until is not None
        return max(1, math.ceil((self.blocked_until - now).total_seconds() / 60))


class AccountBlocked(CardkitError):
    """The account is blocked after too many wrong passwords; a CPS login unblocks it."""

    code = "account_blocked"
    http_status = 423

    def __init__(self, minutes_left: int) -> None:
        super().__init__(f"account blocked for {minutes_left} more minute(s)")
        self.minutes_left = minutes_left


class LockoutStore(Protocol):
    def record_failure(self, account: str, now: dt.datetime, policy: LockoutPolicy) -> LockState:
        """Count one wrong password, atomically; block when the count reaches the policy's
        maximum. Nothing is counted while the account is blocked."""
        ...

    def state(self, account: str, now: dt.datetime) -> LockState: ...

    def clear(self, account: str) -> None:
        """Forget the failures and any block (right password, or a CPS login)."""
        ...

    def release(self, account: str, now: dt.datetime) -> bool:
        """:meth:`clear`, saying whether the account was blocked: one step, not two."""
        ...


_CLEAR = LockState(0, None)


class MemoryLockoutStore:
    def __init__(self) -> None:
        self._states: dict[str, LockState] = {}
        self._lock = threading.Lock()

    def record_failure(self, account: str, now: dt.datetime, policy: LockoutPolicy) -> LockState:
        with self._lock:
            state = self._current(account, now)
            if state.blocked(now):
                return dataclasses.replace(state, counted=False)
            failures = state.failures + 1
            until = now + policy.block_for if failures >= policy.max_failures else None
            self._states[account] = LockState(failures, until)
            return self._states[account]

    def _current(self, account: str, now: dt.datetime) -> LockState:
        state = self._states.get(account, _CLEAR)
        if state.blocked_until is not None and now >= state.blocked_until:
            return _CLEAR  # the block ran out: a fresh start
        return state

    def state(self, account: str, now: dt.datetime) -> LockState:
        with self._lock:
            return self._current(account, now)

    def clear(self, account: str) -> None:
        with self._lock:
            self._states.pop(account, None)

    def release(self, account: str, now: dt.datetime) -> bool:
        with self._lock:
            state = self._states.pop(account, _CLEAR)
        return state.blocked(now)


class SqliteLockoutStore:
    """The default: a file shared by the portal's threads and processes (or a
    :class:`~cardkit.sqlite.Database` shared with the portal's other stores)."""

    def __init__(self, db: Database | str | Path = ":memory:") -> None:
        self._db = Database.of(db)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS lockout (account TEXT PRIMARY KEY, "
            "failures INTEGER NOT NULL, blocked_until REAL)"
        )

    def _row(self, account: str, now: dt.datetime) -> LockState:
        row = self._db.one(
            "SELECT failures, blocked_until FROM lockout WHERE account = ?", (account,)
        )
        if row is None:
            return _CLEAR
        until = dt.datetime.fromtimestamp(row[1], dt.UTC) if row[1] is not None else None
        if until is not None and now >= until:
            return _CLEAR
        return LockState(int(row[0]), until)

    def record_failure(self, account: str, now: dt.datetime, policy: LockoutPolicy) -> LockState:
        with self._db.transaction():  # the count and the block: one step, across processes
            state = self._row(account, now)
            if state.blocked(now):
                state = dataclasses.replace(state, counted=False)
            else:
                failures = state.failures + 1
                until = now + policy.block_for if failures >= policy.max_failures else None
                self._db.execute(
                    "INSERT OR REPLACE INTO lockout VALUES (?, ?, ?)",
                    (account, failures, until.timestamp() if until else None),
                )
                state = LockState(failures, until)
            return state

    def state(self, account: str, now: dt.datetime) -> LockState:
        return self._row(account, now)

    def clear(self, account: str) -> None:
        self._db.execute("DELETE FROM lockout WHERE account = ?", (account,))

    def release(self, account: str, now: dt.datetime) -> bool:
        row = self._db.one(
            "DELETE FROM lockout WHERE account = ? RETURNING blocked_until", (account,)
        )
        return bool(row and row[0] is not None and now.timestamp() < row[0])

    def close(self) -> None:
        self._db.close()


class Lockout:
    """What a portal calls around its password check."""

    def __init__(self, store: LockoutStore, policy: LockoutPolicy | None = None) -> None:
        self.store = store
        self.policy = policy or LockoutPolicy()

    @staticmethod
    def _now(now: dt.datetime | None) -> dt.datetime:
        return now or dt.datetime.now(dt.UTC)

    def check(self, account: str, now: dt.datetime | None = None) -> None:
        """Before checking a password: a blocked account is refused without looking at it."""
        now = self._now(now)
        state = self.store.state(account, now)
        if state.blocked(now):
            raise AccountBlocked(state.minutes_left(now))

    def failed(self, account: str, now: dt.datetime | None = None) -> LockState:
        """A wrong password; the state after it (blocked at the policy's count)."""
        return self.store.record_failure(account, self._now(now), self.policy)

    def succeeded(self, account: str) -> None:
        """The right password (on an account that was not blocked): the count starts over."""
        self.store.clear(account)

    def unblock_by_card(self, account: str, now: dt.datetime | None = None) -> bool:
        """A valid CPS login of the account's professional: blocked or not, the account is
        usable at once. Whether it was blocked (for the event journal)."""
        return self.store.release(account, self._now(now))
