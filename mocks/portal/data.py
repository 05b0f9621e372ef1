"""The mock portal's records: accounts and server-side sessions, in one SQLite file (or
``:memory:``), shared by the portal's threads and processes.

Accounts are found by e-mail, N° d'Assurance Maladie (AM, 9 characters) or FINESS for the
password door, and by the card's account key (``cardkit.portal.account_key``) for the CPS
door. Sessions keep what a session needs (who, how they logged in, the pending CPS nonce,
the CSRF token) on the server; the browser only holds an opaque id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardkit.sqlite import connect

SESSION_TTL = dt.timedelta(hours=8)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Account:
    id: int
    kind: str  # "ps" (health professional), "director" (health centre), "transport"
    display_name: str
    email: str | None
    am_number: str | None
    finess: str | None
    card_key: str | None  # RPPS:..., ADELI:..., CPE:...
    password_hash: str | None
    last_login: str | None


_COLUMNS = "id, kind, display_name, email, am_number, finess, card_key, password_hash, last_login"


class PortalData:
    def __init__(self, path: str | Path = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = connect(path)
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS accounts (
              id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
              display_name TEXT NOT NULL, email TEXT, am_number TEXT UNIQUE,
              finess TEXT UNIQUE, card_key TEXT UNIQUE, password_hash TEXT, last_login TEXT);
            CREATE INDEX IF NOT EXISTS accounts_email ON accounts (email);
            CREATE TABLE IF NOT EXISTS sessions (
              id TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS links (
              digest TEXT PRIMARY KEY, account_id INTEGER NOT NULL, expires REAL NOT NULL,
              used INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS outbox (
              id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL,
              subject TEXT NOT NULL, body TEXT NOT NULL, at REAL NOT NULL);
            """
        )

    # --- accounts ---

    def _one(self, where: str, value: str) -> list[Account]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM accounts WHERE {where} = ?",  # noqa: S608 - fixed names
                (value,),
            ).fetchall()
        return [Account(*row) for row in rows]

    def by_identifier(self, identifier: str) -> list[Account]:
        """The accounts an identifier typed at the password door names (several when an
        e-mail is shared)."""
        text = identifier.strip()
        if "@" in text:
            return self._one("lower(email)", text.lower())
        compact = text.replace(" ", "")
        return self._one("am_number", compact) or self._one("finess", compact)

    def by_card(self, card_key: str) -> Account | None:
        found = self._one("card_key", card_key)
        return found[0] if found else None

    def get(self, account_id: int) -> Account | None:
        found = self._one("id", str(account_id))
        return found[0] if found else None

    def create(self, **fields: Any) -> Account:
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with self._lock:
            cursor = self._db.execute(
                f"INSERT INTO accounts ({names}) VALUES ({marks})",  # noqa: S608 - our names
                tuple(fields.values()),
            )
        account = self.get(int(cursor.lastrowid or 0))
        assert account is not None
        return account

    def touch_login(self, account: Account, at: dt.datetime) -> str | None:
        """Record this login; the previous one (what the home page shows), from the record
        the caller already read."""
        with self._lock:
            self._db.execute(
                "UPDATE accounts SET last_login = ? WHERE id = ?", (at.isoformat(), account.id)
            )
        return account.last_login

    def all(self) -> list[Account]:
        with self._lock:
            query = f"SELECT {_COLUMNS} FROM accounts ORDER BY id"  # noqa: S608 - fixed names
            rows = self._db.execute(query).fetchall()
        return [Account(*row) for row in rows]

    def set_password(self, account_id: int, password_hash: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE accounts SET password_hash = ? WHERE id = ?", (password_hash, account_id)
            )

    # --- single-use links and the mock e-mail outbox ---

    def new_link(self, account_id: int, ttl: dt.timedelta) -> str:
        """A link token; only its SHA-256 is stored (a leaked database opens no account)."""
        token = secrets.token_urlsafe(32)
        expires = (dt.datetime.now(dt.UTC) + ttl).timestamp()
        with self._lock:
            self._db.execute(
                "INSERT INTO links (digest, account_id, expires) VALUES (?, ?, ?)",
                (_digest(token), account_id, expires),
            )
        return token

    def link_account(self, token: str) -> int | None:
        """The account a still-valid link opens (without using it)."""
        with self._lock:
            row = self._db.execute(
                "SELECT account_id FROM links WHERE digest = ? AND used = 0 AND expires > ?",
                (_digest(token), dt.datetime.now(dt.UTC).timestamp()),
            ).fetchone()
        return int(row[0]) if row else None

    def use_link(self, token: str) -> int | None:
        """Use the link, once: of two concurrent uses one gets the account, the other None."""
        with self._lock:
            row = self._db.execute(
                "UPDATE links SET used = 1 WHERE digest = ? AND used = 0 AND expires > ? "
                "RETURNING account_id",
                (_digest(token), dt.datetime.now(dt.UTC).timestamp()),
            ).fetchone()
        return int(row[0]) if row else None

    def send_mail(self, recipient: str, subject: str, body: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (recipient, subject, body, at) VALUES (?, ?, ?, ?)",
                (recipient, subject, body, dt.datetime.now(dt.UTC).timestamp()),
            )

    def outbox(self) -> list[dict[str, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT recipient, subject, body, at FROM outbox ORDER BY id DESC LIMIT 50"
            ).fetchall()
        return [
            {
                "to": r,
                "subject": s,
                "body": b,
                "at": dt.datetime.fromtimestamp(at, dt.UTC).astimezone().strftime("%d/%m/%Y %H:%M"),
            }
            for r, s, b, at in rows
        ]

    # --- sessions ---

    def new_session(self, data: dict[str, Any]) -> str:
        session_id = secrets.token_urlsafe(32)
        expires = (dt.datetime.now(dt.UTC) + SESSION_TTL).timestamp()
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?)", (session_id, json.dumps(data), expires)
            )
        return session_id

    def session(self, session_id: str | None) -> dict[str, Any] | None:
        if not session_id or len(session_id) > 100:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT data, expires FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        if row is None or row[1] < dt.datetime.now(dt.UTC).timestamp():
            return None
        data: dict[str, Any] = json.loads(row[0])
        return data

    def save_session(self, session_id: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE sessions SET data = ? WHERE id = ?", (json.dumps(data), session_id)
            )

    def drop_session(self, session_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
