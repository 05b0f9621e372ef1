"""What the portal sends (e-mails, letters by post), written in the same transaction as the
change that sends it (a transactional outbox): a mailer drains it, and no change is ever
recorded without its message, nor a message sent for a change that rolled back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from cardkit.sqlite import Database


class Channel(Enum):
    EMAIL = "email"
    POST = "post"  # a letter to the practice's address


@dataclass(frozen=True)
class Message:
    recipient: str
    subject: str
    body: str
    channel: Channel
    at: dt.datetime


class Outbox(Protocol):
    def send(self, recipient: str, subject: str, body: str, channel: Channel) -> None: ...


class SqliteOutbox:
    KEEP = 500  # the newest messages kept once sent (the mock portal shows them)

    def __init__(self, db: Database) -> None:
        self.db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "recipient TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, at REAL NOT NULL)"
        )
        db.add_columns("outbox", {"channel": "TEXT NOT NULL DEFAULT 'email'"})

    def send(self, recipient: str, subject: str, body: str, channel: Channel) -> None:
        self.db.execute(
            "INSERT INTO outbox (recipient, subject, body, at, channel) VALUES (?, ?, ?, ?, ?)",
            (recipient, subject, body, dt.datetime.now(dt.UTC).timestamp(), channel.value),
        )

    def latest(self, channel: Channel, limit: int = 50) -> list[Message]:
        rows = self.db.all(
            "SELECT recipient, subject, body, at FROM outbox WHERE channel = ? "
            "ORDER BY id DESC LIMIT ?",
            (channel.value, limit),
        )
        return [
            Message(r, s, b, channel, dt.datetime.fromtimestamp(at, dt.UTC)) for r, s, b, at in rows
        ]

    def purge(self) -> int:
        return int(
            self.db.execute(
                "DELETE FROM outbox WHERE id <= (SELECT max(id) - ? FROM outbox)", (self.KEEP,)
            ).rowcount
        )
