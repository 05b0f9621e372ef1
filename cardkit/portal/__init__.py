"""Portal-side building blocks, framework-free: what a real Python portal imports to offer
CPS login, account lockout unblocked by a CPS login, card-based account creation, password
rules and an event journal. Imports nothing from the card stack (no PC/SC, no PKCS#11)."""

from cardkit.portal.accounts import (
    CardDecision,
    account_key,
    may_create_account_by_card,
    may_use_security_key,
    security_key_matches,
)
from cardkit.portal.challenge import LoginChallenges, SessionNonces
from cardkit.portal.events import Event, EventKind, SqliteEventJournal
from cardkit.portal.lockout import (
    AccountBlocked,
    Lockout,
    LockoutPolicy,
    LockState,
    MemoryLockoutStore,
    SqliteLockoutStore,
)
from cardkit.portal.passwords import PasswordHasher, PasswordPolicy, WeakPassword

__all__ = [
    "AccountBlocked",
    "CardDecision",
    "Event",
    "EventKind",
    "LockState",
    "Lockout",
    "LockoutPolicy",
    "LoginChallenges",
    "MemoryLockoutStore",
    "PasswordHasher",
    "PasswordPolicy",
    "SessionNonces",
    "SqliteEventJournal",
    "SqliteLockoutStore",
    "WeakPassword",
    "account_key",
    "may_create_account_by_card",
    "may_use_security_key",
    "security_key_matches",
]
