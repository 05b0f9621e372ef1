"""One way to open the embedded stores' SQLite files (nonces, lockout, events, the mock
portal's records): shared by threads and by processes on the same file."""

from __future__ import annotations

import sqlite3
from pathlib import Path


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
