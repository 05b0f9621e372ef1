"""Challenges (single-use nonces) and the stores that make them single-use.

A portal issues a nonce, the browser hands it to the agent, the card signs a binding of the
origin and the nonce, and the portal consumes the nonce when it validates the token: exactly
once, before it expires. The store is the only state of the portal side; consume must be
atomic, which each store guarantees in its own way (a lock, a SQL transaction, Redis GETDEL).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cardkit.errors import CardkitError
from cardkit.sqlite import Database

NONCE_BYTES = 32
MIN_NONCE_BYTES = 32
#: A nonce as it travels: base64url without padding, 32 bytes (43 characters) or more.
NONCE_PATTERN = r"[A-Za-z0-9_-]{43,256}"
DEFAULT_TTL = dt.timedelta(minutes=5)


class NonceError(CardkitError, ValueError):
    """A nonce that is malformed or too short to be unguessable."""

    code = "nonce_invalid"
    http_status = 400


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_nonce(nonce: str) -> bytes:
    """Decode a base64url nonce and insist on at least 32 random bytes (the agent refuses
    anything shorter: a short nonce makes the signed token replayable by guessing)."""
    if not re.fullmatch(NONCE_PATTERN, nonce):
        raise NonceError("a nonce is base64url, 43 to 256 characters")
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    except ValueError:
        raise NonceError("a nonce is base64url") from None
    if len(raw) < MIN_NONCE_BYTES:
        raise NonceError(f"a nonce has at least {MIN_NONCE_BYTES} random bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class Challenge:
    nonce: str  # base64url, no padding
    expires_at: dt.datetime

    @classmethod
    def new(cls, ttl: dt.timedelta = DEFAULT_TTL) -> Challenge:
        raw = secrets.token_bytes(NONCE_BYTES)
        nonce = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        return cls(nonce, _now() + ttl)

    @property
    def expired(self) -> bool:
        return _now() >= self.expires_at


class ConsumeResult:
    """Why consume() said no, when it did."""

    OK = "ok"
    UNKNOWN = "unknown"  # never issued (or forgotten long after it expired)
    REPLAYED = "replayed"  # consumed already
    EXPIRED = "expired"


class NonceStore(Protocol):
    def issue(self, challenge: Challenge) -> None: ...

    def consume(self, nonce: str) -> str:
        """Mark ``nonce`` used; returns a :class:`ConsumeResult` value. Atomic: of many
        concurrent calls for one nonce, at most one gets ``ok``."""
        ...

    def claim(self, nonce: str, expires_at: dt.datetime) -> bool:
        """Record ``nonce`` as used if it never was: True the first time, False after. For
        nonces that prove themselves (signed, see :mod:`cardkit.portal.challenge`): nothing
        is stored when they are issued, only when they are used. Atomic like consume()."""
        ...

    def purge_expired(self) -> int: ...


#: Consumed and expired nonces are remembered this long, to answer "replayed"/"expired".
TOMBSTONE = dt.timedelta(minutes=10)


class MemoryNonceStore:
    """For one process (tests, a single-worker portal)."""

    def __init__(self) -> None:
        self._items: dict[str, list[Any]] = {}  # nonce -> [expires, used]
        self._lock = threading.Lock()

    def issue(self, challenge: Challenge) -> None:
        with self._lock:
            self._items[challenge.nonce] = [challenge.expires_at, False]

    def consume(self, nonce: str) -> str:
        with self._lock:
            item = self._items.get(nonce)
            if item is None:
                return ConsumeResult.UNKNOWN
            if item[1]:
                return ConsumeResult.REPLAYED
            item[1] = True
            expires: dt.datetime = item[0]
        return ConsumeResult.EXPIRED if _now() >= expires else ConsumeResult.OK

    def claim(self, nonce: str, expires_at: dt.datetime) -> bool:
        with self._lock:
            if nonce in self._items:
                return False
            self._items[nonce] = [expires_at, True]
            return True

    def purge_expired(self) -> int:
        limit = _now() - TOMBSTONE
        with self._lock:
            stale = [n for n, (e, _) in self._items.items() if e <= limit]
            for n in stale:
                del self._items[n]
        return len(stale)


class SqliteNonceStore:
    """Embedded and durable: the default for a single portal process (several threads), or
    several on one file. The table is keyed by the nonce alone (WITHOUT ROWID): a claim
    writes one b-tree, not a row and an index of it."""

    def __init__(self, db: Database | str | Path = ":memory:") -> None:
        self._db = Database.of(db)
        self.path = self._db.path
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS nonces ("
            "nonce TEXT PRIMARY KEY, expires REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0) "
            "WITHOUT ROWID"
        )

    def issue(self, challenge: Challenge) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO nonces (nonce, expires) VALUES (?, ?)",
            (challenge.nonce, challenge.expires_at.timestamp()),
        )

    def consume(self, nonce: str) -> str:
        # One UPDATE ... RETURNING is atomic, also across processes sharing the file: of two
        # consumers, one changes the row and the other finds it used.
        with self._db.lock:
            row = self._db.one(
                "UPDATE nonces SET used = 1 WHERE nonce = ? AND used = 0 RETURNING expires",
                (nonce,),
            )
            if row is None:
                seen = self._db.one("SELECT 1 FROM nonces WHERE nonce = ?", (nonce,))
                return ConsumeResult.REPLAYED if seen else ConsumeResult.UNKNOWN
        return ConsumeResult.EXPIRED if _now().timestamp() >= row[0] else ConsumeResult.OK

    def claim(self, nonce: str, expires_at: dt.datetime) -> bool:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO nonces (nonce, expires, used) VALUES (?, ?, 1)",
            (nonce, expires_at.timestamp()),
        )
        return cursor.rowcount == 1

    def purge_expired(self) -> int:
        cursor = self._db.execute(
            "DELETE FROM nonces WHERE expires <= ?", ((_now() - TOMBSTONE).timestamp(),)
        )
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()
