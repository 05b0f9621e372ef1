"""The NIR (numéro d'inscription au répertoire, "numéro de sécurité sociale").

13 characters and a 2-digit key: sex (1), birth year (2), birth month (2), place of birth
(department 2 + commune 3, or overseas department 3 + commune 2, or 99 + country 3), order
number (3). Key = 97 - (N mod 97), N being the 13 characters read as a number after Corsica's
2A/2B become 19/18. A mod-97 key catches every single-character substitution.

Two modes:
- **strict** follows CNAM's rules for certified numbers: sex 1 or 2, month 01-12.
- **lenient** (default) also accepts what real cards carry: sex 3/4 (provisional or special
  registrations), months 20-42 and 50-99 (unknown or fictitious birth months), and
  provisional numbers (NNP: sex 7/8, then 1/2, a 3-digit caisse and an 8-digit order number),
  whose other fields are not a birth date and place and are not checked as such.

A full NIR is personal data: ``str()`` and ``repr()`` give :meth:`Nir.masked`, so that a NIR
formatted into a log line by mistake does not leak; the full number is :attr:`Nir.number`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cardkit.errors import CardkitError

_ALLOWED = re.compile(r"[0-9AB]+")


class NirError(CardkitError, ValueError):
    """Not a valid NIR; the subclass and message say what is wrong."""

    code = "nir_invalid"
    http_status = 400


class NirLengthError(NirError):
    """A NIR has 13 characters, or 15 with its key."""

    code = "nir_length"


class NirCharacterError(NirError):
    """Only digits, and 2A/2B in the department, may appear."""

    code = "nir_character"


class NirSexError(NirError):
    """The first character is not a sex/registration code."""

    code = "nir_sex"


class NirMonthError(NirError):
    """The birth month is not a month (nor, leniently, a special month code)."""

    code = "nir_month"


class NirDepartmentError(NirError):
    """The place of birth is not a department code."""

    code = "nir_department"


class NirKeyMismatch(NirError):
    """The key does not match the 13 characters."""

    code = "nir_key"

    def __init__(self, given: str, expected: str) -> None:
        self.given = given
        self.expected = expected
        super().__init__(f"key {given} does not match the number (expected key {expected})")

    def details(self) -> dict[str, Any]:
        return {"expected_key": self.expected}


def compute_key(body: str) -> str:
    """The 2-digit key of a 13-character NIR body."""
    number = int(body.replace("2A", "19", 1).replace("2B", "18", 1))
    return f"{97 - number % 97:02d}"


@dataclass(frozen=True, slots=True)
class Nir:
    """A parsed NIR. Equality is on the 13 characters and the key."""

    body: str
    key: str

    # --- construction ---

    @classmethod
    def parse(cls, text: str, *, strict: bool = False) -> Nir:
        """Parse 13 or 15 characters, spaces allowed anywhere; 13 characters get their key.

        Raises a :class:`NirError` subclass naming the first problem found.
        """
        compact = "".join(text.split()).upper()
        if len(compact) not in (13, 15):
            raise NirLengthError(f"a NIR has 13 or 15 characters, got {len(compact)}")
        if not _ALLOWED.fullmatch(compact):
            raise NirCharacterError("a NIR has only digits, and 2A or 2B as department")
        body, given_key = compact[:13], compact[13:]
        if not (body.isdigit() or (body[5:7] in ("2A", "2B") and (body[:5] + body[7:]).isdigit())):
            raise NirCharacterError("letters may only appear as department 2A or 2B")
        if given_key and not given_key.isdigit():
            raise NirCharacterError("the key has two digits")
        cls._check_fields(body, strict)
        expected = compute_key(body)
        if given_key and given_key != expected:
            raise NirKeyMismatch(given_key, expected)
        return cls(body, expected)

    @staticmethod
    def _check_fields(body: str, strict: bool) -> None:
        sex = body[0]
        allowed_sex = "12" if strict else "123478"
        if sex not in allowed_sex:
            raise NirSexError(
                f"first character {sex} is not " + ("1 or 2" if strict else "1, 2, 3, 4, 7 or 8")
            )
        if sex in "78":  # NNP: 7/8, 1/2, caisse (3), order (8): no birth date or place
            if not body.isdigit():
                raise NirCharacterError("a provisional number (NNP) has only digits")
            if body[1] not in "12":
                raise NirSexError("a provisional number (NNP) continues with 1 or 2")
            return
        month = int(body[3:5])
        month_ok = 1 <= month <= 12 or (not strict and (20 <= month <= 42 or month >= 50))
        if not month_ok:
            raise NirMonthError(f"birth month {body[3:5]} is not a month")
        if body[5:7] == "00":
            raise NirDepartmentError("department 00 does not exist")

    # --- fields ---

    @property
    def sex(self) -> str:
        return self.body[0]

    @property
    def provisional(self) -> bool:
        """A provisional number (NNP), not (yet) certified by INSEE."""
        return self.sex in "78"

    @property
    def birth_year(self) -> str | None:
        return None if self.provisional else self.body[1:3]

    @property
    def birth_month(self) -> str | None:
        return None if self.provisional else self.body[3:5]

    @property
    def department(self) -> str | None:
        """2 characters (01-95, 2A, 2B, 99 abroad) or 3 for overseas (97x, 98x)."""
        if self.provisional:
            return None
        return self.body[5:8] if self.body[5:7] in ("97", "98") else self.body[5:7]

    @property
    def born_abroad(self) -> bool:
        return self.department == "99"

    @property
    def commune(self) -> str | None:
        """INSEE commune code within the department, or country code when born abroad."""
        if self.provisional:
            return None
        return self.body[8:10] if len(self.department or "") == 3 else self.body[7:10]

    @property
    def order(self) -> str:
        return self.body[5:13] if self.provisional else self.body[10:13]

    @property
    def caisse(self) -> str | None:
        """For provisional numbers only: the caisse that issued it."""
        return self.body[2:5] if self.provisional else None

    @property
    def is_valid(self) -> bool:
        return compute_key(self.body) == self.key

    # --- output ---

    @property
    def number(self) -> str:
        """The full 15 characters. Personal data: never log it (``str()`` is masked)."""
        return self.body + self.key

    def __str__(self) -> str:
        return self.masked()

    def formatted(self) -> str:
        """Grouped as printed on cards: ``1 23 45 67 890 123 45``."""
        b = self.body
        return f"{b[0]} {b[1:3]} {b[3:5]} {b[5:7]} {b[7:10]} {b[10:13]} {self.key}"

    def masked(self) -> str:
        """For logs, audit and screens that need no more: sex, year and month of birth,
        what a practice needs to tell the people on one card apart. Place of birth, order
        number and key stay hidden (with them a NIR can be rebuilt from a few guesses)."""
        b = self.body
        return f"{b[0]} {b[1:3]} {b[3:5]} ** *** *** **"

    def to_dict(self) -> dict[str, Any]:
        """The full number and its fields: for the person who typed or holds it, never logs."""
        return {
            "nir": self.number,
            "formatted": self.formatted(),
            "sex": self.sex,
            "birth_year": self.birth_year,
            "birth_month": self.birth_month,
            "department": self.department,
            "commune": self.commune,
            "order": self.order,
            "key": self.key,
            "provisional": self.provisional,
            "caisse": self.caisse,
        }

    def __repr__(self) -> str:  # never the full number, even in a traceback
        return f"Nir({self.masked()!r})"


def check(text: str, *, strict: bool = False) -> NirError | None:
    """None when ``text`` is a valid NIR, else the error saying why."""
    try:
        Nir.parse(text, strict=strict)
    except NirError as exc:
        return exc
    return None
