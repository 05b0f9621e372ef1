"""Server-side sessions, in SQLite (one portal process, or several on one file) or in Redis
(portal instances on several machines). The browser holds an opaque id; what the session
knows (who, by which door, a pending account) stays here.

Only ids this portal issued and still stores are used: a cookie naming anything else (made
up, planted, expired) gets a fresh id (:func:`open_session`), so nobody can choose the id a
victim's browser will use. A login, and every change of what the session may do, moves the
session to a new id (:meth:`SessionStore.rotate`).

A signed-in session carries the account's *generation* (see :mod:`cardkit.portal.accounts`):
a password change or reset bumps it, which ends every other session of the account at its
next request.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from cardkit.sqlite import Database

#: A signed-in session's life.
SESSION_TTL = dt.timedelta(hours=8)
#: A visitor's session (a page seen, nothing done yet): what a bot costs, short.
VISITOR_TTL = dt.timedelta(hours=2)

COOKIE = "portail_session"


def cookie_name(secure: bool, name: str = COOKIE) -> str:
    """On HTTPS the ``__Host-`` prefix: the browser then accepts the cookie only from this
    very host, over HTTPS, for path ``/``, so a sibling subdomain or a plain-HTTP page
    cannot plant one."""
    return f"__Host-{name}" if secure else name


_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)


def new_id() -> str:
    return secrets.token_urlsafe(32)


def well_formed(session_id: str | None) -> bool:
    """An id as :func:`new_id` makes them (what a cookie must hold to be looked up)."""
    return session_id is not None and _ID.fullmatch(session_id) is not None


@dataclass
class Session:
    id: str
    data: dict[str, Any] = field(default_factory=dict)
    #: Issued by this request: the response must set the cookie.
    fresh: bool = False


class SessionStore(Protocol):
    def get(self, session_id: str | None) -> dict[str, Any] | None:
        """The live session's data, or None (unknown, expired, malformed id)."""
        ...

    def create(self, data: dict[str, Any], ttl: dt.timedelta = VISITOR_TTL) -> str:
        """A new session under a new id."""
        ...

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        """New data for a session this portal issued; a live one keeps its expiry."""
        ...

    def rotate(self, session_id: str, data: dict[str, Any]) -> str:
        """The session under a new id with the full lifetime; the old id is gone."""
        ...

    def drop(self, session_id: str) -> None: ...

    def purge(self) -> int: ...


def open_session(store: SessionStore, cookie: str | None) -> Session:
    """The session a request's cookie names, or a fresh stored one."""
    if well_formed(cookie):
        assert cookie is not None
        data = store.get(cookie)
        if data is not None:
            return Session(cookie, data)
    return Session(store.create({}), {}, fresh=True)


def _at(delta: dt.timedelta = dt.timedelta(0)) -> float:
    return (dt.datetime.now(dt.UTC) + delta).timestamp()


class SqliteSessions:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, data TEXT NOT NULL, "
            "expires REAL NOT NULL) WITHOUT ROWID"
        )

    def get(self, session_id: str | None) -> dict[str, Any] | None:
        if not well_formed(session_id):
            return None
        row = self.db.one(
            "SELECT data FROM sessions WHERE id = ? AND expires > ?", (session_id, _at())
        )
        return json.loads(row[0]) if row else None

    def create(self, data: dict[str, Any], ttl: dt.timedelta = VISITOR_TTL) -> str:
        new = new_id()
        self.db.execute("INSERT INTO sessions VALUES (?, ?, ?)", (new, json.dumps(data), _at(ttl)))
        return new

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO sessions VALUES (?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET "
            "data = ?2, expires = CASE WHEN expires > ?4 THEN expires ELSE ?3 END",
            (session_id, json.dumps(data), _at(VISITOR_TTL), _at()),
        )

    def rotate(self, session_id: str, data: dict[str, Any]) -> str:
        new = new_id()
        with self.db.transaction():
            self.db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            self.db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?)", (new, json.dumps(data), _at(SESSION_TTL))
            )
        return new

    def drop(self, session_id: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def purge(self) -> int:
        return int(self.db.execute("DELETE FROM sessions WHERE expires <= ?", (_at(),)).rowcount)

    def count(self) -> int:
        return int(self.db.one("SELECT count(*) FROM sessions")[0])


class RedisSessions:
    """One key per session, expiring by itself; a rotation is one MULTI (the new key set,
    the old one deleted)."""

    def __init__(self, client: Any, prefix: str = "cardkit:session:") -> None:
        self.client = client
        self.prefix = prefix

    def get(self, session_id: str | None) -> dict[str, Any] | None:
        if not well_formed(session_id):
            return None
        raw = self.client.get(f"{self.prefix}{session_id}")
        return json.loads(raw) if raw else None

    def create(self, data: dict[str, Any], ttl: dt.timedelta = VISITOR_TTL) -> str:
        new = new_id()
        self.client.set(self.prefix + new, json.dumps(data), px=int(ttl.total_seconds() * 1000))
        return new

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        key, raw = self.prefix + session_id, json.dumps(data)
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, raw, xx=True, keepttl=True)
        pipe.set(key, raw, nx=True, px=int(VISITOR_TTL.total_seconds() * 1000))
        pipe.execute()

    def rotate(self, session_id: str, data: dict[str, Any]) -> str:
        new = new_id()
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.prefix + new, json.dumps(data), px=int(SESSION_TTL.total_seconds() * 1000))
        pipe.delete(self.prefix + session_id)
        pipe.execute()
        return new

    def drop(self, session_id: str) -> None:
        self.client.delete(self.prefix + session_id)

    def purge(self) -> int:
        return 0  # Redis expires keys itself

    def count(self) -> int:
        return sum(1 for _ in self.client.scan_iter(match=self.prefix + "*", count=500))
