"""One way to open the embedded stores' SQLite files (nonces, lockout, events, the mock
portal's records): shared by threads and by processes on the same file.

Stores take a :class:`Database` (or a path, for one of their own). Several stores on one
``Database`` share its connection and its lock, so a caller can make their writes one
transaction (:meth:`Database.transaction`): a portal's CPS login updates the session, the
lockout, the journal and the account in one commit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def connect(path: str | Path = ":memory:") -> sqlite3.Connection:
    """Autocommit (each statement its own transaction unless one is begun), WAL so readers
    never wait for the writer, ``synchronous=NORMAL`` (in WAL mode a crash cannot corrupt the
    file; a power cut may lose the last commits, not an fsync per login), and a busy
    timeout so another process's write is waited for rather than failing."""
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=10000")
    return db


class Database:
    """A connection and the lock every user of it takes (reentrant: a store's method called
    inside :meth:`transaction` runs in that transaction)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self.connection = connect(path)
        self.lock = threading.RLock()

    @classmethod
    def of(cls, target: Database | str | Path) -> Database:
        return target if isinstance(target, Database) else cls(target)

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        with self.lock:
            return self.connection.execute(sql, parameters)

    def one(self, sql: str, parameters: Any = ()) -> Any:
        with self.lock:
            return self.connection.execute(sql, parameters).fetchone()

    def all(self, sql: str, parameters: Any = ()) -> list[Any]:
        with self.lock:
            return self.connection.execute(sql, parameters).fetchall()

    def script(self, sql: str) -> None:
        with self.lock:
            self.connection.executescript(sql)

    def add_columns(self, table: str, columns: dict[str, str]) -> None:
        """Columns a newer release added to ``table``, for files an older one made."""
        with self.transaction():
            have = {row[1] for row in self.all(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    self.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    @contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` (the write lock, across processes too) ... ``COMMIT``, rolled
        back on any exception; inside an open transaction, just part of it.

        ``immediate=False`` (``BEGIN``) defers the lock to the first statement: only for a
        transaction whose first statement writes (a read first would pin a snapshot, and
        the later write could fail at once if another process wrote meanwhile)."""
        with self.lock:
            if self.connection.in_transaction:
                yield
                return
            self.connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.connection.close()
