"""Passwords, as amelipro's guides describe them: at least 8 characters with upper case,
lower case, a digit and a special character; hashed with Argon2id (argon2-cffi, the
``portal`` extra), memory-hard, with parameters measured on this class of machine.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from cardkit.errors import CardkitError
from cardkit.portal.messages import text
from cardkit.portal.outcomes import Refused

#: The alphabet of temporary passwords (no 0/O, 1/l/I).
UPPER, LOWER, DIGITS, SPECIAL = (
    "ABCDEFGHJKLMNPQRSTUVWXYZ",
    "abcdefghijkmnopqrstuvwxyz",
    "23456789",
    "!?@#%+-",
)

MIN_LENGTH = 8
MAX_LENGTH = 128  # bounded: hashing a megabyte-long "password" is a denial of service

#: Argon2id with OWASP's first recommended setting (46 MiB, 1 pass, 1 lane): memory-hard, and
#: 35-50 ms per check on a 2-core machine, inside the 20-100 ms a login can afford (64 MiB and
#: 3 passes took 145 ms here). Measured by tests/unit/test_portal_lib.py's timing print.
ARGON2_PARAMETERS = {"time_cost": 1, "memory_cost": 46 * 1024, "parallelism": 1}


class WeakPassword(CardkitError, ValueError):
    """The password does not meet the policy; ``missing`` says what it lacks, in French."""

    code = "password_weak"
    http_status = 400

    def __init__(self, missing: list[str]) -> None:
        super().__init__(text("password_weak", missing=", ".join(missing)))
        self.missing = missing


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = MIN_LENGTH

    def problems(self, password: str) -> list[str]:
        """What the password lacks, as the page should say it (French)."""
        missing = []
        if len(password) < self.min_length:
            missing.append(text("password_min_length", count=self.min_length))
        if len(password) > MAX_LENGTH:
            missing.append(text("password_max_length", count=MAX_LENGTH))
        if not any(c.isupper() for c in password):
            missing.append(text("password_upper"))
        if not any(c.islower() for c in password):
            missing.append(text("password_lower"))
        if not any(c.isdigit() for c in password):
            missing.append(text("password_digit"))
        if not any(not c.isalnum() and not c.isspace() for c in password):
            missing.append(text("password_special"))
        return missing

    def refusal(self, password: str, confirmation: str) -> Refused | None:
        """What is wrong with a new password typed twice; None if nothing."""
        missing = self.problems(password)
        if missing:
            return Refused("password_weak", {"missing": ", ".join(missing)})
        if password != confirmation:
            return Refused("passwords_differ")
        return None

    def check(self, password: str) -> None:
        missing = self.problems(password)
        if missing:
            raise WeakPassword(missing)

    def temporary(self, length: int = 12) -> str:
        """A random password this policy accepts, for a letter: printed on paper and typed
        by hand, so without the characters people misread (0/O, 1/l/I)."""
        length = max(length, self.min_length, 4)
        classes = (UPPER, LOWER, DIGITS, SPECIAL)
        chosen = [secrets.choice(c) for c in classes]
        alphabet = "".join(classes)
        chosen += [secrets.choice(alphabet) for _ in range(length - len(chosen))]
        for i in range(len(chosen) - 1, 0, -1):  # Fisher-Yates with the OS's randomness
            j = secrets.randbelow(i + 1)
            chosen[i], chosen[j] = chosen[j], chosen[i]
        password = "".join(chosen)
        assert not self.problems(password)
        return password


class PasswordHasher:
    """Argon2id hashes in the PHC string format; rehash when the parameters change."""

    def __init__(self, **parameters: Any) -> None:
        from argon2 import PasswordHasher as Argon2

        self._argon2 = Argon2(**{**ARGON2_PARAMETERS, **parameters})

    def hash(self, password: str) -> str:
        if len(password) > MAX_LENGTH:
            raise WeakPassword([text("password_max_length", count=MAX_LENGTH)])
        return str(self._argon2.hash(password))

    def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches; a malformed stored hash is a mismatch, never an
        exception a page would show."""
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        if len(password) > MAX_LENGTH:
            return False
        try:
            return bool(self._argon2.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return bool(self._argon2.check_needs_rehash(stored))
