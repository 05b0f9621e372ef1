"""Account creation, the three ways amelipro's guides describe:

1. a CPS (or CPE transporteur) login with no account yet: the card door leaves a pending
   account in the session; :meth:`Enrolment.finish` adds an e-mail, a password and the
   terms;
2. a **clé de sécurité** (:meth:`Enrolment.security_key`): N° AM + NIR + the last 4
   characters of the professional IBAN, checked against the insurer's file; never for
   establishments; three wrong keys block the number like three wrong passwords block an
   account (4 IBAN characters must not be guessable by a script);
3. a **temporary password by post** (:meth:`Enrolment.by_post`) to the practice's address,
   valid 15 days, to be changed at first login.

Ways 1 and 2 give an account usable at once; its e-mail is confirmed by a link.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cardkit.portal.accounts import AccountExists
from cardkit.portal.events import EventKind
from cardkit.portal.insurer import Dossier
from cardkit.portal.links import LinkPurpose
from cardkit.portal.lockout import AccountBlocked
from cardkit.portal.messages import nir_code, text
from cardkit.portal.outbox import Channel
from cardkit.portal.outcomes import (
    Blocked,
    Invalid,
    LetterRequested,
    MayCreateAccount,
    PendingAccount,
    Refused,
    SignedIn,
)
from cardkit.portal.rules import may_use_security_key, security_key_matches, valid_email
from cardkit.portal.sessions import Session
from cardkit.vitale.nir import Nir, NirError

if TYPE_CHECKING:
    from cardkit.portal.doors import Doors

TEMPORARY_PASSWORD_LIFE = dt.timedelta(days=15)
#: Compared against when a number has no dossier: the same work, the same time.
_DECOY = ("100000000000000", "XXXX")


def number(typed: str) -> str | None:
    """A N° AM or FINESS as typed (9 characters, spaces allowed), or None."""
    compact = typed.replace(" ", "").upper()
    return compact if len(compact) == 9 and compact.isalnum() else None


def account_fields(dossier: Dossier) -> dict[str, Any]:
    """An account made from the insurer's dossier: a health centre logs in with its FINESS,
    everyone else with the N° AM."""
    kind = {"centre": "director", "transporteur": "transport", "taxi": "transport"}
    fields: dict[str, Any] = {
        "kind": kind.get(dossier.category, "ps"),
        "display_name": dossier.display_name,
    }
    fields["finess" if dossier.category == "centre" else "am_number"] = dossier.number
    return fields


def nir_refusal(exc: NirError) -> Refused:
    return Refused("nir_problem", {"problem": text(nir_code(exc.code))})


class Enrolment:
    def __init__(self, doors: Doors) -> None:
        self.doors = doors
        self.stores = doors.stores
        self.stores.db.execute(
            "CREATE TABLE IF NOT EXISTS postal_requests (number TEXT PRIMARY KEY, "
            "requested REAL NOT NULL, letter REAL)"
        )

    # --- 2. clé de sécurité ---

    def security_key(
        self, session: Session, typed_number: str, typed_nir: str, typed_tail: str
    ) -> MayCreateAccount | Blocked | Refused:
        am = number(typed_number)
        if am is None or not am.isdigit():
            return Refused("am_number_format")
        try:
            nir = Nir.parse(typed_nir)
        except NirError as exc:
            return nir_refusal(exc)
        tail = typed_tail.replace(" ", "").upper()
        if len(tail) != 4 or not tail.isalnum():
            return Refused("iban_tail_format")
        try:
            with self.doors.lockout.attempt(f"cle:{am}") as attempt:
                dossier = self.stores.insurer.dossier(am)
                if dossier is not None and not may_use_security_key(dossier.category).allowed:
                    attempt.void()
                    return Refused("security_key_not_offered")
                known = (dossier.nir or "", dossier.iban_tail or "") if dossier else _DECOY
                if not security_key_matches(nir.number, tail, *known) or dossier is None:
                    settled = attempt.wrong()
                    now = self.doors.lockout.now()
                    if settled.state.blocked(now):
                        return Blocked(settled.state.minutes_left(now), "security_key_blocked")
                    return Refused("security_key_mismatch")
                attempt.right()
        except AccountBlocked as exc:
            return Blocked(exc.minutes_left, "security_key_blocked")
        if self.stores.accounts.by_identifier(am):
            return Refused("account_exists_number")
        pending = PendingAccount(
            "cle", dossier.display_name, True, "security_key_verified", account_fields(dossier)
        )
        # What this session may do now is worth a new id (one planted before cannot use it).
        data = {**session.data, "pending": pending.to_dict()}
        return MayCreateAccount(self.stores.sessions.rotate(session.id, data), pending)

    # --- 1 and 2: e-mail, password, terms ---

    @staticmethod
    def pending(session: Session) -> PendingAccount | None:
        data = session.data.get("pending")
        return PendingAccount.from_dict(data) if isinstance(data, dict) else None

    def finish(
        self, session: Session, email: str, password: str, confirmation: str, accepted: bool
    ) -> SignedIn | Invalid | Refused:
        """The pending account, created with this e-mail (to confirm by link) and password;
        signed in at once."""
        pending = self.pending(session)
        if pending is None:
            return Refused("session_ended")
        if not pending.allowed:
            return Refused(pending.code)
        email = email.strip()
        problems = []
        if not valid_email(email):
            problems.append(Refused("email_invalid"))
        password_problem = self.doors.policy.refusal(password, confirmation)
        if password_problem:
            problems.append(password_problem)
        if not accepted:
            problems.append(Refused("terms_not_accepted"))
        if problems:
            return Invalid(tuple(problems))
        hashed = self.doors.hasher.hash(password)
        stores = self.stores
        try:
            with stores.db.transaction():
                account = stores.accounts.create(
                    **pending.fields, email=email, password_hash=hashed, email_verified=False
                )
                stores.journal.record(account.key, EventKind.ACCOUNT_CREATED)
                self.doors.send_email_link(account.id, email, LinkPurpose.VERIFY)
        except AccountExists:  # the same card or number, created meanwhile
            session.data.pop("pending", None)
            stores.sessions.save(session.id, session.data)
            return Refused("account_exists")
        via = "cps" if pending.door == "carte" else "cle"
        now = dt.datetime.now(dt.UTC)
        return SignedIn(self.doors.sign_in(session, account, via, now), account)

    # --- 3. a temporary password by post ---

    def by_post(self, typed_number: str) -> LetterRequested | Refused:
        """A letter with a temporary password, to the address the insurer knows, only while
        the account has no password of its owner's choosing and no unexpired temporary one,
        at most one letter per number per password's life. The same answer and the same
        work (a password made and hashed, one write) whatever the number."""
        known = number(typed_number)
        if known is None:
            return Refused("number_format")
        doors, stores = self.doors, self.stores
        password = doors.policy.temporary()
        hashed = doors.hasher.hash(password)
        now = dt.datetime.now(dt.UTC)
        until = now + TEMPORARY_PASSWORD_LIFE
        digest = doors.pseudonym(known)
        with stores.db.transaction():
            last = stores.db.one("SELECT letter FROM postal_requests WHERE number = ?", (digest,))
            stores.db.execute(
                "INSERT INTO postal_requests (number, requested) VALUES (?, ?) "
                "ON CONFLICT (number) DO UPDATE SET requested = excluded.requested",
                (digest, now.timestamp()),
            )
            dossier = stores.insurer.dossier(known)
            existing = stores.accounts.by_identifier(known) if dossier else []
            recent = (
                last is not None
                and last[0] is not None
                and last[0] > (now - TEMPORARY_PASSWORD_LIFE).timestamp()
            )
            eligible = (
                dossier is not None
                and not recent
                and (not existing or existing[0].temporary_expired(now))
            )
            if eligible:
                assert dossier is not None
                if existing:
                    stores.accounts.set_password(
                        existing[0].id, hashed, temporary_until=until.timestamp()
                    )
                else:
                    stores.accounts.create(
                        **account_fields(dossier),
                        password_hash=hashed,
                        must_change=True,
                        password_expires=until.timestamp(),
                        email_verified=False,
                    )
                stores.db.execute(
                    "UPDATE postal_requests SET letter = ? WHERE number = ?",
                    (now.timestamp(), digest),
                )
                stores.outbox.send(
                    f"{dossier.display_name}, {dossier.address}",
                    text("letter_subject"),
                    text(
                        "letter_body",
                        number=known,
                        password=password,
                        until=until.astimezone().strftime("%d/%m/%Y"),
                    ),
                    Channel.POST,
                )
        return LetterRequested()
