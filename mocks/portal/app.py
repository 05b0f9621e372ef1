"""A mock amelipro-like portal, built only on ``cardkit.portal`` and ``cardkit.auth`` as a real
portal would be: server-rendered French pages (Starlette + Jinja2, no build step), the
bridge reached from the page through cardkit's JS client, which the portal hosts itself.

Doors: identifier (e-mail, N° AM, N° FINESS) + password, with the lockout amelipro has
(third wrong password: blocked, "ou connectez-vous avec votre carte CPS", which unblocks at
once); CPS login (challenge bound to the session, token validated at the portal's own
origin); account creation (:mod:`mocks.portal.enrolment`). Patient identification (typed
NIR or "Lire carte Vitale") needs a CPS session. NIRs never reach the portal's logs.

State: records (accounts, events, links, outboxes) in SQLite; sessions, login challenges
and the lockout in the *store*, SQLite too by default (one file: a CPS login is one
commit) or Redis, which several portal processes share (``--store redis://...``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request, cookie_parser
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from cardkit.auth import RevocationPolicy, TokenRejected, Validator, ValidatorConfig
from cardkit.auth.challenge import NonceStore, SqliteNonceStore
from cardkit.auth.trust import load_trust
from cardkit.pcsc_bridge.hosted import hosted_client
from cardkit.portal import (
    AccountBlocked,
    EventKind,
    Lockout,
    LockoutPolicy,
    LoginChallenges,
    PasswordHasher,
    PasswordPolicy,
    SqliteEventJournal,
    SqliteLockoutStore,
    account_key,
    may_create_account_by_card,
)
from cardkit.portal.lockout import LockoutStore
from cardkit.sqlite import Database
from cardkit.vitale.nir import Nir, NirError
from mocks.portal.data import Account, PortalData
from mocks.portal.demo import DEMO_PASSWORD, seed_demo
from mocks.portal.sessions import RedisSessions, Sessions, SqliteSessions, new_id, well_formed

log = logging.getLogger(__name__)

__all__ = ["DEMO_PASSWORD", "Portal", "PortalConfig", "create_portal", "seed_demo"]

HERE = Path(__file__).parent
COOKIE = "portail_session"
RESET_LINK_TTL = dt.timedelta(hours=1)
EMAIL_LINK_TTL = dt.timedelta(hours=24)
MAX_BODY = 64 * 1024
MAX_FIELD = 512
PURGE_EVERY = 60.0  # seconds between purges of expired sessions, challenges and links

#: What the page tells the user for each failure of a CPS login (bridge and portal codes).
CPS_MESSAGES = {
    "certificate_expired": "Le certificat de votre carte a expiré : commandez une nouvelle "
    "carte auprès de l'ANS.",
    "certificate_revoked": "Votre carte a été révoquée : contactez l'ANS.",
    "certificate_untrusted": "Votre carte n'est pas reconnue par ce portail.",
    "revocation_unavailable": "L'état de votre carte n'a pas pu être vérifié. N'hésitez pas "
    "à réessayer ou à vous connecter plus tard.",
    "nonce_replayed": "Cette connexion a déjà été utilisée : recommencez la connexion par "
    "carte CPS.",
    "signature_invalid": "La signature de la carte ne correspond pas à ce site (elle a été "
    "faite pour un autre) : recommencez la connexion depuis cette page.",
}

NIR_MESSAGES = {
    "nir_length": "un NIR a 13 caractères suivis de la clé (2 chiffres)",
    "nir_character": "seuls des chiffres (et 2A ou 2B pour la Corse) sont attendus",
    "nir_sex": "le premier chiffre doit être 1 ou 2",
    "nir_month": "le mois de naissance n'est pas valide",
    "nir_department": "le département de naissance n'est pas valide",
    "nir_key": "la clé ne correspond pas au numéro (vérifiez la saisie)",
}


def nir_problem(exc: NirError) -> str:
    return NIR_MESSAGES.get(exc.code, "il ne correspond à aucun numéro possible")


@dataclass
class PortalConfig:
    origin: str = "http://localhost:8000"
    bridge_port: int = 38470
    #: ``sqlite:PATH`` (or a bare PATH, or ``:memory:``) or ``redis://...``: where sessions,
    #: login challenges and the lockout live.
    store: str = ":memory:"
    #: The SQLite file of the records when the store is Redis (with SQLite, the same file).
    records: str = "portal.db"
    lockout_minutes: int = 30
    trust: str = "test"
    revocation: RevocationPolicy = RevocationPolicy.OFF
    #: Per deployment: the session ends when the CPS that opened it leaves its reader.
    session_follows_card: bool = False


def parse_store(spec: str) -> tuple[str, str]:
    """``("redis", url)`` or ``("sqlite", path)``; a clear ``ValueError`` otherwise."""
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return "redis", spec
    path = spec.removeprefix("sqlite:")
    if not path or "://" in path:
        raise ValueError(f"unknown store {spec!r}: expected sqlite:PATH, PATH or redis://...")
    return "sqlite", path


_UNREAD = object()  # page(): the request's account was not read yet


class Redirect(Exception):
    """Raised by a handler that must send the browser elsewhere (not signed in, a temporary
    password to change first)."""

    def __init__(self, to: str) -> None:
        super().__init__(to)
        self.to = to


class Portal:
    """The portal's state: records, store, lockout, journal, challenges, validator."""

    def __init__(self, config: PortalConfig) -> None:
        self.config = config
        kind, where = parse_store(config.store)
        nonces: NonceStore
        lockout: LockoutStore
        if kind == "redis":
            from cardkit.auth.redis_store import RedisNonceStore, redis_client
            from cardkit.portal.redis_lockout import RedisLockoutStore

            client = redis_client(url=where)
            client.ping()  # a wrong URL is said at start, not at the first visitor
            self.db = Database(config.records)
            self.sessions: Sessions = RedisSessions(client)
            nonces = RedisNonceStore(client, prefix="portail:nonce:")
            lockout = RedisLockoutStore(client, prefix="portail:lockout:")
        else:
            self.db = Database(where)
            self.sessions = SqliteSessions(self.db)
            nonces = SqliteNonceStore(self.db)
            lockout = SqliteLockoutStore(self.db)
        self.data = PortalData(self.db)
        self.journal = SqliteEventJournal(self.db)
        self.lockout = Lockout(
            lockout, LockoutPolicy(3, dt.timedelta(minutes=config.lockout_minutes))
        )
        roots, intermediates = load_trust(config.trust)
        self.validator = Validator(
            ValidatorConfig(roots, intermediates, revocation=config.revocation)
        )
        self.claims_in_db = kind == "sqlite"
        master = self.data.secret()
        self.csrf_key = hmac.digest(master, b"csrf", "sha256")
        self.challenges = LoginChallenges(
            nonces, self.validator, config.origin, hmac.digest(master, b"challenge", "sha256")
        )
        self.hasher = PasswordHasher()
        self.policy = PasswordPolicy()
        # Checked when the identifier names no account, so that a wrong identifier takes as
        # long as a wrong password (the time tells nobody who has an account).
        self.decoy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        self._next_purge = 0.0

    def purge_now_and_then(self) -> None:
        """Expired sessions, challenges and links go, at most once a minute."""
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_EVERY
        self.sessions.purge()
        self.challenges.store.purge_expired()
        self.data.purge()

    async def password_matches(self, account: Account | None, password: str) -> bool:
        """Argon2 in a worker thread: 50 ms of hashing must not stall every other visitor."""
        stored = account.password_hash if account and account.password_hash else None
        matches = await anyio.to_thread.run_sync(
            self.hasher.verify, stored or self.decoy_hash, password
        )
        return bool(matches and stored)


async def read_bounded(receive: Receive, length: str | None) -> bytes:
    """A request body, refused past :data:`MAX_BODY` whether announced by Content-Length or
    sent chunked (read up to the limit, never all of it)."""
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise HTTPException(413, "Formulaire trop volumineux.")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            raise HTTPException(400, "Requête interrompue.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, "Formulaire trop volumineux.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def bounded_body(request: Request) -> bytes:
    """:func:`read_bounded` for a Starlette handler; form() and json() then read the copy."""
    body = await read_bounded(request.receive, request.headers.get("content-length"))
    request._body = body  # what Request.body() caches
    return body


#: What a script call's handler answers: HTTP status, JSON body, a new session id or None.
Answer = tuple[int, dict[str, Any], "str | None"]


class ScriptCall:
    """A page script's JSON call (the CPS login's two) as a bare ASGI endpoint, reached
    before Starlette's router and exception middleware (:class:`ScriptCalls`).

    They are the hot path of a login, where Starlette's Request, cookie parsing, routing and
    JSONResponse cost more than the portal's own work around the validation (``bench
    portal``). The checks are those of every door: the session cookie with the CSRF token
    in a header, a bounded body; a refusal ends on the site's French error page.
    """

    def __init__(self, site: Site, handler: Callable[[str, bytes], Awaitable[Answer]]) -> None:
        self.site = site
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cookie = csrf = ""
        length = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie = value.decode("latin-1")
            elif name == b"x-csrf-token":
                csrf = value.decode("latin-1")
            elif name == b"content-length":
                length = value.decode("latin-1")
        sid = cookie_parser(cookie).get(COOKIE)  # what request.cookies reads on the pages
        try:
            self.site.check_csrf(csrf, sid)
            assert sid is not None
            body = await read_bounded(receive, length)
        except HTTPException as exc:
            await self.site.error_page(exc.status_code, exc.detail)(scope, receive, send)
            return
        status, answer, new_sid = await self.handler(sid, body)
        raw = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
        ]
        if new_sid is not None:
            headers.append((b"set-cookie", self.site.cookie(new_sid).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})


class ScriptCalls:
    """ASGI middleware: a POST to a :class:`ScriptCall`'s path goes straight to it; every
    other request (a GET there too: 405) to the app it wraps."""

    def __init__(self, app: ASGIApp, calls: dict[str, ScriptCall]) -> None:
        self.app = app
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            call = self.calls.get(scope["path"])
            if call is not None:
                await call(scope, receive, send)
                return
        await self.app(scope, receive, send)


def french_time(iso: str | None) -> str | None:
    if not iso:
        return None
    at = dt.datetime.fromisoformat(iso).astimezone()
    return f"le {at:%d/%m/%Y - %H:%M}"


class Site:
    """The pages. One instance per app; handlers are its methods."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.client = hosted_client()
        self.client_url = f"/static/js/{self.client.filename}"
        self.import_map = self.client.import_map(self.client_url)
        self.secure = portal.config.origin.startswith("https://")

    # --- sessions and CSRF ---

    def session_of(self, request: Request) -> tuple[str, dict[str, Any]]:
        """The visitor's session: an empty one (stored only when saved) under a new id when
        the cookie holds none."""
        sid = request.cookies.get(COOKIE, "")
        if well_formed(sid):
            data = self.portal.sessions.get(sid) or {}
        else:
            self.portal.purge_now_and_then()
            sid, data = new_id(), {}
        request.state.sid = sid
        return sid, data

    def cookie(self, sid: str) -> str:
        # By hand: http.cookies costs more than the rest of a redirect (ids are URL-safe).
        secure = "; Secure" if self.secure else ""
        return f"{COOKIE}={sid}; HttpOnly; Path=/; SameSite=lax{secure}"

    def with_cookie(self, response: Response, sid: str) -> Response:
        response.headers.append("set-cookie", self.cookie(sid))
        return response

    def redirect(self, to: str, sid: str) -> Response:
        return self.with_cookie(RedirectResponse(to, 303), sid)

    async def form(self, request: Request) -> dict[str, str]:
        """The posted fields, once the size, the encoding and the CSRF token are right."""
        await bounded_body(request)
        try:
            raw = await request.form()
        except Exception:
            raise HTTPException(400, "Formulaire illisible.") from None
        fields = {k: v for k, v in raw.items() if isinstance(v, str)}
        if any(len(v) > MAX_FIELD for v in fields.values()):
            raise HTTPException(400, "Un champ du formulaire est trop long.")
        if any("\ufffd" in v or "\x00" in v for v in fields.values()):
            raise HTTPException(400, "Le formulaire contient des caractères invalides.")
        self.check_csrf(fields.get("csrf", ""), request.state.sid)
        return fields

    def csrf_for(self, sid: str) -> str:
        """The session's CSRF token: a MAC of its id (nothing to store or look up; a new id
        at login, a new token)."""
        mac = hmac.digest(self.portal.csrf_key, sid.encode(), "sha256")
        return base64.urlsafe_b64encode(mac[:24]).decode()

    def check_csrf(self, token: str, sid: str | None) -> None:
        if not sid or not hmac.compare_digest(token.encode(), self.csrf_for(sid).encode()):
            raise HTTPException(403, "Le formulaire a expiré. Rechargez la page et recommencez.")

    def page(self, request: Request, name: str, data: dict[str, Any], **context: Any) -> Response:
        account = getattr(request.state, "account", _UNREAD)  # signed_in() read it already
        if account is _UNREAD:
            account = self.portal.data.get(data["account"]) if data.get("account") else None
        follow = data.get("card_reader") if self.portal.config.session_follows_card else None
        response = self.templates.TemplateResponse(
            request,
            name,
            {
                "csrf": self.csrf_for(request.state.sid),
                "account": account,
                "via_card": data.get("via") == "cps",
                "follow_reader": follow,
                "follow_card": self.portal.config.session_follows_card,
                "bridge_port": self.portal.config.bridge_port,
                "client_url": self.client_url,
                "import_map": self.import_map,
                **context,
            },
        )
        return self.with_cookie(response, request.state.sid)

    def signed_in(self, request: Request) -> tuple[str, dict[str, Any], Account]:
        """The session's account; a temporary password must be changed before anything."""
        sid, data = self.session_of(request)
        account = self.portal.data.get(data["account"]) if data.get("account") else None
        if account is None:
            raise Redirect("/identification")
        request.state.account = account
        if data.get("must_change") and request.url.path != "/compte/mot-de-passe":
            raise Redirect("/compte/mot-de-passe")
        return sid, data, account

    def login(
        self,
        sid: str,
        account: Account,
        via: str,
        *,
        unblock: bool = False,
        recorded: bool = False,
        **extra: Any,
    ) -> str:
        """Everything a login changes, in one transaction; the session's new id. The
        account's login is recorded here, unless it was already (``recorded``: the CPS door
        finds the account and records the login in one statement)."""
        portal = self.portal
        now = dt.datetime.now(dt.UTC)
        with portal.db.transaction():
            if unblock and portal.lockout.unblock_by_card(str(account.id), now):
                portal.journal.record(str(account.id), EventKind.UNBLOCKED_BY_CARD, now)
            if not recorded:
                account = portal.data.touch_login(account, now)
            kind = {"cps": EventKind.CARD_LOGIN, "password": EventKind.PASSWORD_LOGIN}.get(via)
            if kind is not None:  # an account just created by clé de sécurité: that event
                portal.journal.record(str(account.id), kind, now)
            session = {
                "account": account.id,
                "via": via,
                "previous_login": account.previous_login,
                **extra,
            }
            return portal.sessions.rotate(sid, session)

    def recent_events(self, account: Account, limit: int = 10) -> list[str]:
        """ "Mes derniers évènements", as the page prints them."""
        return [e.shown() for e in self.portal.journal.latest(str(account.id), limit)]

    def send_email_link(self, account_id: int, email: str, purpose: str) -> None:
        """A link confirming ``email`` for the account (``verify``: a new account's address;
        ``email``: a change, effective when the link is used), sent to that address."""
        token = self.portal.data.new_link(account_id, EMAIL_LINK_TTL, purpose, email)
        path = "/compte/email/valider" if purpose == "email" else "/creer-compte/valider"
        self.portal.data.send(
            email,
            "Confirmez votre adresse e-mail",
            f"Pour confirmer que {email} est votre adresse, ouvrez ce lien (valable 24 "
            f"heures, une seule fois) : {self.portal.config.origin}{path}?lien={token}",
        )

    # --- the password door ---

    def identification_page(
        self, request: Request, sid: str, data: dict[str, Any], **context: Any
    ) -> Response:
        """The three doors, the CPS one with a challenge already issued to this session: the
        first click goes straight to the card, with no round trip to ask for one (a signed
        challenge costs no storage, so a visitor who never clicks costs nothing)."""
        challenge = self.portal.challenges.issue(sid)
        return self.page(request, "identification.html", data, challenge=challenge, **context)

    async def identification(self, request: Request) -> Response:
        sid, data = self.session_of(request)
        ended = request.query_params.get("fin") == "carte"
        return self.identification_page(request, sid, data, card_removed=ended)

    async def password_login(self, request: Request) -> Response:
        sid, data = self.session_of(request)
        fields = await self.form(request)
        identifier = fields.get("identifiant", "").strip()
        password = fields.get("mot_de_passe", "")
        portal = self.portal

        def again(**context: Any) -> Response:
            return self.identification_page(request, sid, data, identifiant=identifier, **context)

        found = portal.data.by_identifier(identifier) if identifier else []
        if len(found) > 1:
            return again(
                error="Cette adresse e-mail est partagée par plusieurs comptes : connectez-vous "
                "avec votre N° d'Assurance Maladie ou votre N° FINESS."
            )
        account = found[0] if found else None
        if account is not None:
            try:
                portal.lockout.check(str(account.id))
            except AccountBlocked as exc:
                return again(blocked=exc.minutes_left)
        if not await portal.password_matches(account, password):
            if account is not None:
                now = dt.datetime.now(dt.UTC)
                state = portal.lockout.failed(str(account.id), now)
                if state.blocked(now):
                    if state.counted:  # this failure blocked it (once per block)
                        portal.journal.record(str(account.id), EventKind.ACCOUNT_BLOCKED, now)
                    return again(blocked=state.minutes_left(now))
            return again(error="Identifiant ou mot de passe incorrect.")
        assert account is not None
        if account.must_change and (account.password_expires or 0) < time.time():
            return again(
                error="Votre mot de passe provisoire a expiré (il était valable 15 jours) : "
                "demandez-en un nouveau avec « Créer un compte », ou contactez l'assistance "
                "technique."
            )
        portal.lockout.succeeded(str(account.id))
        extra = {"must_change": True} if account.must_change else {}
        new = self.login(sid, account, "password", **extra)
        return self.redirect("/compte/mot-de-passe" if extra else "/accueil", new)

    # --- the CPS door ---

    async def cps_challenge(self, sid: str, body: bytes) -> Answer:
        return 200, {"nonce": self.portal.challenges.issue(sid).nonce}, None

    async def cps_login(self, sid: str, body: bytes) -> Answer:
        """The token the card signed for this session's nonce (our page posts it as a JSON
        string, which the validator reads as is; an object is accepted too): the account's
        session, or the account creation."""
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
            return 400, {"code": "bad_request", "message": "Requête invalide."}, None
        raw = token if isinstance(token, str) else json.dumps(token)
        portal = self.portal
        # With the challenges' claims in the records' file, the claim (the validation's last
        # step) and the login are one commit; the write lock is taken at the claim, after
        # the signature and certificate checks.
        outer = portal.db.transaction(immediate=False) if portal.claims_in_db else nullcontext()
        try:
            with outer:
                who = portal.challenges.login(sid, raw, nonce)
                key = account_key(who)
                account = portal.data.login_by_card(key, dt.datetime.now(dt.UTC))
                if account is not None:  # login() is its own transaction, or part of outer
                    follow = {"card_reader": reader[:200]} if reader else {}
                    new = self.login(sid, account, "cps", unblock=True, recorded=True, **follow)
        except TokenRejected as exc:
            message = CPS_MESSAGES.get(exc.reason, "La connexion par carte CPS a échoué.")
            return 401, {"code": exc.reason, "message": message}, None
        if account is None:
            data = portal.sessions.get(sid) or {}
            decision = may_create_account_by_card(who)
            kind = "transport" if who.card_type.value == "CPE-TRANSPORT" else "ps"
            data["pending"] = {
                "door": "carte",
                "name": who.display_name,
                "allowed": decision.allowed,
                "reason": decision.reason,
                "fields": {"kind": kind, "display_name": who.display_name, "card_key": key},
            }
            sid = portal.sessions.rotate(sid, data)  # the card proved who is here: a new id
            return 200, {"redirect": "/creer-compte/finaliser"}, sid
        return 200, {"redirect": "/accueil"}, new

    # --- signed-in pages ---

    async def home(self, request: Request) -> Response:
        _sid, data, _account = self.signed_in(request)
        last = french_time(data.get("previous_login"))
        return self.page(request, "accueil.html", data, last_login=last)

    async def events(self, request: Request) -> Response:
        _sid, data, account = self.signed_in(request)
        shown = self.recent_events(account)
        return self.page(request, "evenements.html", data, events=shown)

    async def patient(self, request: Request) -> Response:
        _sid, data, _account = self.signed_in(request)
        if data.get("via") != "cps":
            return self.page(request, "patient.html", data, refused=True)
        if request.method == "GET":
            return self.page(request, "patient.html", data)
        fields = await self.form(request)
        try:
            nir = Nir.parse(fields.get("nir", ""))
        except NirError as exc:
            return self.page(
                request, "patient.html", data, error=f"NIR invalide : {nir_problem(exc)}."
            )
        log.info("patient page opened for NIR %s", nir.masked())  # never the whole number
        return self.page(
            request,
            "patient.html",
            data,
            patient={
                "nir": nir.formatted(),
                "name": fields.get("nom", "")[:100],
                "first_name": fields.get("prenom", "")[:100],
            },
        )

    async def logout(self, request: Request) -> Response:
        sid, _data = self.session_of(request)
        fields = await self.form(request)
        self.portal.sessions.drop(sid)
        target = (
            "/identification?fin=carte" if fields.get("raison") == "carte" else "/identification"
        )
        response = RedirectResponse(target, 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # --- public pages ---

    async def root(self, request: Request) -> Response:
        sid, data = self.session_of(request)
        return self.redirect("/accueil" if data.get("account") else "/identification", sid)

    async def outbox(self, request: Request) -> Response:
        _sid, data = self.session_of(request)
        mails, letters = self.portal.data.outbox("email"), self.portal.data.outbox("post")
        return self.page(request, "courrier.html", data, mails=mails, letters=letters)

    async def simple(self, request: Request) -> Response:
        _sid, data = self.session_of(request)
        name = {"/configuration": "configuration.html", "/aide": "aide.html"}[request.url.path]
        return self.page(request, name, data)

    async def client_js(self, request: Request) -> Response:
        return Response(self.client.text, media_type="text/javascript; charset=utf-8")

    # --- errors ---

    async def error(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, Redirect):
            return RedirectResponse(exc.to, 303)
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "Erreur interne du portail."
        if status == 404:
            detail = "Cette page n'existe pas."
        if status == 405:
            detail = "Cette action n'est pas possible sur cette page."
        if status >= 500:
            log.error("portal error on %s: %s", request.url.path, type(exc).__name__)
        return self.error_page(status, detail)

    def error_page(self, status: int, detail: str) -> Response:
        return HTMLResponse(
            self.templates.get_template("erreur.html").render(status=status, detail=detail),
            status_code=status,
        )


def create_portal(config: PortalConfig | None = None) -> Starlette:
    from mocks.portal import enrolment, security

    portal = Portal(config or PortalConfig())
    site = Site(portal)
    enrol = enrolment.Enrolment(site)
    settings = security.AccountSecurity(site)
    calls = {
        "/cps/challenge": ScriptCall(site, site.cps_challenge),
        "/cps/connexion": ScriptCall(site, site.cps_login),
    }
    routes = [
        Route("/", site.root),
        Route("/identification", site.identification),
        Route("/connexion", site.password_login, methods=["POST"]),
        # Reached only by other methods (405): ScriptCalls takes the POSTs first.
        *(Route(path, call, methods=["POST"]) for path, call in calls.items()),
        Route("/creer-compte", enrol.choose),
        Route("/creer-compte/finaliser", enrol.finish, methods=["GET", "POST"]),
        Route("/creer-compte/cle", enrol.security_key, methods=["GET", "POST"]),
        Route("/creer-compte/courrier", enrol.by_post, methods=["GET", "POST"]),
        Route("/creer-compte/valider", settings.confirm_email, methods=["GET", "POST"]),
        Route("/accueil", site.home),
        Route("/compte", settings.account),
        Route("/compte/evenements", site.events),
        Route("/compte/mot-de-passe", settings.change_password, methods=["GET", "POST"]),
        Route("/compte/email", settings.change_email, methods=["POST"]),
        Route("/compte/email/valider", settings.confirm_email, methods=["GET", "POST"]),
        Route("/patient", site.patient, methods=["GET", "POST"]),
        Route("/deconnexion", site.logout, methods=["POST"]),
        Route("/mot-de-passe-oublie", settings.forgotten, methods=["GET", "POST"]),
        Route("/mot-de-passe/nouveau", settings.new_password, methods=["GET", "POST"]),
        Route("/courrier", site.outbox),
        Route("/configuration", site.simple),
        Route("/aide", site.simple),
        Route(site.client_url, site.client_js),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(ScriptCalls, calls=calls)],
        exception_handlers={Redirect: site.error, HTTPException: site.error, Exception: site.error},
    )
    app.state.portal = portal
    return app
