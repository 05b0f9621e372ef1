"""« Connexion et sécurité » on the mock portal: the account page, changing the password
(typed twice; forced after a temporary password), changing the e-mail (effective only once
the link sent to the new address is opened), and the password reset by e-mail link.

Links are single-use and expire; only their SHA-256 is stored. Opening a link shows a
button: the change happens on its POST, so a mail scanner fetching the link changes nothing.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from cardkit.portal import EventKind
from mocks.portal.app import RESET_LINK_TTL, Site
from mocks.portal.enrolment import valid_email


class AccountSecurity:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.portal = site.portal

    async def account(self, request: Request) -> Response:
        _sid, data, account = self.site.signed_in(request)
        return self.site.page(
            request, "compte.html", data, events=self.site.recent_events(account, 5)
        )

    def password_problem(self, password: str, confirmation: str) -> str | None:
        missing = self.portal.policy.problems(password)
        if missing:
            return "Le mot de passe doit contenir " + ", ".join(missing) + "."
        if password != confirmation:
            return "Les deux mots de passe ne sont pas identiques."
        return None

    async def change_password(self, request: Request) -> Response:
        site, portal = self.site, self.portal
        sid, data, account = site.signed_in(request)
        forced = bool(data.get("must_change"))
        context = {"forced": forced, "ask_email": forced and not account.email}
        if request.method == "GET":
            return site.page(request, "compte_mdp.html", data, **context)
        fields = await site.form(request)
        password = fields.get("mot_de_passe", "")
        error = self.password_problem(password, fields.get("confirmation", ""))
        email = fields.get("email", "").strip()
        if error is None and context["ask_email"] and not valid_email(email):
            error = "Indiquez une adresse e-mail valide."
        if error is None and not await portal.password_matches(account, fields.get("actuel", "")):
            error = "Le mot de passe actuel est incorrect."
        if error:
            return site.page(request, "compte_mdp.html", data, error=error, **context)
        hashed = await anyio.to_thread.run_sync(portal.hasher.hash, password)
        with portal.db.transaction():
            portal.data.set_password(account.id, hashed)
            portal.journal.record(str(account.id), EventKind.PASSWORD_CHANGED)
            if context["ask_email"]:
                portal.data.set_email(account.id, email, verified=False)
        if forced:
            data.pop("must_change")
            portal.sessions.save(sid, data)
        if context["ask_email"]:
            site.send_email_link(account.id, email, "verify")
        return site.page(request, "compte_mdp.html", data, done=True)

    async def change_email(self, request: Request) -> Response:
        site = self.site
        _sid, data, account = site.signed_in(request)
        fields = await site.form(request)
        email = fields.get("email", "").strip()
        latest = site.recent_events(account, 5)
        if not valid_email(email):
            return site.page(
                request,
                "compte.html",
                data,
                events=latest,
                error="Indiquez une adresse e-mail valide.",
            )
        site.send_email_link(account.id, email, "email")
        return site.page(request, "compte.html", data, events=latest, email_sent=email)

    async def confirm_email(self, request: Request) -> Response:
        """``/compte/email/valider`` (a change) and ``/creer-compte/valider`` (a new
        account's address): GET shows the button, POST uses the link."""
        site, portal = self.site, self.portal
        _sid, data = site.session_of(request)
        purpose = "email" if request.url.path.startswith("/compte/") else "verify"
        if request.method == "GET":
            token = request.query_params.get("lien", "")[:100]
            valid = portal.data.link_account(token, purpose) is not None
            return site.page(request, "email_valider.html", data, token=token, invalid=not valid)
        fields = await site.form(request)
        used = portal.data.use_link(fields.get("lien", ""), purpose)
        if used is None:
            return site.page(request, "email_valider.html", data, invalid=True)
        account_id, email = used
        with portal.db.transaction():
            portal.data.set_email(account_id, email)
            if purpose == "email":
                portal.journal.record(str(account_id), EventKind.EMAIL_CHANGED)
        return site.page(request, "email_valider.html", data, done=email)

    # --- reset by link ---

    async def forgotten(self, request: Request) -> Response:
        """A reset link by e-mail, asked with the e-mail address (the confirmation shows it)
        or the N° AM / FINESS (it does not, "par mesure de sécurité"). The answer is the same
        whether an account exists or not: the page tells nobody who has one."""
        site, portal = self.site, self.portal
        _sid, data = site.session_of(request)
        if request.method == "GET":
            return site.page(request, "oubli.html", data)
        fields = await site.form(request)
        identifier = fields.get("identifiant", "").strip()
        by_email = "@" in identifier
        found = portal.data.by_identifier(identifier) if identifier else []
        if by_email and len(found) > 1:
            return site.page(
                request,
                "oubli.html",
                data,
                error="Cette adresse e-mail est partagée "
                "par plusieurs comptes : indiquez votre N° d'Assurance Maladie ou votre "
                "N° FINESS.",
            )
        if len(found) == 1 and found[0].email:
            token = portal.data.new_link(found[0].id, RESET_LINK_TTL)
            portal.data.send(
                found[0].email,
                "Réinitialisation de votre mot de passe",
                f"Pour choisir un nouveau mot de passe, ouvrez ce lien (valable 1 heure, une "
                f"seule fois) : {portal.config.origin}/mot-de-passe/nouveau?lien={token}",
            )
        shown = identifier if by_email else None
        return site.page(request, "oubli.html", data, sent=True, shown_email=shown)

    async def new_password(self, request: Request) -> Response:
        site, portal = self.site, self.portal
        _sid, data = site.session_of(request)
        token = request.query_params.get("lien", "")[:100]
        if request.method == "GET":
            valid = portal.data.link_account(token) is not None
            return site.page(request, "nouveau_mdp.html", data, token=token, invalid=not valid)
        fields = await site.form(request)
        token = fields.get("lien", "")
        password = fields.get("mot_de_passe", "")
        error = self.password_problem(password, fields.get("confirmation", ""))
        if error:
            return site.page(request, "nouveau_mdp.html", data, token=token, error=error)
        if portal.data.link_account(token) is None:
            return site.page(request, "nouveau_mdp.html", data, token=token, invalid=True)
        hashed = await anyio.to_thread.run_sync(portal.hasher.hash, password)
        used = portal.data.use_link(token)
        if used is None:  # used by a concurrent request while hashing
            return site.page(request, "nouveau_mdp.html", data, token=token, invalid=True)
        account_id = used[0]
        with portal.db.transaction():
            portal.data.set_password(account_id, hashed)
            portal.journal.record(str(account_id), EventKind.PASSWORD_RESET)
        portal.lockout.succeeded(str(account_id))
        return site.page(request, "nouveau_mdp.html", data, done=True)
