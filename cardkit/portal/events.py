"""The account's event journal: what "Mes derniers évènements" lists.

Entries carry an English kind (stable, for storage and code); the page shows its label from
the message catalogue. Details never include a password, a NIR or a token.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from cardkit.portal.messages import text
from cardkit.sqlite import Database


class EventKind(Enum):
    CARD_LOGIN = "card_login"
    PSC_LOGIN = "psc_login"
    PASSWORD_LOGIN = "password_login"  # noqa: S105 - an event name, not a password
    PASSWORD_RESET = "password_reset"  # noqa: S105
    PASSWORD_CHANGED = "password_changed"  # noqa: S105
    EMAIL_CHANGED = "email_changed"
    ACCOUNT_BLOCKED = "account_blocked"
    UNBLOCKED_BY_CARD = "unblocked_by_card"
    UNBLOCKED_BY_PSC = "unblocked_by_psc"
    ACCOUNT_CREATED = "account_created"

    @property
    def label(self) -> str:
        return text("event_" + self.value)


@dataclass(frozen=True)
class Event:
    account: str
    kind: EventKind
    at: dt.datetime

    def shown(self) -> str:
        """As the guides print them: "27/12/2018 - 12:15 Connexion par carte CPS"."""
        local = self.at.astimezone()
        return f"{local:%d/%m/%Y - %H:%M} {self.kind.label}"


class EventJournal(Protocol):
    def record(self, account: str, kind: EventKind, at: dt.datetime | None = None) -> Event: ...

    def latest(self, account: str, limit: int = 10) -> list[Event]: ...


class SqliteEventJournal:
    """Append-only, so the row id alone orders events of the same instant: no AUTOINCREMENT,
    whose sequence table would be one more page written by every login's commit."""

    def __init__(self, db: Database | str | Path = ":memory:") -> None:
        self._db = Database.of(db)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, "
            "account TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS events_account ON events (account, at)")

    def record(self, account: str, kind: EventKind, at: dt.datetime | None = None) -> Event:
        event = Event(account, kind, at or dt.datetime.now(dt.UTC))
        self._db.execute(
            "INSERT INTO events (account, kind, at) VALUES (?, ?, ?)",
            (account, kind.value, event.at.timestamp()),
        )
        return event

    def latest(self, account: str, limit: int = 10) -> list[Event]:
        rows = self._db.all(
            "SELECT kind, at FROM events WHERE account = ? ORDER BY at DESC, id DESC LIMIT ?",
            (account, limit),
        )
        return [
            Event(account, EventKind(kind), dt.datetime.fromtimestamp(at, dt.UTC))
            for kind, at in rows
        ]
