"""What every page of the mock portal shares: its configuration, the library's doors over
its stores, sessions and CSRF, bounded forms, page rendering and the security headers.

The portal is built only on ``cardkit.portal``'s public API, as a real portal would be, and
on Starlette's public one (no private attribute, no hand-built cookie or route bypass).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardkit.auth import RevocationPolicy, Validator, ValidatorConfig
from cardkit.auth.trust import load_trust
from cardkit.pcsc_bridge.contract import DEFAULT_PORT
from cardkit.portal import (
    Account,
    Doors,
    LockoutPolicy,
    SecurityHeaders,
    Session,
    Stores,
    bridge_messages,
    cookie_name,
    hosted_client,
    nonce,
)
from cardkit.portal.psc import PscClient

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MAX_BODY = 64 * 1024
MAX_FIELD = 512
MAX_FIELDS = 32
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


@dataclass
class PortalConfig:
    origin: str = "http://localhost:8000"
    bridge_port: int = DEFAULT_PORT
    #: ``sqlite:PATH`` (or a bare PATH, or ``:memory:``) or ``redis://...``: see
    #: :class:`cardkit.portal.Stores`.
    store: str = ":memory:"
    #: The SQLite file of the records when the store is Redis (with SQLite, the same file).
    records: str = "portal.db"
    lockout_minutes: int = 30
    trust: str = "test"
    revocation: RevocationPolicy = RevocationPolicy.OFF
    #: Per deployment: the session ends when the CPS that opened it leaves its reader.
    session_follows_card: bool = False
    #: The demonstration's extras: ``/courrier`` shows what the portal sent (loopback only).
    demo: bool = False
    #: What the page asks the agent for: cardkit's token, or Web eID's through the
    #: web-eid.js-shaped ``authenticate`` of the client (the card door takes either).
    wire_format: str = "cardkit:1"
    #: Pro Santé Connect: the provider's issuer URL and this portal's registration there
    #: (no issuer: no PSC door). The return URL is ``{origin}/psc/retour``.
    psc_issuer: str | None = None
    psc_client_id: str = "portail"
    psc_client_secret: str = ""


class Redirect(Exception):
    """Raised by a handler that must send the browser elsewhere (not signed in, a temporary
    password to change first)."""

    def __init__(self, to: str) -> None:
        super().__init__(to)
        self.to = to


class SecurityHeadersMiddleware:
    """Every response gets the library's security headers; a page's script nonce is made
    here, before the page renders (``request.state.csp_nonce``)."""

    def __init__(self, app: ASGIApp, headers: SecurityHeaders) -> None:
        self.app = app
        self.policy = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        script_nonce = nonce()
        scope.setdefault("state", {})["csp_nonce"] = script_nonce
        private = not scope["path"].startswith("/static/")
        extra = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.policy.headers(script_nonce, private=private)
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def french_time(iso: str | None) -> str | None:
    if not iso:
        return None
    at = dt.datetime.fromisoformat(iso).astimezone()
    return f"le {at:%d/%m/%Y - %H:%M}"


class Site:
    """The portal's shared machinery; the pages (:mod:`mocks.portal.login`,
    :mod:`mocks.portal.enrolment`, :mod:`mocks.portal.account`) are built on it."""

    def __init__(self, config: PortalConfig) -> None:
        self.config = config
        self.stores = Stores.open(config.store, config.records)
        roots, intermediates = load_trust(config.trust)
        validator = Validator(ValidatorConfig(roots, intermediates, revocation=config.revocation))
        policy = LockoutPolicy(3, dt.timedelta(minutes=config.lockout_minutes))
        self.doors = Doors(self.stores, origin=config.origin, validator=validator, lockout=policy)
        #: The validator may fetch OCSP or CRLs: then the card door runs in a worker thread.
        self.card_door_blocks = config.revocation is not RevocationPolicy.OFF
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.client = hosted_client()
        self.client_url = f"/static/js/{self.client.filename}"
        self.secure = config.origin.startswith("https://")
        self.cookie = cookie_name(self.secure)
        self.headers = SecurityHeaders(
            connect=(f"http://127.0.0.1:{config.bridge_port}",), https=self.secure
        )
        self.psc = (
            PscClient(
                config.psc_issuer,
                config.psc_client_id,
                config.psc_client_secret,
                config.origin + "/psc/retour",
            )
            if config.psc_issuer
            else None
        )
        raw = json.dumps(bridge_messages(), ensure_ascii=False, sort_keys=True)
        self.messages_json = raw.replace("<", "\\u003c")  # safe inside a <script> element

    # --- sessions and CSRF ---

    def session_of(self, request: Request) -> Session:
        """The request's session (one lookup per request): the cookie's, or a fresh one."""
        session: Session | None = getattr(request.state, "session", None)
        if session is None:
            session = self.doors.session(request.cookies.get(self.cookie))
            request.state.session = session
        return session

    def signed_in(self, request: Request) -> tuple[Session, Account]:
        """The session's account; a temporary password must be changed before anything."""
        session = self.session_of(request)
        account = self.doors.signed_in(session)
        if account is None:
            raise Redirect("/identification")
        request.state.account = account
        if session.data.get("must_change") and request.url.path != "/compte/mot-de-passe":
            raise Redirect("/compte/mot-de-passe")
        return session, account

    def check_csrf(self, session: Session, token: str) -> None:
        if not self.doors.check_csrf(session.id, token):
            raise HTTPException(403, "Le formulaire a expiré. Rechargez la page et recommencez.")

    def set_cookie(self, response: Response, session_id: str) -> Response:
        response.set_cookie(
            self.cookie, session_id, path="/", httponly=True, samesite="lax", secure=self.secure
        )
        return response

    def redirect(self, to: str, session_id: str) -> Response:
        return self.set_cookie(RedirectResponse(to, 303), session_id)

    def signed_out(self, to: str) -> Response:
        """To ``to``, the session's cookie gone (its session was dropped)."""
        response = RedirectResponse(to, 303)
        response.delete_cookie(self.cookie, path="/", secure=self.secure, httponly=True)
        return response

    # --- request bodies ---

    @staticmethod
    async def body(request: Request) -> bytes:
        """The request's body, refused past :data:`MAX_BODY` whether announced or sent
        chunked (read up to the limit, never all of it)."""
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            raise HTTPException(413, "Formulaire trop volumineux.")
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise HTTPException(413, "Formulaire trop volumineux.")
                chunks.append(chunk)
        except ClientDisconnect:
            raise HTTPException(400, "Requête interrompue.") from None
        return b"".join(chunks)

    async def form(self, request: Request) -> dict[str, str]:
        """The posted fields (URL-encoded, UTF-8), once the size, the encoding and the CSRF
        token are right."""
        raw = await self.body(request)
        try:
            pairs = urllib.parse.parse_qsl(
                raw.decode("utf-8"),
                keep_blank_values=True,
                errors="strict",
                max_num_fields=MAX_FIELDS,
            )
        except UnicodeDecodeError:
            raise HTTPException(400, "Le formulaire contient des caractères invalides.") from None
        except ValueError:
            raise HTTPException(400, "Formulaire illisible.") from None
        fields = dict(pairs)
        if any(len(v) > MAX_FIELD for v in fields.values()):
            raise HTTPException(400, "Un champ du formulaire est trop long.")
        if any("\x00" in v for v in fields.values()):
            raise HTTPException(400, "Le formulaire contient des caractères invalides.")
        self.check_csrf(self.session_of(request), fields.get("csrf", ""))
        return fields

    async def script_call(self, request: Request) -> tuple[Session, bytes]:
        """A page script's JSON call: the session, its CSRF token in a header, the body."""
        session = self.session_of(request)
        self.check_csrf(session, request.headers.get("x-csrf-token", ""))
        return session, await self.body(request)

    # --- pages ---

    def page(self, request: Request, name: str, **context: Any) -> Response:
        session = self.session_of(request)
        account = getattr(request.state, "account", None)
        if account is None and "account" in session.data:
            account = self.doors.signed_in(session)
        follow = session.data.get("card_reader") if self.config.session_follows_card else None
        script_nonce = request.state.csp_nonce
        response = self.templates.TemplateResponse(
            request,
            name,
            {
                "csrf": self.doors.csrf_token(session.id),
                "account": account,
                "via_card": session.data.get("via") == "cps",
                "follow_reader": follow,
                "follow_card": self.config.session_follows_card,
                "bridge_port": self.config.bridge_port,
                "wire_format": self.config.wire_format,
                "psc": self.psc is not None,
                "import_map": self.client.import_map(self.client_url, nonce=script_nonce),
                "csp_nonce": script_nonce,
                "messages_json": self.messages_json,
                "demo": self.config.demo,
                **context,
            },
        )
        if session.fresh:
            self.set_cookie(response, session.id)
        return response

    async def error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, Redirect):
            return RedirectResponse(exc.to, 303)
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "Erreur interne du portail."
        if status == 404:
            detail = "Cette page n'existe pas."
        if status == 405:
            detail = "Cette action n'est pas possible sur cette page."
        page = self.templates.get_template("erreur.html").render(status=status, detail=detail)
        if isinstance(exc, HTTPException):
            return HTMLResponse(page, status_code=status)
        # A crash is answered by Starlette's outermost middleware, outside the one that adds
        # the security headers: this page carries them itself.
        log.error("portal error on %s: %s", request.url.path, type(exc).__name__)
        return HTMLResponse(page, status_code=500, headers=dict(self.headers.headers(None)))

    def loopback(self, request: Request) -> bool:
        """Whether the request names the portal by a loopback name (the demo's pages that
        must never answer on a public name)."""
        host = request.headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.lower() in LOOPBACK_HOSTS
