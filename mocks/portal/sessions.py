"""The mock portal's server-side sessions, in SQLite (one portal process, or several on one
file) or in Redis (portal instances on several machines). The browser holds an opaque id;
what the session knows (who, by which door, a pending card) stays here.

A visitor's id is stored only once its session holds something (:meth:`Sessions.save`, a
login's :meth:`Sessions.rotate`): the identification page, which every visitor and every
bot sees, writes nothing, and a login has no old row to replace. The page's CSRF token and
login challenge need no row (both are MACs of the id). An id the store does not know is an
empty session, whoever made it up: what a session holds is only ever reached under the id
it was saved or rotated to.

Both stores expire sessions after :data:`SESSION_TTL`: Redis by itself, SQLite by a purge
the portal runs now and then (:meth:`SqliteSessions.purge`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from typing import Any, Protocol

from cardkit.sqlite import Database

SESSION_TTL = dt.timedelta(hours=8)


_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)


def new_id() -> str:
    return secrets.token_urlsafe(32)


def well_formed(session_id: str) -> bool:
    """An id as :func:`new_id` makes them (what a cookie must hold to be used as one)."""
    return _ID.fullmatch(session_id) is not None


class Sessions(Protocol):
    def get(self, session_id: str | None) -> dict[str, Any] | None: ...

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        """Stored under that id, whether it was already or not."""
        ...

    def rotate(self, session_id: str, data: dict[str, Any]) -> str:
        """The session under a new id (at every login: an id planted before the login cannot
        ride it); the old id is gone."""
        ...

    def drop(self, session_id: str) -> None: ...

    def purge(self) -> int: ...


def _expires() -> float:
    return (dt.datetime.now(dt.UTC) + SESSION_TTL).timestamp()


class SqliteSessions:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, data TEXT NOT NULL, "
            "expires REAL NOT NULL) WITHOUT ROWID"
        )

    def get(self, session_id: str | None) -> dict[str, Any] | None:
        if session_id is None or not well_formed(session_id):
            return None
        row = self.db.one(
            "SELECT data FROM sessions WHERE id = ? AND expires > ?",
            (session_id, dt.datetime.now(dt.UTC).timestamp()),
        )
        return json.loads(row[0]) if row else None

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        """A live session keeps its expiry; a new or expired one gets the full lifetime."""
        self.db.execute(
            "INSERT INTO sessions VALUES (?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET "
            "data = ?2, expires = CASE WHEN expires > ?4 THEN expires ELSE ?3 END",
            (session_id, json.dumps(data), _expires(), dt.datetime.now(dt.UTC).timestamp()),
        )

    def rotate(self, session_id: str, data: dict[str, Any]) -> str:
        new = new_id()
        with self.db.transaction():
            self.db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            self.db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?)", (new, json.dumps(data), _expires())
            )
        return new

    def drop(self, session_id: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def purge(self) -> int:
        cursor = self.db.execute(
            "DELETE FROM sessions WHERE expires <= ?", (dt.datetime.now(dt.UTC).timestamp(),)
        )
        return cursor.rowcount

    def count(self) -> int:
        return int(self.db.one("SELECT count(*) FROM sessions")[0])


class RedisSessions:
    """One key per session, expiring by itself; a rotation is one MULTI (the new key set,
    the old one deleted)."""

    def __init__(self, client: Any, prefix: str = "portail:session:") -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_ms = int(SESSION_TTL.total_seconds() * 1000)

    def get(self, session_id: str | None) -> dict[str, Any] | None:
        if session_id is None or not well_formed(session_id):
            return None
        raw = self.client.get(self.prefix + session_id)
        return json.loads(raw) if raw else None

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        """An existing session keeps its expiry; a new one gets the full lifetime."""
        key, raw = self.prefix + session_id, json.dumps(data)
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, raw, xx=True, keepttl=True)
        pipe.set(key, raw, nx=True, px=self.ttl_ms)
        pipe.execute()

    def rotate(self, session_id: str, data: dict[str, Any]) -> str:
        new = new_id()
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.prefix + new, json.dumps(data), px=self.ttl_ms)
        pipe.delete(self.prefix + session_id)
        pipe.execute()
        return new

    def drop(self, session_id: str) -> None:
        self.client.delete(self.prefix + session_id)

    def purge(self) -> int:
        return 0  # Redis expires keys itself
