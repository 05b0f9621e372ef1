"""Everything a portal keeps, opened from one setting.

``sqlite:PATH`` (or a bare path, or ``:memory:``): one SQLite file holds the records
(accounts, links, journal, outbox, the insurer's file) and the sessions, login challenges and
lockout, so that a CPS login is one commit, and several portal processes on one machine
share it. ``redis://...``: sessions, challenges and lockout in Redis, which portal instances
on several machines share; the records stay in a SQLite file (``records``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from cardkit.auth.challenge import NonceStore, SqliteNonceStore
from cardkit.portal.accounts import SqliteAccounts
from cardkit.portal.events import SqliteEventJournal
from cardkit.portal.insurer import SqliteInsurerFile
from cardkit.portal.links import SqliteLinks
from cardkit.portal.lockout import LockoutStore, SqliteLockoutStore
from cardkit.portal.outbox import SqliteOutbox
from cardkit.portal.sessions import SessionStore, SqliteSessions
from cardkit.sqlite import Database


def parse_store(spec: str) -> tuple[str, str]:
    """``("redis", url)`` or ``("sqlite", path)``; a clear ``ValueError`` otherwise."""
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return "redis", spec
    path = spec.removeprefix("sqlite:")
    if not path or "://" in path:
        raise ValueError(f"unknown store {spec!r}: expected sqlite:PATH, PATH or redis://...")
    return "sqlite", path


@dataclass
class Stores:
    db: Database  # the records' file
    sessions: SessionStore
    nonces: NonceStore
    lockout: LockoutStore
    accounts: SqliteAccounts
    links: SqliteLinks
    outbox: SqliteOutbox
    journal: SqliteEventJournal
    insurer: SqliteInsurerFile
    #: The login challenges' claims live in the records' file: a CPS login's claim and its
    #: account changes can be one commit.
    claims_in_db: bool

    @classmethod
    def open(cls, store: str = ":memory:", records: str = "portal.db") -> Stores:
        """The stores ``store`` names (see the module's text); ``records`` is the SQLite
        file of the records when ``store`` is Redis. A Redis that does not answer is said
        now, not at the first visitor."""
        kind, where = parse_store(store)
        sessions: SessionStore
        nonces: NonceStore
        lockout: LockoutStore
        if kind == "redis":
            from cardkit.auth.redis_store import RedisNonceStore, redis_client
            from cardkit.portal.redis_lockout import RedisLockoutStore
            from cardkit.portal.sessions import RedisSessions

            client: Any = redis_client(url=where)
            client.ping()
            db = Database(records)
            sessions = RedisSessions(client, prefix="portail:session:")
            nonces = RedisNonceStore(client, prefix="portail:nonce:")
            lockout = RedisLockoutStore(client, prefix="portail:lockout:")
        else:
            db = Database(where)
            sessions = SqliteSessions(db)
            nonces = SqliteNonceStore(db)
            lockout = SqliteLockoutStore(db)
        accounts = SqliteAccounts(db)  # first: links read the accounts' generations
        return cls(
            db=db,
            sessions=sessions,
            nonces=nonces,
            lockout=lockout,
            accounts=accounts,
            links=SqliteLinks(db),
            outbox=SqliteOutbox(db),
            journal=SqliteEventJournal(db),
            insurer=SqliteInsurerFile(db),
            claims_in_db=kind == "sqlite",
        )

    def secret(self, name: str = "portal") -> bytes:
        """A secret of the portal's (CSRF tokens, login challenges): made by the first
        process that opens the records, the same for every process after it."""
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL)"
        )
        self.db.execute(
            "INSERT OR IGNORE INTO secrets VALUES (?, ?)", (name, secrets.token_bytes(32))
        )
        return bytes(self.db.one("SELECT value FROM secrets WHERE name = ?", (name,))[0])

    def purge(self) -> int:
        """Expired sessions, challenges and links, and the outbox past what it keeps."""
        return (
            self.sessions.purge()
            + self.nonces.purge_expired()
            + self.links.purge()
            + self.outbox.purge()
        )
