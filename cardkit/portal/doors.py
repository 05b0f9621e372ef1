"""The portal's doors, framework-free: what a Starlette, Flask or Django portal calls.

:class:`Doors` holds a portal's stores and secrets and offers:

- sessions (:meth:`Doors.session`, :meth:`Doors.signed_in`, :meth:`Doors.logout`), CSRF
  tokens bound to them, and CPS login challenges bound to them;
- :class:`PasswordDoor`: identifier + password, with the lockout reserved before the hash
  is checked, the same answers and the same work for unknown identifiers, the block
  journaled once;
- :class:`CardDoor`: a CPS/CPE token for this session's challenge, then in one transaction
  the nonce claimed, the account's login recorded, a block lifted, the journal written and
  the session moved to a new id; or, with no account, the account creation the card allows;
- ``enrolment`` (:class:`~cardkit.portal.enrolment.Enrolment`) and ``settings``
  (:class:`~cardkit.portal.settings.AccountSecurity`): the creation doors and the changes
  of password and e-mail.

Each call is one typed outcome (:mod:`cardkit.portal.outcomes`) with its message. Calls are
synchronous: a password check takes tens of milliseconds of Argon2, so an async portal runs
the password door's calls in a worker thread.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

from cardkit.auth.challenge import Challenge
from cardkit.auth.origin import normalize_origin
from cardkit.auth.rejection import TokenRejected
from cardkit.auth.validator import Validator
from cardkit.identity import CardType
from cardkit.portal.accounts import Account
from cardkit.portal.challenge import LoginChallenges
from cardkit.portal.enrolment import Enrolment
from cardkit.portal.events import EventKind
from cardkit.portal.links import EMAIL_LINK_TTL, LinkPurpose
from cardkit.portal.lockout import AccountBlocked, Attempt, Lockout, LockoutPolicy
from cardkit.portal.messages import MESSAGES, text
from cardkit.portal.outbox import Channel
from cardkit.portal.outcomes import (
    Blocked,
    MayCreateAccount,
    MustChangePassword,
    PendingAccount,
    Refused,
    SignedIn,
)
from cardkit.portal.passwords import PasswordHasher, PasswordPolicy
from cardkit.portal.psc import PscDoor
from cardkit.portal.rules import account_key, may_create_account_by_card
from cardkit.portal.sessions import Session, open_session
from cardkit.portal.settings import AccountSecurity
from cardkit.portal.stores import Stores

#: Where the links the doors send lead, on the portal's origin (amelipro-like defaults).
DEFAULT_LINK_PATHS: Mapping[LinkPurpose, str] = {
    LinkPurpose.RESET: "/mot-de-passe/nouveau",
    LinkPurpose.VERIFY: "/creer-compte/valider",
    LinkPurpose.EMAIL: "/compte/email/valider",
}
#: The journal's event for a login by each door (an account just created by clé de
#: sécurité has its creation event only).
_LOGIN_EVENTS = {
    "cps": EventKind.CARD_LOGIN,
    "password": EventKind.PASSWORD_LOGIN,
    "psc": EventKind.PSC_LOGIN,
}
_BY_CARD = EventKind.UNBLOCKED_BY_CARD
_UNBLOCK_EVENTS = {"psc": EventKind.UNBLOCKED_BY_PSC}
PURGE_EVERY = 60.0  # seconds between purges of expired sessions, challenges and links
MAX_IDENTIFIER = 254


class Doors:
    """A portal's doors over its :class:`~cardkit.portal.stores.Stores`.

    ``origin`` is the portal's own (tokens are validated for it, whatever a page claims;
    links in e-mails start with it). Portal processes serving one portal share the stores,
    hence the secrets kept there.
    """

    def __init__(
        self,
        stores: Stores,
        *,
        origin: str,
        validator: Validator,
        lockout: LockoutPolicy | None = None,
        hasher: PasswordHasher | None = None,
        password_policy: PasswordPolicy | None = None,
        link_paths: Mapping[LinkPurpose, str] = DEFAULT_LINK_PATHS,
    ) -> None:
        self.stores = stores
        self.origin = normalize_origin(origin)
        master = stores.secret()
        self._csrf_key = hmac.digest(master, b"csrf", "sha256")
        self._pseudonym_key = hmac.digest(master, b"pseudonym", "sha256")
        self.challenges = LoginChallenges(
            stores.nonces, validator, self.origin, hmac.digest(master, b"challenge", "sha256")
        )
        self.lockout = Lockout(stores.lockout, lockout)
        self.hasher = hasher or PasswordHasher()
        self.policy = password_policy or PasswordPolicy()
        # Checked when there is no password to check, so that every answer costs one hash.
        self.decoy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        self.link_paths = dict(link_paths)
        self._next_purge = 0.0
        self.password = PasswordDoor(self)
        self.card = CardDoor(self)
        self.psc = PscDoor(self)
        self.enrolment = Enrolment(self)
        self.settings = AccountSecurity(self)

    # --- sessions ---

    def session(self, cookie: str | None) -> Session:
        """The session the request's cookie names, or a fresh one (set its cookie)."""
        session = open_session(self.stores.sessions, cookie)
        if session.fresh:
            self._purge_now_and_then()
        return session

    def _purge_now_and_then(self) -> None:
        now = time.monotonic()
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            self.stores.purge()

    def signed_in(self, session: Session) -> Account | None:
        """The session's account while its generation is the account's (a password change
        or reset ends every session made before it: this one is then dropped)."""
        account_id, generation = session.data.get("account"), session.data.get("generation")
        if not isinstance(account_id, int) or not isinstance(generation, int):
            return None
        account = self.stores.accounts.current(account_id, generation)
        if account is None:
            self.stores.sessions.drop(session.id)
            session.data = {}
        return account

    def logout(self, session: Session) -> None:
        self.stores.sessions.drop(session.id)

    def csrf_token(self, session_id: str) -> str:
        """The session's CSRF token: a MAC of its id (nothing stored; a new id, a new
        token)."""
        mac = hmac.digest(self._csrf_key, session_id.encode(), "sha256")
        return base64.urlsafe_b64encode(mac[:24]).decode()

    def check_csrf(self, session_id: str, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.csrf_token(session_id).encode())

    def challenge(self, session_id: str) -> Challenge:
        """A CPS login challenge for this session (signed: issuing it writes nothing)."""
        return self.challenges.issue(session_id)

    # --- shared steps of the doors ---

    def sign_in(
        self,
        session: Session,
        account: Account,
        via: str,
        now: dt.datetime,
        *,
        unblock: bool = False,
        recorded: bool = False,
        **extra: Any,
    ) -> str:
        """Everything a login changes, in one transaction; the session's new id. The
        account's login is recorded here unless it was already (``recorded``: the card door
        finds the account and records the login in one statement)."""
        stores = self.stores
        with stores.db.transaction():
            if unblock and self.lockout.release(account.key, now):
                stores.journal.record(account.key, _UNBLOCK_EVENTS.get(via, _BY_CARD), now)
            if not recorded:
                account = stores.accounts.record_login(account, now)
            kind = _LOGIN_EVENTS.get(via)
            if kind is not None:
                stores.journal.record(account.key, kind, now)
            data = {
                "account": account.id,
                "generation": account.generation,
                "via": via,
                "signed_in_at": now.timestamp(),
                **extra,
            }
            return stores.sessions.rotate(session.id, data)

    def link(self, purpose: LinkPurpose, token: str) -> str:
        return f"{self.origin}{self.link_paths[purpose]}?lien={token}"

    def send_email_link(self, account_id: int, email: str, purpose: LinkPurpose) -> None:
        """A link confirming ``email`` for the account (``VERIFY``: a new account's
        address; ``EMAIL``: a change, effective when the link is used), sent there."""
        token = self.stores.links.issue(account_id, purpose, EMAIL_LINK_TTL, email)
        self.stores.outbox.send(
            email,
            text("mail_verify_subject"),
            text("mail_verify_body", email=email, link=self.link(purpose, token)),
            Channel.EMAIL,
        )

    def pseudonym(self, typed: str) -> str:
        """What the stores keep of something typed that names nobody (an unknown
        identifier, a number asked for by post): a keyed hash, case and spaces ignored, so
        nobody can compute it and the stores never hold what was typed."""
        normal = typed.strip().lower().replace(" ", "")
        return hmac.digest(self._pseudonym_key, normal.encode(), hashlib.sha256)[:16].hex()

    def check_password(self, account: Account | None, password: str) -> bool:
        """One Argon2 check whatever the case (a decoy when there is no password)."""
        stored = account.password_hash if account is not None else None
        matches = self.hasher.verify(stored or self.decoy_hash, password)
        return matches and stored is not None

    def wrong_password(self, attempt: Attempt, account: Account | None) -> int:
        """Settle a wrong password, journaling the block it reached (once, for an account
        that exists): the minutes the account is now blocked for, 0 while it is not."""
        stores = self.stores
        with stores.db.transaction():
            settled = attempt.wrong()
            if settled.blocked_now and account is not None:
                stores.journal.record(attempt.key, EventKind.ACCOUNT_BLOCKED)
        return settled.state.minutes_left(self.lockout.now())


class PasswordDoor:
    def __init__(self, doors: Doors) -> None:
        self.doors = doors

    def login(
        self, session: Session, identifier: str, password: str
    ) -> SignedIn | MustChangePassword | Blocked | Refused:
        """Identifier (verified e-mail, N° AM or FINESS) and password.

        The attempt is reserved before the hash is checked: while the account is blocked,
        or while its last allowed attempts are being checked, the answer is "blocked" at
        once. An identifier that names no account is answered the same way after the same
        number of tries, and costs the same hash.
        """
        doors, stores = self.doors, self.doors.stores
        identifier = identifier.strip()[:MAX_IDENTIFIER]
        if not identifier:
            return Refused("wrong_credentials")
        found = stores.accounts.by_identifier(identifier)
        if len(found) > 1:
            return Refused("shared_email")
        account = found[0] if found else None
        key = account.key if account is not None else "unknown:" + doors.pseudonym(identifier)
        try:
            with doors.lockout.attempt(key) as attempt:
                if not doors.check_password(account, password):
                    minutes = doors.wrong_password(attempt, account)
                    return Blocked(minutes) if minutes else Refused("wrong_credentials")
                assert account is not None
                now = doors.lockout.now()
                if account.temporary_expired(now):
                    attempt.void()
                    return Refused("temporary_expired")
                # The success and the login, one transaction: a block set meanwhile wins.
                with stores.db.transaction():
                    if not attempt.right().accepted:
                        return Blocked(doors.lockout.blocked_minutes(key))
                    extra = {"must_change": True} if account.must_change else {}
                    sid = doors.sign_in(session, account, "password", now, **extra)
        except AccountBlocked as exc:
            return Blocked(exc.minutes_left)
        return MustChangePassword(sid, account) if account.must_change else SignedIn(sid, account)


class CardDoor:
    def __init__(self, doors: Doors) -> None:
        self.doors = doors

    def login(
        self, session: Session, token: str | bytes, nonce: str, *, reader: str | None = None
    ) -> SignedIn | MayCreateAccount | Refused:
        """The token the card signed for this session's challenge, validated at the
        portal's own origin: the account's new session (a block lifted at once), or the
        account creation the card allows. ``reader`` (the reader the card is in) is kept
        in the session, for portals whose session follows the card."""
        doors, stores = self.doors, self.doors.stores
        # With the claims in the records' file, the claim (the validation's last step) and
        # the login are one commit; the write lock is taken at the claim, after the
        # signature and certificate checks.
        outer = stores.db.transaction(immediate=False) if stores.claims_in_db else nullcontext()
        sid = None
        try:
            with outer:
                who = doors.challenges.login(session.id, token, nonce)
                key = account_key(who)
                now = dt.datetime.now(dt.UTC)
                account = stores.accounts.login_by_card(key, now)
                if account is not None:
                    follow = {"card_reader": reader[:200]} if reader else {}
                    sid = doors.sign_in(
                        session, account, "cps", now, unblock=True, recorded=True, **follow
                    )
        except TokenRejected as exc:
            # Every reason is worded (a test checks); one added later falls back.
            return Refused(exc.reason if exc.reason in MESSAGES else "card_login_failed")
        if account is not None and sid is not None:
            return SignedIn(sid, account)
        decision = may_create_account_by_card(who)
        kind = "transport" if who.card_type is CardType.CPE_TRANSPORT else "ps"
        pending = PendingAccount(
            "carte",
            who.display_name,
            decision.allowed,
            decision.code,
            {"kind": kind, "display_name": who.display_name, "card_key": key},
        )
        data = {**session.data, "pending": pending.to_dict()}
        # The card proved who is here: what this session may do now is worth a new id.
        return MayCreateAccount(stores.sessions.rotate(session.id, data), pending)


def posted_token(body: bytes) -> tuple[str, str, str | None] | Refused:
    """The card door's JSON post as a page sends it: ``{"token", "nonce", "reader"?}``,
    the token as the JSON string the validator reads (an object is accepted too)."""
    try:
        posted = json.loads(body)
        token, nonce = posted["token"], posted["nonce"]
        reader = posted.get("reader")
        if (
            not isinstance(nonce, str)
            or not isinstance(token, dict | str)
            or not isinstance(reader, str | None)
        ):
            raise TypeError
    except Exception:
        return Refused("bad_request")
    raw = token if isinstance(token, str) else json.dumps(token)
    return raw, nonce, reader
