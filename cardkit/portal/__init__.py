"""Portal-side building blocks, framework-free: what a real Python portal imports to offer
CPS login, a lockout that a CPS login unblocks, card-based account creation, password rules,
sessions that end when they must, an event journal and the French messages of it all.
Imports nothing from the card stack (no PC/SC, no PKCS#11) and no web framework.

Start with :class:`Stores` (where everything is kept) and :class:`Doors` (the calls a
portal's routes make); docs/portal-integration.md walks through a whole portal.
"""

from cardkit.pcsc_bridge.hosted import HostedClient, hosted_client
from cardkit.portal.accounts import Account, AccountExists
from cardkit.portal.challenge import LoginChallenges, SessionNonces
from cardkit.portal.doors import CardDoor, Doors, PasswordDoor, posted_token
from cardkit.portal.events import Event, EventKind, SqliteEventJournal
from cardkit.portal.headers import SecurityHeaders, nonce
from cardkit.portal.insurer import Dossier, InsurerFile, SqliteInsurerFile
from cardkit.portal.links import LinkPurpose, SqliteLinks
from cardkit.portal.lockout import (
    AccountBlocked,
    Lockout,
    LockoutPolicy,
    LockState,
    MemoryLockoutStore,
    SqliteLockoutStore,
)
from cardkit.portal.messages import bridge_messages, nir_message, text
from cardkit.portal.outbox import Channel, SqliteOutbox
from cardkit.portal.outcomes import (
    Blocked,
    EmailLinkSent,
    EmailVerified,
    Invalid,
    LetterRequested,
    MayCreateAccount,
    MustChangePassword,
    PasswordChanged,
    PendingAccount,
    Refused,
    ResetRequested,
    SignedIn,
)
from cardkit.portal.passwords import PasswordHasher, PasswordPolicy, WeakPassword
from cardkit.portal.rules import (
    Decision,
    account_key,
    may_create_account_by_card,
    may_use_security_key,
    security_key_matches,
    valid_email,
)
from cardkit.portal.sessions import Session, cookie_name
from cardkit.portal.stores import Stores, parse_store

__all__ = [
    "Account",
    "AccountBlocked",
    "AccountExists",
    "Blocked",
    "CardDoor",
    "Channel",
    "Decision",
    "Doors",
    "Dossier",
    "EmailLinkSent",
    "EmailVerified",
    "Event",
    "EventKind",
    "HostedClient",
    "InsurerFile",
    "Invalid",
    "LetterRequested",
    "LinkPurpose",
    "LockState",
    "Lockout",
    "LockoutPolicy",
    "LoginChallenges",
    "MayCreateAccount",
    "MemoryLockoutStore",
    "MustChangePassword",
    "PasswordChanged",
    "PasswordDoor",
    "PasswordHasher",
    "PasswordPolicy",
    "PendingAccount",
    "Refused",
    "ResetRequested",
    "SecurityHeaders",
    "Session",
    "SessionNonces",
    "SignedIn",
    "SqliteEventJournal",
    "SqliteInsurerFile",
    "SqliteLinks",
    "SqliteLockoutStore",
    "SqliteOutbox",
    "Stores",
    "WeakPassword",
    "account_key",
    "bridge_messages",
    "cookie_name",
    "hosted_client",
    "may_create_account_by_card",
    "may_use_security_key",
    "nir_message",
    "nonce",
    "parse_store",
    "posted_token",
    "security_key_matches",
    "text",
    "valid_email",
]
