"""The identification page and its doors (identifier + password, CPS card), the signed-in
pages (home, events, patient identification) and the public ones."""

from __future__ import annotations

import logging
import secrets

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cardkit.portal import (
    Blocked,
    MayCreateAccount,
    MustChangePassword,
    Refused,
    SignedIn,
    nir_message,
    posted_token,
)
from cardkit.portal.messages import text
from cardkit.portal.outbox import Channel
from cardkit.portal.psc import PscClient, PscPending, PscRefused
from cardkit.vitale.nir import Nir, NirError
from mocks.portal.site import Site, french_time

log = logging.getLogger(__name__)


class Login:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.doors = site.doors

    def identification_page(self, request: Request, **context: object) -> Response:
        """The three doors, the CPS one with a challenge already issued to this session: the
        first click goes straight to the card (a signed challenge costs no storage)."""
        session = self.site.session_of(request)
        challenge = self.doors.challenge(session.id)
        return self.site.page(request, "identification.html", challenge=challenge, **context)

    async def identification(self, request: Request) -> Response:
        ended = request.query_params.get("fin")
        return self.identification_page(
            request, card_removed=ended == "carte", session_ended=ended == "session"
        )

    async def password_login(self, request: Request) -> Response:
        site = self.site
        session = site.session_of(request)
        fields = await site.form(request)
        identifier = fields.get("identifiant", "")
        # Argon2 in a worker thread: 50 ms of hashing must not stall every other visitor.
        outcome = await anyio.to_thread.run_sync(
            self.doors.password.login, session, identifier, fields.get("mot_de_passe", "")
        )
        if isinstance(outcome, MustChangePassword):
            return site.redirect("/compte/mot-de-passe", outcome.session_id)
        if isinstance(outcome, SignedIn):
            return site.redirect("/accueil", outcome.session_id)
        blocked = outcome.message if isinstance(outcome, Blocked) else None
        error = None if isinstance(outcome, Blocked) else outcome.message
        return self.identification_page(
            request, identifiant=identifier.strip()[:254], blocked=blocked, error=error
        )

    # --- the Pro Santé Connect door: to the provider, and back ---

    def _psc(self) -> PscClient:
        """The portal's PSC registration; without one, there is no PSC door at all."""
        if self.site.psc is None:
            raise HTTPException(404)
        return self.site.psc

    async def psc_start(self, request: Request) -> Response:
        psc = self._psc()
        session = self.site.session_of(request)
        url, pending = await anyio.to_thread.run_sync(psc.begin)
        # A new session id for what only this browser may finish (state, nonce, verifier).
        sid = self.doors.stores.sessions.rotate(
            session.id, {**session.data, "psc": pending.to_dict()}
        )
        return self.site.redirect(url, sid)

    async def psc_return(self, request: Request) -> Response:
        psc = self._psc()
        session = self.site.session_of(request)
        pending = PscPending.from_dict(session.data.pop("psc", None))
        self.doors.stores.sessions.save(session.id, session.data)  # the state serves once
        try:
            login = await anyio.to_thread.run_sync(psc.finish, dict(request.query_params), pending)
        except PscRefused as exc:
            log.info("PSC login refused: %s", exc.reason)  # the reason only, never a token
            return self.identification_page(request, error=text("psc_failed"))
        outcome = self.doors.psc.login(session, login)
        if isinstance(outcome, SignedIn):
            return self.site.redirect("/accueil", outcome.session_id)
        return self.identification_page(request, error=outcome.message)

    # --- PSC's "authentification déportée" (CIBA, poll mode): approved on the e-CPS app ---

    async def ciba_page(self, request: Request) -> Response:
        psc = self._psc()
        if request.method == "GET":
            return self.site.page(request, "psc_deporte.html")
        session = self.site.session_of(request)
        fields = await self.site.form(request)
        binding = secrets.token_hex(2).upper()
        try:
            started = await anyio.to_thread.run_sync(
                psc.ciba_start, fields.get("identifiant", "").strip()[:32], binding
            )
        except PscRefused as exc:
            log.info("PSC CIBA refused: %s", exc.reason)
            return self.site.page(request, "psc_deporte.html", error=text("psc_failed"))
        session.data["ciba"] = started["auth_req_id"]
        self.doors.stores.sessions.save(session.id, session.data)
        return self.site.page(
            request, "psc_deporte.html", binding=binding, interval=started["interval"]
        )

    async def ciba_state(self, request: Request) -> Response:
        psc = self._psc()
        session, _body = await self.site.script_call(request)
        auth_req_id = session.data.get("ciba")
        if not isinstance(auth_req_id, str):
            return JSONResponse({"status": "refused", "message": text("psc_failed")})
        try:
            login = await anyio.to_thread.run_sync(psc.ciba_poll, auth_req_id)
        except PscRefused as exc:
            log.info("PSC CIBA refused: %s", exc.reason)
            return JSONResponse({"status": "refused", "message": text("psc_failed")})
        if login is None:
            return JSONResponse({"status": "pending"})
        session.data.pop("ciba", None)
        outcome = self.doors.psc.login(session, login)
        if isinstance(outcome, SignedIn):
            answer = JSONResponse({"status": "approved", "redirect": "/accueil"})
            return self.site.set_cookie(answer, outcome.session_id)
        return JSONResponse({"status": "refused", "message": outcome.message})

    # --- the CPS door: two calls of the page's script ---

    async def cps_challenge(self, request: Request) -> Response:
        session, _body = await self.site.script_call(request)
        return JSONResponse({"nonce": self.doors.challenge(session.id).nonce})

    async def cps_login(self, request: Request) -> Response:
        """The token the card signed for this session's nonce: the account's session, or
        the account creation."""
        site = self.site
        session, body = await site.script_call(request)
        posted = posted_token(body)
        if isinstance(posted, Refused):
            return JSONResponse({"code": posted.code, "message": posted.message}, 400)
        token, nonce, reader = posted
        if site.card_door_blocks:  # revocation checks may wait on the network
            outcome = await anyio.to_thread.run_sync(
                lambda: self.doors.card.login(session, token, nonce, reader=reader)
            )
        else:
            outcome = self.doors.card.login(session, token, nonce, reader=reader)
        if isinstance(outcome, Refused):
            return JSONResponse({"code": outcome.code, "message": outcome.message}, 401)
        to = "/accueil" if isinstance(outcome, SignedIn) else "/creer-compte/finaliser"
        assert isinstance(outcome, SignedIn | MayCreateAccount)
        return site.set_cookie(JSONResponse({"redirect": to}), outcome.session_id)

    # --- signed-in pages ---

    async def home(self, request: Request) -> Response:
        _session, account = self.site.signed_in(request)
        last = french_time(account.previous_login)
        return self.site.page(request, "accueil.html", last_login=last)

    async def events(self, request: Request) -> Response:
        _session, account = self.site.signed_in(request)
        return self.site.page(request, "evenements.html", events=self.recent_events(account.key))

    def recent_events(self, key: str, limit: int = 10) -> list[str]:
        """ "Mes derniers évènements", as the page prints them."""
        return [e.shown() for e in self.site.stores.journal.latest(key, limit)]

    async def patient(self, request: Request) -> Response:
        site = self.site
        session, _account = site.signed_in(request)
        if session.data.get("via") != "cps":
            return site.page(request, "patient.html", refused=True)
        if request.method == "GET":
            return site.page(request, "patient.html")
        fields = await site.form(request)
        try:
            nir = Nir.parse(fields.get("nir", ""))
        except NirError as exc:
            return site.page(request, "patient.html", error=nir_message(exc.code))
        log.info("patient page opened for NIR %s", nir.masked())  # never the whole number
        patient = {
            "nir": nir.formatted(),
            "name": fields.get("nom", "")[:100],
            "first_name": fields.get("prenom", "")[:100],
        }
        return site.page(request, "patient.html", patient=patient)

    async def logout(self, request: Request) -> Response:
        site = self.site
        fields = await site.form(request)
        self.doors.logout(site.session_of(request))
        ended = fields.get("raison") == "carte"
        return site.signed_out("/identification?fin=carte" if ended else "/identification")

    # --- public pages ---

    async def root(self, request: Request) -> Response:
        site = self.site
        session = site.session_of(request)
        signed_in = site.doors.signed_in(session) is not None
        return site.redirect("/accueil" if signed_in else "/identification", session.id)

    async def outbox(self, request: Request) -> Response:
        """What the portal sent, for the demonstration: never on a public name."""
        if not self.site.loopback(request):
            raise HTTPException(404)
        outbox = self.site.stores.outbox
        mails, letters = (outbox.latest(channel) for channel in (Channel.EMAIL, Channel.POST))
        return self.site.page(request, "courrier.html", mails=mails, letters=letters)

    async def simple(self, request: Request) -> Response:
        name = {"/configuration": "configuration.html", "/aide": "aide.html"}[request.url.path]
        return self.site.page(request, name)

    async def client_js(self, request: Request) -> Response:
        return Response(self.site.client.text, media_type="text/javascript; charset=utf-8")
