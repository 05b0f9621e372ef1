"""What a door answers: one typed outcome per call, each with its French message.

A page switches on the outcome's type (signed in, blocked, refused...) and shows
``outcome.message``; code that logs or measures reads ``outcome.code``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from cardkit.portal.accounts import Account
from cardkit.portal.messages import text


@dataclass(frozen=True)
class SignedIn:
    """A new session (``session_id``: the cookie to set) for ``account``."""

    session_id: str
    account: Account
    code: ClassVar[str] = "signed_in"


@dataclass(frozen=True)
class MustChangePassword(SignedIn):
    """Signed in with a temporary password: the session may only change it."""

    code: ClassVar[str] = "must_change_password"

    @property
    def message(self) -> str:
        return text(self.code)


@dataclass(frozen=True)
class Blocked:
    """Refused without any check: the account (or the number) is blocked for a while."""

    minutes_left: int
    code: str = "account_blocked"
    #: The session that asked was ended (a block reached from inside a session).
    session_ended: bool = False

    @property
    def message(self) -> str:
        return text(self.code, minutes=self.minutes_left)


@dataclass(frozen=True)
class Refused:
    """Refused, ``code`` says why (a message code: a token rejection reason, a NIR error,
    a form problem...)."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return text(self.code, **self.params)


@dataclass(frozen=True)
class Invalid:
    """A form with several problems, all said at once."""

    problems: tuple[Refused, ...]
    code: ClassVar[str] = "form_invalid"

    @property
    def messages(self) -> list[str]:
        return [p.message for p in self.problems]


@dataclass(frozen=True)
class PendingAccount:
    """An account that may be created (or, ``allowed`` false, may not), waiting in the
    session for its e-mail and password: after a card login with no account (``door``
    "carte"), or a verified clé de sécurité ("cle")."""

    door: str
    name: str
    allowed: bool
    code: str  # why (a message code)
    fields: dict[str, Any]  # the account's fields, from the card or the insurer's dossier

    @property
    def reason(self) -> str:
        return text(self.code)

    def to_dict(self) -> dict[str, Any]:
        return {
            "door": self.door,
            "name": self.name,
            "allowed": self.allowed,
            "code": self.code,
            "fields": self.fields,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingAccount:
        return cls(data["door"], data["name"], data["allowed"], data["code"], data["fields"])


@dataclass(frozen=True)
class MayCreateAccount:
    """No account yet: ``pending`` waits in the session now under ``session_id``."""

    session_id: str
    pending: PendingAccount
    code: ClassVar[str] = "may_create_account"


@dataclass(frozen=True)
class LetterRequested:
    """The postal door's one answer, whatever the number: nobody learns who is known."""

    code: ClassVar[str] = "letter_requested"

    @property
    def message(self) -> str:
        return text(self.code)


@dataclass(frozen=True)
class PasswordChanged:
    """The password changed: every other session of the account is over, every link void;
    the session that changed it goes on under ``session_id`` (None: a reset, no session)."""

    session_id: str | None
    code: ClassVar[str] = "password_changed"

    @property
    def message(self) -> str:
        return text(self.code)


@dataclass(frozen=True)
class EmailLinkSent:
    email: str
    code: ClassVar[str] = "email_link_sent"

    @property
    def message(self) -> str:
        return text(self.code, email=self.email)


@dataclass(frozen=True)
class EmailVerified:
    email: str
    code: ClassVar[str] = "email_verified"

    @property
    def message(self) -> str:
        return text(self.code, email=self.email)


@dataclass(frozen=True)
class ResetRequested:
    """A reset link went out if an account matches; the address is shown only when the
    request named it (``shown_email``)."""

    shown_email: str | None
    code: ClassVar[str] = "reset_requested"

    @property
    def message(self) -> str:
        if self.shown_email:
            return text("reset_sent_to", email=self.shown_email)
        return text("reset_sent")
