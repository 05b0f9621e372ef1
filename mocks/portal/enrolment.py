"""Account creation on the mock portal, the three ways amelipro's guides describe:

1. a CPS (or CPE transporteur) login with no account yet: the pending card waits in the
   session, the professional adds an e-mail, a password and accepts the terms;
2. a **clé de sécurité**: N° AM + NIR + the last 4 characters of the professional IBAN,
   checked against the insurer's file; never for establishments (pharmacie, laboratoire,
   transporteur sanitaire, taxi); three wrong keys block the number like three wrong
   passwords block an account (4 IBAN characters must not be guessable by a script);
3. a **temporary password by post** to the practice address (the mock "courrier" page),
   valid 15 days, to be changed at first login.

Ways 1 and 2 give an account usable at once; its e-mail is confirmed by a link.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cardkit.portal import (
    AccountBlocked,
    EventKind,
    WeakPassword,
    may_use_security_key,
    security_key_matches,
)
from cardkit.vitale.nir import Nir, NirError
from mocks.portal.app import nir_problem
from mocks.portal.data import Dossier

if TYPE_CHECKING:
    from mocks.portal.app import Site

log = logging.getLogger(__name__)

TEMPORARY_PASSWORD_LIFE = dt.timedelta(days=15)
#: Compared against when a number has no dossier: the same work, the same time.
_DECOY = ("100000000000000", "XXXX")
NOT_RECEIVED = (
    "Si vous n'avez rien reçu dans un délai de 15 jours, veuillez contacter l'assistance technique."
)


def _number(text: str) -> str | None:
    """A N° AM or FINESS as typed (9 characters, spaces allowed), or None."""
    compact = text.replace(" ", "").upper()
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


class Enrolment:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.portal = site.portal

    async def choose(self, request: Request) -> Response:
        _sid, data = self.site.session_of(request)
        return self.site.page(request, "creer_compte_choix.html", data)

    # --- 2. clé de sécurité ---

    async def security_key(self, request: Request) -> Response:
        site, portal = self.site, self.portal
        sid, data = site.session_of(request)
        if request.method == "GET":
            return site.page(request, "creer_compte_cle.html", data)
        fields = await site.form(request)
        number = _number(fields.get("numero", ""))

        def again(error: str) -> Response:
            return site.page(
                request, "creer_compte_cle.html", data, error=error, numero=number or ""
            )

        if number is None or not number.isdigit():
            return again("Le N° d'Assurance Maladie a 9 chiffres.")
        try:
            nir = Nir.parse(fields.get("nir", ""))
        except NirError as exc:
            return again(f"NIR invalide : {nir_problem(exc)}.")
        tail = fields.get("iban", "").replace(" ", "").upper()
        if len(tail) != 4 or not tail.isalnum():
            return again(
                "Indiquez les 4 derniers caractères de l'IBAN de votre compte professionnel."
            )
        guard = f"cle:{number}"
        try:
            portal.lockout.check(guard)
        except AccountBlocked as exc:
            return again(
                f"Trop d'essais pour ce numéro : réessayez dans {exc.minutes_left} min, ou "
                "créez votre compte avec votre carte CPS."
            )
        dossier = portal.data.dossier(number)
        if dossier is not None:
            decision = may_use_security_key(dossier.category)
            if not decision.allowed:
                return site.page(request, "creer_compte_cle.html", data, refused=decision.reason)
        known = (dossier.nir or "", dossier.iban_tail or "") if dossier else _DECOY
        if not security_key_matches(nir.number, tail, *known) or dossier is None:
            now = dt.datetime.now(dt.UTC)
            state = portal.lockout.failed(guard, now)
            if state.blocked(now):
                return again(
                    f"Trop d'essais pour ce numéro : réessayez dans {state.minutes_left(now)} "
                    "min, ou créez votre compte avec votre carte CPS."
                )
            return again(
                "Ces informations ne correspondent pas à celles connues de l'Assurance "
                "Maladie : vérifiez votre N° AM, votre NIR et les 4 derniers caractères de "
                "votre IBAN."
            )
        portal.lockout.succeeded(guard)
        if portal.data.by_identifier(number):
            return again(
                "Un compte existe déjà pour ce N° d'Assurance Maladie : connectez-vous, ou "
                "utilisez « Mot de passe oublié »."
            )
        log.info("security key verified for AM %s", number)  # never the NIR
        data["pending"] = {
            "door": "cle",
            "name": dossier.display_name,
            "allowed": True,
            "reason": "Clé de sécurité vérifiée : création du compte possible.",
            "fields": account_fields(dossier),
        }
        # What this session may do now is worth a new id (one planted before cannot use it).
        new = portal.sessions.rotate(sid, data)
        return site.redirect("/creer-compte/finaliser", new)

    # --- 1 and 2: e-mail, password, terms ---

    async def finish(self, request: Request) -> Response:
        site, portal = self.site, self.portal
        sid, data = site.session_of(request)
        pending = data.get("pending")
        if not pending:
            return site.redirect("/identification", sid)
        if request.method == "GET":
            return site.page(request, "creer_compte.html", data, pending=pending)
        fields = await site.form(request)
        if not pending["allowed"]:
            raise HTTPException(403, pending["reason"])
        email = fields.get("email", "").strip()
        password = fields.get("mot_de_passe", "")
        errors = []
        if not valid_email(email):
            errors.append("Indiquez une adresse e-mail valide.")
        try:
            portal.policy.check(password)
        except WeakPassword as exc:
            errors.append(str(exc))
        if password != fields.get("confirmation", ""):
            errors.append("Les deux mots de passe ne sont pas identiques.")
        if fields.get("conditions") != "oui":
            errors.append("Acceptez les conditions générales d'utilisation.")
        if errors:
            return site.page(request, "creer_compte.html", data, pending=pending, errors=errors)
        hashed = await anyio.to_thread.run_sync(portal.hasher.hash, password)
        try:
            with portal.db.transaction():
                account = portal.data.create(
                    **pending["fields"], email=email, password_hash=hashed, email_verified=0
                )
                portal.journal.record(str(account.id), EventKind.ACCOUNT_CREATED)
        except sqlite3.IntegrityError:  # the same card or number, created meanwhile
            data.pop("pending")
            portal.sessions.save(sid, data)
            raise HTTPException(409, "Ce compte existe déjà : connectez-vous.") from None
        site.send_email_link(account.id, email, "verify")
        via = "cps" if pending["door"] == "carte" else "cle"
        new = site.login(sid, account, via)
        return site.redirect("/accueil", new)

    # --- 3. a temporary password by post ---

    async def by_post(self, request: Request) -> Response:
        site, portal = self.site, self.portal
        _sid, data = site.session_of(request)
        if request.method == "GET":
            return site.page(request, "creer_compte_courrier.html", data)
        fields = await site.form(request)
        number = _number(fields.get("numero", ""))
        if number is None:
            return site.page(
                request,
                "creer_compte_courrier.html",
                data,
                error="Indiquez votre N° d'Assurance Maladie ou votre N° FINESS (9 caractères).",
            )
        dossier = portal.data.dossier(number)
        existing = portal.data.by_identifier(number) if dossier else []
        # A letter goes only to the address the insurer knows, and only while the account
        # has no password of its owner's choosing; the page says the same in every case.
        if dossier is not None and (not existing or existing[0].must_change):
            password = portal.policy.temporary()
            hashed = await anyio.to_thread.run_sync(portal.hasher.hash, password)
            until = time.time() + TEMPORARY_PASSWORD_LIFE.total_seconds()
            with portal.db.transaction():
                if existing:
                    portal.data.set_password(existing[0].id, hashed, temporary_until=until)
                else:
                    portal.data.create(
                        **account_fields(dossier),
                        password_hash=hashed,
                        must_change=1,
                        password_expires=until,
                        email_verified=0,
                    )
                portal.data.send(
                    f"{dossier.display_name}, {dossier.address}",
                    "Votre mot de passe provisoire",
                    f"Identifiant : {number}. Mot de passe provisoire : {password} . Il est "
                    f"valable 15 jours (jusqu'au "
                    f"{dt.datetime.fromtimestamp(until).strftime('%d/%m/%Y')}) et vous sera "
                    "demandé de le changer à votre première connexion.",
                    channel="post",
                )
            log.info("temporary password sent by post for %s", number)
        return site.page(
            request, "creer_compte_courrier.html", data, sent=True, not_received=NOT_RECEIVED
        )


def valid_email(email: str) -> bool:
    local, _, domain = email.partition("@")
    return bool(local) and "." in domain and len(email) <= 254 and " " not in email
