"""« Gestion de compte » and the password reset: the pages over
:class:`cardkit.portal.settings.AccountSecurity`.

A link's page shows a button: the change happens on its POST, so a mail scanner fetching
the link changes nothing.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from cardkit.portal import (
    Blocked,
    EmailLinkSent,
    EmailVerified,
    LinkPurpose,
    PasswordChanged,
    Refused,
)
from mocks.portal.login import Login
from mocks.portal.site import Site


class AccountPages:
    def __init__(self, site: Site, login: Login) -> None:
        self.site = site
        self.login = login
        self.settings = site.doors.settings

    async def account(self, request: Request, **context: object) -> Response:
        _session, account = self.site.signed_in(request)
        events = self.login.recent_events(account.key, 5)
        return self.site.page(request, "compte.html", events=events, **context)

    async def change_password(self, request: Request) -> Response:
        site = self.site
        session, account = site.signed_in(request)
        forced = bool(session.data.get("must_change"))
        context = {"forced": forced, "ask_email": forced and not account.email}
        if request.method == "GET":
            return site.page(request, "compte_mdp.html", **context)
        fields = await site.form(request)
        outcome = await anyio.to_thread.run_sync(
            lambda: self.settings.change_password(
                session,
                account,
                fields.get("actuel", ""),
                fields.get("mot_de_passe", ""),
                fields.get("confirmation", ""),
                email=fields.get("email", ""),
            )
        )
        if isinstance(outcome, Blocked):
            return site.signed_out("/identification?fin=session")  # the block ended it
        if isinstance(outcome, Refused):
            return site.page(request, "compte_mdp.html", error=outcome.message, **context)
        assert isinstance(outcome, PasswordChanged) and outcome.session_id is not None
        page = site.page(request, "compte_mdp.html", done=outcome.message, **context)
        return site.set_cookie(page, outcome.session_id)

    async def change_email(self, request: Request) -> Response:
        site = self.site
        session, account = site.signed_in(request)
        fields = await site.form(request)
        outcome = await anyio.to_thread.run_sync(
            lambda: self.settings.request_email_change(
                session, account, fields.get("email", ""), fields.get("mot_de_passe", "")
            )
        )
        if isinstance(outcome, Blocked):
            return site.signed_out("/identification?fin=session")  # the block ended it
        if isinstance(outcome, EmailLinkSent):
            return await self.account(request, email_sent=outcome.message)
        return await self.account(request, error=outcome.message)

    async def confirm_email(self, request: Request) -> Response:
        """``/compte/email/valider`` (a change) and ``/creer-compte/valider`` (a new
        account's address): GET shows the button, POST uses the link."""
        site = self.site
        purpose = (
            LinkPurpose.EMAIL if request.url.path.startswith("/compte/") else LinkPurpose.VERIFY
        )
        if request.method == "GET":
            token = request.query_params.get("lien", "")[:100]
            valid = self.settings.link_valid(token, purpose)
            return site.page(request, "email_valider.html", token=token, invalid=not valid)
        fields = await site.form(request)
        outcome = self.settings.confirm_email(fields.get("lien", ""), purpose)
        if isinstance(outcome, EmailVerified):
            return site.page(request, "email_valider.html", done=outcome.message)
        return site.page(request, "email_valider.html", invalid=True)

    # --- reset by link ---

    async def forgotten(self, request: Request) -> Response:
        site = self.site
        if request.method == "GET":
            return site.page(request, "oubli.html")
        fields = await site.form(request)
        outcome = self.settings.request_reset(fields.get("identifiant", ""))
        if isinstance(outcome, Refused):
            return site.page(request, "oubli.html", error=outcome.message)
        return site.page(request, "oubli.html", sent=outcome.message)

    async def new_password(self, request: Request) -> Response:
        site = self.site
        if request.method == "GET":
            token = request.query_params.get("lien", "")[:100]
            valid = self.settings.link_valid(token, LinkPurpose.RESET)
            return site.page(request, "nouveau_mdp.html", token=token, invalid=not valid)
        fields = await site.form(request)
        token = fields.get("lien", "")
        outcome = await anyio.to_thread.run_sync(
            lambda: self.settings.reset_password(
                token, fields.get("mot_de_passe", ""), fields.get("confirmation", "")
            )
        )
        if isinstance(outcome, PasswordChanged):
            return site.page(request, "nouveau_mdp.html", done=outcome.message)
        if outcome.code == "link_invalid":
            return site.page(request, "nouveau_mdp.html", token=token, invalid=True)
        return site.page(request, "nouveau_mdp.html", token=token, error=outcome.message)
