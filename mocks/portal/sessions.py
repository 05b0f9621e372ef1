"""The mock portal's server-side sessions, in SQLite (one portal process, or several on one
file) or in Redis (portal instances on several machines). The browser holds an opaque id;
what the session knows (who, by which door, the CSRF token, a pending card) stays here.

Both stores expire sessions after :data:`SESSION_TTL`: Redis by itself, SQLite by a purge
the portal runs now and then (:meth:`SqliteSessions.purge`), so the table does not grow
with every visitor who never logs in.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any, Protocol

from cardkit.sqlite import Database

SESSION_TTL = dt.timedelta(hours=8)
MAX_ID = 100


def _new_id() -> str:
    return secrets.token_urlsafe(32)


class Sessions(Protocol):
    def new(self, data: dict[str, Any]) -> str: ...

    def get(self, session_id: str | None) -> dict[str, Any] | None: ...

    def save(self, session_id: str, data: dict[str, Any]) -> None: ...

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
            "expires REAL NOT NULL)"
        )

    def new(self, data: dict[str, Any]) -> str:
        session_id = _new_id()
        self.db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?)", (session_id, json.dumps(data), _expires())
        )
        return session_id

    def get(self, session_id: str | None) -> dict[str, Any] | None:
        if not session_id or len(session_id) > MAX_ID:
            return None
        row = self.db.one(
            "SELECT data FROM sessions WHERE id = ? AND expires > ?",
            (session_id, dt.datetime.now(dt.UTC).timestamp()),
        )
        return json.loads(row[0]) if row else None

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        self.db.execute("UPDATE sessions SET data = ? WHERE id = ?", (json.dumps(data), session_id))

    def rotate(self, session_id: str, data: dict[str, Any]) -> str:
        new = _new_id()
        cursor = self.db.execute(
            "UPDATE sessions SET id = ?, data = ?, expires = ? WHERE id = ?",
            (new, json.dumps(data), _expires(), session_id),
        )
        if cursor.rowcount == 0:  # expired or purged meanwhile
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

    def new(self, data: dict[str, Any]) -> str:
        session_id = _new_id()
        self.client.set(self.prefix + session_id, json.dumps(data), px=self.ttl_ms)
        return session_id

    def get(self, session_id: str | None) -> dict[str, Any] | None:
        if not session_id or len(session_id) > MAX_ID:
            return None
        raw = self.client.get(self.prefix + session_id)
        return json.loads(raw) if raw else None

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        self.client.set(self.prefix + session_id, json.dumps(data), xx=True, keepttl=True)

    def rotate(self, session_id: str, data: dict[str, Any]) -> str:
        new = _new_id()
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.prefix + new, json.dumps(data), px=self.ttl_ms)
        pipe.delete(self.prefix + session_id)
        pipe.execute()
        return new

    def drop(self, session_id: str) -> None:
        self.client.delete(self.prefix + session_id)

    def purge(self) -> int:
        return 0  # Redis expires keys itself
