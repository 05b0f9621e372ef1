"""« Connexion et sécurité »: changing the password and the e-mail, and the password reset
by e-mail link.

What a stolen session must not be able to turn into a stolen account:

- the current password is checked through the lockout (three wrong ones block the account
  and end the session that typed them);
- a password change or reset moves the account to a new generation: every other session of
  the account ends, every link sent before stops working;
- changing the e-mail needs the password, or a CPS login in the last 5 minutes; the link
  goes to the new address and a notice to the old one, and the address changes only when
  the link is used;
- a newer link of a kind voids the older ones; each link works once.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from cardkit.portal.accounts import Account
from cardkit.portal.events import EventKind
from cardkit.portal.links import LinkPurpose
from cardkit.portal.lockout import AccountBlocked
from cardkit.portal.messages import text
from cardkit.portal.outbox import Channel
from cardkit.portal.outcomes import (
    Blocked,
    EmailLinkSent,
    EmailVerified,
    PasswordChanged,
    Refused,
    ResetRequested,
)
from cardkit.portal.rules import valid_email
from cardkit.portal.sessions import Session

if TYPE_CHECKING:
    from cardkit.portal.doors import Doors

RESET_LINK_TTL = dt.timedelta(hours=1)
#: A CPS login this recent is proof enough to change the e-mail without the password.
RECENT_CARD_LOGIN = dt.timedelta(minutes=5)


class AccountSecurity:
    def __init__(self, doors: Doors) -> None:
        self.doors = doors
        self.stores = doors.stores

    def _reauthenticate(
        self, session: Session, account: Account, password: str
    ) -> Blocked | Refused | None:
        """The current password, checked through the lockout (None: right). A block
        reached here ends the session."""
        doors = self.doors
        try:
            with doors.lockout.attempt(account.key) as attempt:
                if doors.check_password(account, password):
                    if attempt.right().accepted:
                        return None
                    raise AccountBlocked(doors.lockout.blocked_minutes(account.key))
                minutes = doors.wrong_password(attempt, account)
                if not minutes:
                    return Refused("current_password_wrong")
                raise AccountBlocked(minutes)
        except AccountBlocked as exc:
            doors.logout(session)
            return Blocked(exc.minutes_left, session_ended=True)

    def change_password(
        self,
        session: Session,
        account: Account,
        current: str,
        password: str,
        confirmation: str,
        *,
        email: str = "",
    ) -> PasswordChanged | Blocked | Refused:
        """A new password (and, after a temporary one with no e-mail on the account, the
        address to confirm). Every other session of the account ends, every link sent
        before is void; this session goes on under a new id."""
        ask_email = bool(session.data.get("must_change")) and not account.email
        problem = self.doors.policy.refusal(password, confirmation)
        if problem is not None:
            return problem
        email = email.strip()
        if ask_email and not valid_email(email):
            return Refused("email_invalid")
        refused = self._reauthenticate(session, account, current)
        if refused is not None:
            return refused
        hashed = self.doors.hasher.hash(password)
        stores = self.stores
        with stores.db.transaction():
            generation = stores.accounts.set_password(account.id, hashed)
            stores.journal.record(account.key, EventKind.PASSWORD_CHANGED)
            data = {**session.data, "generation": generation}
            data.pop("must_change", None)
            if ask_email:
                stores.accounts.set_email(account.id, email, verified=False)
                self.doors.send_email_link(account.id, email, LinkPurpose.VERIFY)
            return PasswordChanged(stores.sessions.rotate(session.id, data))

    def request_email_change(
        self, session: Session, account: Account, email: str, password: str = ""
    ) -> EmailLinkSent | Blocked | Refused:
        """A link to the new address (the change happens when it is used) and a notice to
        the old one; needs the password, unless the session logged in with a CPS card in
        the last 5 minutes."""
        email = email.strip()
        if not valid_email(email):
            return Refused("email_invalid")
        at = session.data.get("signed_in_at")
        recent_card = (
            session.data.get("via") == "cps"
            and isinstance(at, float | int)
            and dt.datetime.now(dt.UTC).timestamp() - at <= RECENT_CARD_LOGIN.total_seconds()
        )
        if not recent_card:
            if not password:
                return Refused("reauthentication_needed")
            refused = self._reauthenticate(session, account, password)
            if refused is not None:
                return refused
        stores = self.stores
        with stores.db.transaction():
            self.doors.send_email_link(account.id, email, LinkPurpose.EMAIL)
            if account.email and account.email != email:
                stores.outbox.send(
                    account.email,
                    text("mail_email_change_subject"),
                    text("mail_email_change_body", email=email),
                    Channel.EMAIL,
                )
        return EmailLinkSent(email)

    def link_valid(self, token: str, purpose: LinkPurpose) -> bool:
        """Whether a link still works (what its page shows before the button that uses
        it: a mail scanner fetching the link changes nothing)."""
        return self.stores.links.peek(token[:100], purpose) is not None

    def confirm_email(self, token: str, purpose: LinkPurpose) -> EmailVerified | Refused:
        """A new account's address (``VERIFY``) or a change (``EMAIL``), confirmed by its
        link, once."""
        stores = self.stores
        with stores.db.transaction():
            used = stores.links.use(token[:100], purpose)
            if used is None:
                return Refused("link_invalid")
            stores.accounts.set_email(used.account_id, used.payload, verified=True)
            if purpose is LinkPurpose.EMAIL:
                stores.journal.record(str(used.account_id), EventKind.EMAIL_CHANGED)
        return EmailVerified(used.payload)

    # --- reset by link ---

    def request_reset(self, identifier: str) -> ResetRequested | Refused:
        """A reset link to the account's verified address, asked with that address (the
        answer shows it) or the N° AM / FINESS (it does not, "par mesure de sécurité").
        The same answer whether an account exists or not."""
        identifier = identifier.strip()[:254]
        by_email = "@" in identifier
        found = self.stores.accounts.by_identifier(identifier) if identifier else []
        if by_email and len(found) > 1:
            return Refused("reset_shared_email")
        if len(found) == 1 and found[0].email and found[0].email_verified:
            account = found[0]
            assert account.email is not None
            with self.stores.db.transaction():
                token = self.stores.links.issue(account.id, LinkPurpose.RESET, RESET_LINK_TTL)
                self.stores.outbox.send(
                    account.email,
                    text("mail_reset_subject"),
                    text("mail_reset_body", link=self.doors.link(LinkPurpose.RESET, token)),
                    Channel.EMAIL,
                )
        return ResetRequested(identifier if by_email else None)

    def reset_password(
        self, token: str, password: str, confirmation: str
    ) -> PasswordChanged | Refused:
        """A new password by a reset link: every session of the account ends, every other
        link is void, and a block from wrong passwords is lifted (the link proves the
        mailbox)."""
        problem = self.doors.policy.refusal(password, confirmation)
        if problem is not None:
            return problem
        token = token[:100]
        if not self.link_valid(token, LinkPurpose.RESET):
            return Refused("link_invalid")
        hashed = self.doors.hasher.hash(password)
        stores = self.stores
        with stores.db.transaction():
            used = stores.links.use(token, LinkPurpose.RESET)
            if used is None:  # used by a concurrent request while hashing
                return Refused("link_invalid")
            stores.accounts.set_password(used.account_id, hashed)
            stores.journal.record(str(used.account_id), EventKind.PASSWORD_RESET)
        self.doors.lockout.release(str(used.account_id))
        return PasswordChanged(None)
