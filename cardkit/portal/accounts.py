"""Portal accounts in SQLite: who may log in, by which identifiers, with which password.

Identifiers at the password door (amelipro's guides): an e-mail address, the N° d'Assurance
Maladie (AM, 9 characters) or the N° FINESS of a health centre. Only a *verified* e-mail
identifies an account: an address someone merely typed (a new account's, an unconfirmed
change) cannot take another account's identifier. The card door finds an account by the
card's account key (:func:`cardkit.portal.rules.account_key`).

Each account has a *generation*, bumped by every password change or reset: sessions and
links remember the generation they were made in and stop working when it moves on.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Any

from cardkit.errors import CardkitError
from cardkit.sqlite import Database


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
    generation: int

    @property
    def key(self) -> str:
        """The account's key in the lockout and the event journal."""
        return str(self.id)

    def temporary_expired(self, now: dt.datetime) -> bool:
        return self.must_change and (self.password_expires or 0) < now.timestamp()


class AccountExists(CardkitError):
    """An account with this card, N° AM or FINESS exists already."""

    code = "account_exists"
    http_status = 409


_COLUMNS = (
    "id, kind, display_name, email, am_number, finess, card_key, password_hash, last_login, "
    "must_change, password_expires, email_verified, previous_login, generation"
)
#: Columns added after the first release, for files made before them.
_ADDED = {
    "must_change": "INTEGER NOT NULL DEFAULT 0",
    "password_expires": "REAL",
    "email_verified": "INTEGER NOT NULL DEFAULT 1",
    "previous_login": "TEXT",
    "generation": "INTEGER NOT NULL DEFAULT 0",
}
#: What a new account may be created with (anything else is a programming error).
_CREATE_FIELDS = frozenset(_COLUMNS.split(", ")) - {"id", "generation", "previous_login"}


def _account(row: Any) -> Account:
    values = list(row)
    values[9] = bool(values[9])
    values[11] = bool(values[11])
    return Account(*values)


class SqliteAccounts:
    def __init__(self, db: Database | str = ":memory:") -> None:
        self.db = Database.of(db)
        self.db.script(
            """
            CREATE TABLE IF NOT EXISTS accounts (
              id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
              display_name TEXT NOT NULL, email TEXT, am_number TEXT UNIQUE,
              finess TEXT UNIQUE, card_key TEXT UNIQUE, password_hash TEXT, last_login TEXT);
            CREATE INDEX IF NOT EXISTS accounts_email ON accounts (email);
            """
        )
        self.db.add_columns("accounts", _ADDED)

    def _find(self, where: str, value: object) -> list[Account]:
        rows = self.db.all(
            f"SELECT {_COLUMNS} FROM accounts WHERE {where} = ?",  # noqa: S608 - fixed names
            (value,),
        )
        return [_account(row) for row in rows]

    def by_identifier(self, identifier: str) -> list[Account]:
        """The accounts an identifier typed at the password door names: several when a
        verified e-mail is shared (doctors of one practice), none for an unverified one."""
        text = identifier.strip()
        if "@" in text:
            return self._find("email_verified = 1 AND lower(email)", text.lower())
        compact = text.replace(" ", "")
        return self._find("am_number", compact) or self._find("finess", compact)

    def get(self, account_id: int) -> Account | None:
        found = self._find("id", account_id)
        return found[0] if found else None

    def current(self, account_id: int, generation: int) -> Account | None:
        """The account, if ``generation`` is still its own (a session's or a link's)."""
        account = self.get(account_id)
        return account if account is not None and account.generation == generation else None

    def create(self, **fields: Any) -> Account:
        unknown = set(fields) - _CREATE_FIELDS
        if unknown:
            raise TypeError(f"not an account field: {sorted(unknown)}")
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        try:
            cursor = self.db.execute(
                f"INSERT INTO accounts ({names}) VALUES ({marks})",  # noqa: S608 - checked names
                tuple(fields.values()),
            )
        except sqlite3.IntegrityError:  # the same card, N° AM or FINESS, created meanwhile
            raise AccountExists("an account exists already") from None
        account = self.get(int(cursor.lastrowid or 0))
        assert account is not None
        return account

    def _record_login(self, where: str, value: object, at: dt.datetime) -> Account | None:
        row = self.db.one(
            "UPDATE accounts SET previous_login = last_login, last_login = ? "  # noqa: S608
            f"WHERE {where} = ? RETURNING {_COLUMNS}",  # fixed names
            (at.isoformat(), value),
        )
        return _account(row) if row else None

    def login_by_card(self, card_key: str, at: dt.datetime) -> Account | None:
        """The card's account with this login recorded, in one statement: the card door
        needs both, and a login is the portal's hot path."""
        return self._record_login("card_key", card_key, at)

    def record_login(self, account: Account, at: dt.datetime) -> Account:
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
    ) -> int:
        """A chosen password (``temporary_until`` None), or a temporary one that must be
        changed at first login and stops working at ``temporary_until``. The account's new
        generation: every session and link made before is void."""
        row = self.db.one(
            "UPDATE accounts SET password_hash = ?, must_change = ?, password_expires = ?, "
            "generation = generation + 1 WHERE id = ? RETURNING generation",
            (password_hash, temporary_until is not None, temporary_until, account_id),
        )
        assert row is not None, "an account is never deleted"
        return int(row[0])

    def set_email(self, account_id: int, email: str, *, verified: bool) -> None:
        """The account's address: confirmed (its link was used), or declared and awaiting
        its link (not an identifier until then)."""
        self.db.execute(
            "UPDATE accounts SET email = ?, email_verified = ? WHERE id = ?",
            (email, verified, account_id),
        )
