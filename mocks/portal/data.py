"""The mock portal's records: accounts, the insurer's file on professionals (what the clé de
sécurité and the letter by post are checked against), single-use links and the mock
outboxes (e-mail and post), in one SQLite file shared by the portal's threads and processes.

Accounts are found by e-mail, N° d'Assurance Maladie (AM, 9 characters) or FINESS for the
password door, and by the card's account key (``cardkit.portal.account_key``) for the CPS
door. Sessions are not here (see :mod:`mocks.portal.sessions`): they may live in Redis.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from cardkit.sqlite import Database


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


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
    must_change: bool  # a temporary password (by post): changed at first login
    password_expires: float | None  # when the temporary password stops working
    email_verified: bool
    previous_login: str | None  # the login before last_login: "Dernière connexion" after one


@dataclass(frozen=True)
class Dossier:
    """What the insurer knows of a professional or structure (not an account)."""

    number: str  # N° AM (9) or N° FINESS (9)
    display_name: str
    category: str  # medecin, infirmier, sage-femme, pharmacie, laboratoire, transporteur, ...
    nir: str | None
    iban_tail: str | None  # the last 4 characters of the professional IBAN
    address: str


_COLUMNS = (
    "id, kind, display_name, email, am_number, finess, card_key, password_hash, last_login, "
    "must_change, password_expires, email_verified, previous_login"
)
#: Columns added after the first release of the mock, for files made by it.
_ADDED = {
    "accounts": {
        "must_change": "INTEGER NOT NULL DEFAULT 0",
        "password_expires": "REAL",
        "email_verified": "INTEGER NOT NULL DEFAULT 1",
        "previous_login": "TEXT",
    },
    "links": {"purpose": "TEXT NOT NULL DEFAULT 'reset'", "payload": "TEXT"},
    "outbox": {"channel": "TEXT NOT NULL DEFAULT 'email'"},
}


class PortalData:
    def __init__(self, db: Database | str = ":memory:") -> None:
        self.db = Database.of(db)
        self.db.script(
            """
            CREATE TABLE IF NOT EXISTS accounts (
              id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
              display_name TEXT NOT NULL, email TEXT, am_number TEXT UNIQUE,
              finess TEXT UNIQUE, card_key TEXT UNIQUE, password_hash TEXT, last_login TEXT);
            CREATE INDEX IF NOT EXISTS accounts_email ON accounts (email);
            CREATE TABLE IF NOT EXISTS links (
              digest TEXT PRIMARY KEY, account_id INTEGER NOT NULL, expires REAL NOT NULL,
              used INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS outbox (
              id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL,
              subject TEXT NOT NULL, body TEXT NOT NULL, at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS dossiers (
              number TEXT PRIMARY KEY, display_name TEXT NOT NULL, category TEXT NOT NULL,
              nir TEXT, iban_tail TEXT, address TEXT NOT NULL);
            """
        )
        with self.db.transaction():
            for table, columns in _ADDED.items():
                have = {row[1] for row in self.db.all(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in have:
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def secret(self, name: str = "portal") -> bytes:
        """The portal's secret (CSRF tokens, login challenges): made by the first process
        that opens the file, the same for every process after it."""
        self.db.execute(
            "INSERT OR IGNORE INTO secrets VALUES (?, ?)", (name, secrets.token_bytes(32))
        )
        return bytes(self.db.one("SELECT value FROM secrets WHERE name = ?", (name,))[0])

    # --- accounts ---

    def _find(self, where: str, value: str) -> list[Account]:
        rows = self.db.all(
            f"SELECT {_COLUMNS} FROM accounts WHERE {where} = ?",  # noqa: S608 - fixed names
            (value,),
        )
        return [_account(row) for row in rows]

    def by_identifier(self, identifier: str) -> list[Account]:
        """The accounts an identifier typed at the password door names (several when an
        e-mail is shared)."""
        text = identifier.strip()
        if "@" in text:
            return self._find("lower(email)", text.lower())
        compact = text.replace(" ", "")
        return self._find("am_number", compact) or self._find("finess", compact)

    def _record_login(self, where: str, value: object, at: dt.datetime) -> Account | None:
        row = self.db.one(
            "UPDATE accounts SET previous_login = last_login, last_login = ? "  # noqa: S608
            f"WHERE {where} = ? RETURNING {_COLUMNS}",  # fixed names
            (at.isoformat(), value),
        )
        return _account(row) if row else None

    def login_by_card(self, card_key: str, at: dt.datetime) -> Account | None:
        """The card's account with this login recorded, in one statement: the CPS door
        needs both, and a login is the portal's hot path."""
        return self._record_login("card_key", card_key, at)

    def get(self, account_id: int) -> Account | None:
        found = self._find("id", str(account_id))
        return found[0] if found else None

    def create(self, **fields: Any) -> Account:
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cursor = self.db.execute(
            f"INSERT INTO accounts ({names}) VALUES ({marks})",  # noqa: S608 - our names
            tuple(fields.values()),
        )
        account = self.get(int(cursor.lastrowid or 0))
        assert account is not None
        return account

    def touch_login(self, account: Account, at: dt.datetime) -> Account:
        """The account with this login recorded (its ``previous_login`` is what the home
        page shows)."""
        touched = self._record_login("id", account.id, at)
        assert touched is not None, "an account is never deleted"
        return touched

    def all(self) -> list[Account]:
        query = f"SELECT {_COLUMNS} FROM accounts ORDER BY id"  # noqa: S608 - fixed names
        return [_account(row) for row in self.db.all(query)]

    def set_password(
        self, account_id: int, password_hash: str, *, temporary_until: float | None = None
    ) -> None:
        """A chosen password (``temporary_until`` None), or a temporary one that must be
        changed at first login and stops working at ``temporary_until``."""
        self.db.execute(
            "UPDATE accounts SET password_hash = ?, must_change = ?, password_expires = ? "
            "WHERE id = ?",
            (password_hash, temporary_until is not None, temporary_until, account_id),
        )

    def set_email(self, account_id: int, email: str, *, verified: bool = True) -> None:
        """The account's address: confirmed (its link was used), or declared and awaiting
        its link."""
        self.db.execute(
            "UPDATE accounts SET email = ?, email_verified = ? WHERE id = ?",
            (email, verified, account_id),
        )

    # --- the insurer's file ---

    def add_dossier(self, dossier: Dossier) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO dossiers VALUES (?, ?, ?, ?, ?, ?)",
            (
                dossier.number,
                dossier.display_name,
                dossier.category,
                dossier.nir,
                dossier.iban_tail,
                dossier.address,
            ),
        )

    def dossier(self, number: str) -> Dossier | None:
        row = self.db.one(
            "SELECT number, display_name, category, nir, iban_tail, address FROM dossiers "
            "WHERE number = ?",
            (number.replace(" ", ""),),
        )
        return Dossier(*row) if row else None

    def dossiers(self) -> list[Dossier]:
        rows = self.db.all(
            "SELECT number, display_name, category, nir, iban_tail, address FROM dossiers "
            "ORDER BY number"
        )
        return [Dossier(*row) for row in rows]

    # --- single-use links and the mock outboxes ---

    def new_link(
        self, account_id: int, ttl: dt.timedelta, purpose: str = "reset", payload: str = ""
    ) -> str:
        """A link token; only its SHA-256 is stored (a leaked database opens no account)."""
        token = secrets.token_urlsafe(32)
        self.db.execute(
            "INSERT INTO links (digest, account_id, expires, purpose, payload) "
            "VALUES (?, ?, ?, ?, ?)",
            (_digest(token), account_id, _now() + ttl.total_seconds(), purpose, payload),
        )
        return token

    def link_account(self, token: str, purpose: str = "reset") -> int | None:
        """The account a still-valid link opens (without using it)."""
        row = self.db.one(
            "SELECT account_id FROM links WHERE digest = ? AND purpose = ? AND used = 0 "
            "AND expires > ?",
            (_digest(token), purpose, _now()),
        )
        return int(row[0]) if row else None

    def use_link(self, token: str, purpose: str = "reset") -> tuple[int, str] | None:
        """Use the link, once: of two concurrent uses one gets (account, payload), the other
        None."""
        row = self.db.one(
            "UPDATE links SET used = 1 WHERE digest = ? AND purpose = ? AND used = 0 "
            "AND expires > ? RETURNING account_id, payload",
            (_digest(token), purpose, _now()),
        )
        return (int(row[0]), row[1] or "") if row else None

    def send(self, recipient: str, subject: str, body: str, channel: str = "email") -> None:
        """Into the mock outbox: ``email`` (a mailbox) or ``post`` (a letter)."""
        self.db.execute(
            "INSERT INTO outbox (recipient, subject, body, at, channel) VALUES (?, ?, ?, ?, ?)",
            (recipient, subject, body, _now(), channel),
        )

    def outbox(self, channel: str = "email") -> list[dict[str, str]]:
        rows = self.db.all(
            "SELECT recipient, subject, body, at FROM outbox WHERE channel = ? "
            "ORDER BY id DESC LIMIT 50",
            (channel,),
        )
        return [
            {
                "to": r,
                "subject": s,
                "body": b,
                "at": dt.datetime.fromtimestamp(at, dt.UTC).astimezone().strftime("%d/%m/%Y %H:%M"),
            }
            for r, s, b, at in rows
        ]

    def purge(self) -> int:
        """Links past their expiry (used or not) go; the outbox keeps its last 500."""
        gone = self.db.execute("DELETE FROM links WHERE expires <= ?", (_now(),)).rowcount
        gone += self.db.execute(
            "DELETE FROM outbox WHERE id <= (SELECT max(id) - 500 FROM outbox)"
        ).rowcount
        return gone


def _account(row: Any) -> Account:
    values = list(row)
    values[9] = bool(values[9])
    values[11] = bool(values[11])
    return Account(*values)
