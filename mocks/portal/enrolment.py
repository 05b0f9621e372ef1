"""Account creation pages: the card's pending account, the clé de sécurité and the
temporary password by post (the decisions are :class:`cardkit.portal.enrolment.Enrolment`'s)."""

from __future__ import annotations

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cardkit.portal import Blocked, Invalid, MayCreateAccount, Refused, text
from mocks.portal.site import Site


class EnrolmentPages:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.enrolment = site.doors.enrolment

    async def choose(self, request: Request) -> Response:
        return self.site.page(request, "creer_compte_choix.html")

    async def security_key(self, request: Request) -> Response:
        site = self.site
        if request.method == "GET":
            return site.page(request, "creer_compte_cle.html")
        session = site.session_of(request)
        fields = await site.form(request)
        typed = fields.get("numero", "")
        outcome = self.enrolment.security_key(
            session, typed, fields.get("nir", ""), fields.get("iban", "")
        )
        if isinstance(outcome, MayCreateAccount):
            return site.redirect("/creer-compte/finaliser", outcome.session_id)
        if isinstance(outcome, Refused) and outcome.code == "security_key_not_offered":
            return site.page(request, "creer_compte_cle.html", refused=outcome.message)
        assert isinstance(outcome, Blocked | Refused)
        number = "".join(typed.split())[:20]
        return site.page(request, "creer_compte_cle.html", error=outcome.message, numero=number)

    async def finish(self, request: Request) -> Response:
        site = self.site
        session = site.session_of(request)
        pending = self.enrolment.pending(session)
        if pending is None:
            return site.redirect("/identification", session.id)
        if request.method == "GET":
            return site.page(request, "creer_compte.html", pending=pending)
        fields = await site.form(request)
        if not pending.allowed:
            raise HTTPException(403, pending.reason)
        outcome = await anyio.to_thread.run_sync(
            lambda: self.enrolment.finish(
                session,
                fields.get("email", ""),
                fields.get("mot_de_passe", ""),
                fields.get("confirmation", ""),
                fields.get("conditions") == "oui",
            )
        )
        if isinstance(outcome, Invalid):
            return site.page(request, "creer_compte.html", pending=pending, errors=outcome.messages)
        if isinstance(outcome, Refused):
            raise HTTPException(409, outcome.message)
        return site.redirect("/accueil", outcome.session_id)

    async def by_post(self, request: Request) -> Response:
        site = self.site
        if request.method == "GET":
            return site.page(request, "creer_compte_courrier.html")
        fields = await site.form(request)
        outcome = await anyio.to_thread.run_sync(self.enrolment.by_post, fields.get("numero", ""))
        if isinstance(outcome, Refused):
            return site.page(request, "creer_compte_courrier.html", error=outcome.message)
        return site.page(
            request,
            "creer_compte_courrier.html",
            sent=outcome.message,
            not_received=text("letter_not_received"),
        )
