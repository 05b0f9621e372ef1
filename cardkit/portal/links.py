"""Single-use links sent by e-mail (password reset, e-mail confirmation), in SQLite.

Only a link's SHA-256 is stored: a leaked database opens no account. A link works once,
before it expires, and only while it is the newest of its kind for its account (issuing one
voids the older ones) and the account's generation is the one it was issued in (a password
change or reset voids every outstanding link).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from enum import Enum

from cardkit.sqlite import Database

#: How long an e-mail confirmation link works (a reset link: one hour, see settings).
EMAIL_LINK_TTL = dt.timedelta(hours=24)


class LinkPurpose(Enum):
    RESET = "reset"  # a new password, chosen by whoever holds the account's mailbox
    VERIFY = "verify"  # a new account's address
    EMAIL = "email"  # a change of address, effective when the link is used


@dataclass(frozen=True)
class UsedLink:
    account_id: int
    payload: str  # what the link was issued for (the address it confirms)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


#: The link is still good: unused, unexpired, issued in the account's current generation.
_VALID = (
    "digest = ? AND purpose = ? AND used = 0 AND expires > ? AND generation = "
    "(SELECT generation FROM accounts WHERE accounts.id = links.account_id)"
)


class SqliteLinks:
    """Shares the accounts' :class:`~cardkit.sqlite.Database` (a link's validity reads the
    account's generation)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS links (digest TEXT PRIMARY KEY, "
            "account_id INTEGER NOT NULL, expires REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0)"
        )
        db.add_columns(
            "links",
            {
                "purpose": "TEXT NOT NULL DEFAULT 'reset'",
                "payload": "TEXT",
                "generation": "INTEGER NOT NULL DEFAULT 0",
            },
        )
        db.execute("CREATE INDEX IF NOT EXISTS links_account ON links (account_id, purpose)")

    def issue(
        self, account_id: int, purpose: LinkPurpose, ttl: dt.timedelta, payload: str = ""
    ) -> str:
        """A new link's token; the account's older links of this purpose stop working."""
        token = secrets.token_urlsafe(32)
        with self.db.transaction():
            self.db.execute(
                "UPDATE links SET used = 1 WHERE account_id = ? AND purpose = ? AND used = 0",
                (account_id, purpose.value),
            )
            self.db.execute(
                "INSERT INTO links (digest, account_id, expires, purpose, payload, generation) "
                "SELECT ?, id, ?, ?, ?, generation FROM accounts WHERE id = ?",
                (_digest(token), _now() + ttl.total_seconds(), purpose.value, payload, account_id),
            )
        return token

    def peek(self, token: str, purpose: LinkPurpose) -> int | None:
        """The account a still-valid link opens, without using it (a page showing the
        link's button)."""
        row = self.db.one(
            f"SELECT account_id FROM links WHERE {_VALID}",  # noqa: S608 - fixed text
            (_digest(token), purpose.value, _now()),
        )
        return int(row[0]) if row else None

    def use(self, token: str, purpose: LinkPurpose) -> UsedLink | None:
        """Use the link, once: of two concurrent uses one gets it, the other None."""
        row = self.db.one(
            f"UPDATE links SET used = 1 WHERE {_VALID} RETURNING account_id, payload",  # noqa: S608
            (_digest(token), purpose.value, _now()),
        )
        return UsedLink(int(row[0]), row[1] or "") if row else None

    def purge(self) -> int:
        """Links past their expiry, used or not."""
        return int(self.db.execute("DELETE FROM links WHERE expires <= ?", (_now(),)).rowcount)
