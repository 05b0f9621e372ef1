"""What the insurer knows of professionals and structures (not accounts): what a clé de
sécurité and a temporary password by post are checked against and sent to. A real portal
reads its insurer's own file through :class:`InsurerFile`; :class:`SqliteInsurerFile` keeps
a copy (the mock portal's demo data, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cardkit.sqlite import Database


@dataclass(frozen=True)
class Dossier:
    number: str  # N° AM (9) or N° FINESS (9)
    display_name: str
    category: str  # medecin, infirmier, sage-femme, pharmacie, laboratoire, transporteur, ...
    nir: str | None
    iban_tail: str | None  # the last 4 characters of the professional IBAN
    address: str


class InsurerFile(Protocol):
    def dossier(self, number: str) -> Dossier | None: ...


class SqliteInsurerFile:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.execute(
            "CREATE TABLE IF NOT EXISTS dossiers (number TEXT PRIMARY KEY, "
            "display_name TEXT NOT NULL, category TEXT NOT NULL, nir TEXT, iban_tail TEXT, "
            "address TEXT NOT NULL)"
        )

    def add(self, dossier: Dossier) -> None:
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
