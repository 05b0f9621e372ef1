"""A mock amelipro-like portal, built only on ``cardkit.portal`` and ``cardkit.auth`` as a real
portal would be: server-rendered French pages (Starlette + Jinja2, no build step), the
bridge reached from the page through cardkit's JS client, which the portal hosts itself.

Doors: identifier (e-mail, N° AM, N° FINESS) + password, with the lockout amelipro has
(third wrong password: blocked, "ou connectez-vous avec votre carte CPS", which unblocks at
once); CPS login (challenge bound to the session, token validated at the portal's own
origin); account creation with a CPS or a CPE transporteur. Patient identification (typed
NIR or "Lire carte Vitale") needs a CPS session. NIRs never reach the portal's logs.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from cardkit.auth import (
    MemoryNonceStore,
    RevocationPolicy,
    TokenRejected,
    Validator,
    ValidatorConfig,
)
from cardkit.auth.challenge import SqliteNonceStore
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
    WeakPassword,
    account_key,
    may_create_account_by_card,
)
from cardkit.vitale.nir import Nir, NirError
from mocks.portal.data import Account, PortalData

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
COOKIE = "portail_session"
RESET_LINK_TTL = dt.timedelta(hours=1)
DEMO_PASSWORD = "Demo-2026!"  # noqa: S105 - the demo accounts' published password
MAX_BODY = 64 * 1024
MAX_FIELD = 512

#: What the page tells the user for each failure of a CPS login (bridge and portal codes).
CPS_MESSAGES = {
    "certificate_expired": "Le certificat de votre carte a expiré : commandez une nouvelle "
    "carte auprès de l'ANS.",
    "certificate_revoked": "Votre carte a été révoquée : contactez l'ANS.",
    "certificate_untrusted": "Votre carte n'est pas reconnue par ce portail.",
    "revocation_unavailable": "L'état de votre carte n'a pas pu être vérifié. N'hésitez pas "
    "à réessayer ou à vous connecter plus tard.",
}


NIR_MESSAGES = {
    "nir_length": "un NIR a 13 caractères suivis de la clé (2 chiffres)",
    "nir_character": "seuls des chiffres (et 2A ou 2B pour la Corse) sont attendus",
    "nir_sex": "le premier chiffre doit être 1 ou 2",
    "nir_month": "le mois de naissance n'est pas valide",
    "nir_department": "le département de naissance n'est pas valide",
    "nir_key": "la clé ne correspond pas au numéro (vérifiez la saisie)",
}


@dataclass
class PortalConfig:
    origin: str = "http://localhost:8000"
    bridge_port: int = 38470
    data_path: str = ":memory:"
    lockout_minutes: int = 30
    trust: str = "test"
    revocation: RevocationPolicy = RevocationPolicy.OFF


class Portal:
    """The portal's state: records, lockout, journal, challenges, validator."""

    def __init__(self, config: PortalConfig) -> None:
        self.config = config
        self.data = PortalData(config.data_path)
        path = config.data_path
        self.lockout = Lockout(
            SqliteLockoutStore(path),
            LockoutPolicy(3, dt.timedelta(minutes=config.lockout_minutes)),
        )
        self.journal = SqliteEventJournal(path)
        roots, intermediates = load_trust(config.trust)
        self.validator = Validator(
            ValidatorConfig(roots, intermediates, revocation=config.revocation)
        )
        # Nonces live with the sessions: two portal processes on one file are one portal.
        nonces = MemoryNonceStore() if path == ":memory:" else SqliteNonceStore(path)
        self.challenges = LoginChallenges(nonces, self.validator, config.origin)
        self.hasher = PasswordHasher()
        self.policy = PasswordPolicy()


def _french_time(iso: str | None) -> str | None:
    if not iso:
        return None
    at = dt.datetime.fromisoformat(iso).astimezone()
    return f"le {at:%d/%m/%Y - %H:%M}"


def create_portal(config: PortalConfig | None = None) -> Starlette:
    portal = Portal(config or PortalConfig())
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    client = hosted_client()
    client_url = f"/static/js/{client.filename}"

    # --- sessions and CSRF ---

    def session_of(request: Request) -> tuple[str, dict[str, Any]]:
        sid = request.cookies.get(COOKIE)
        data = portal.data.session(sid)
        if sid is None or data is None:
            data = {"csrf": secrets.token_urlsafe(24)}
            sid = portal.data.new_session(data)
        request.state.sid = sid
        return sid, data

    def with_cookie(response: Response, sid: str) -> Response:
        response.set_cookie(
            COOKIE,
            sid,
            httponly=True,
            samesite="lax",
            secure=portal.config.origin.startswith("https://"),
            path="/",
        )
        return response

    def fresh_session(request: Request, old: str, data: dict[str, Any]) -> str:
        """A new session id at every login: an id planted before cannot ride the login."""
        portal.data.drop_session(old)
        data["csrf"] = secrets.token_urlsafe(24)
        return portal.data.new_session(data)

    async def form(request: Request, data: dict[str, Any]) -> dict[str, str]:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY:
            raise HTTPException(413, "Formulaire trop volumineux.")
        try:
            raw = await request.form()
        except Exception:
            raise HTTPException(400, "Formulaire illisible.") from None
        fields = {k: v for k, v in raw.items() if isinstance(v, str)}
        if any(len(v) > MAX_FIELD for v in fields.values()):
            raise HTTPException(400, "Un champ du formulaire est trop long.")
        token = fields.get("csrf", "")
        if not hmac.compare_digest(token.encode(), str(data.get("csrf", "")).encode()):
            raise HTTPException(403, "Le formulaire a expiré. Rechargez la page et recommencez.")
        return fields

    def check_json_csrf(request: Request, data: dict[str, Any]) -> None:
        token = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(token.encode(), str(data.get("csrf", "")).encode()):
            raise HTTPException(403, "La page a expiré. Rechargez-la et recommencez.")

    def page(request: Request, name: str, data: dict[str, Any], **context: Any) -> Response:
        account = portal.data.get(data["account"]) if data.get("account") else None
        response = templates.TemplateResponse(
            request,
            name,
            {
                "csrf": data.get("csrf"),
                "account": account,
                "via_card": data.get("via") == "cps",
                "bridge_port": portal.config.bridge_port,
                "client_url": client_url,
                "import_map": client.import_map(client_url),
                **context,
            },
        )
        return with_cookie(response, request.state.sid)

    def login(request: Request, sid: str, account: Account, via: str) -> str:
        now = dt.datetime.now(dt.UTC)
        previous = portal.data.touch_login(account, now)
        kind = EventKind.CARD_LOGIN if via == "cps" else EventKind.PASSWORD_LOGIN
        portal.journal.record(str(account.id), kind, now)
        return fresh_session(
            request, sid, {"account": account.id, "via": via, "previous_login": previous}
        )

    # --- pages ---

    async def root(request: Request) -> Response:
        sid, data = session_of(request)
        target = "/accueil" if data.get("account") else "/identification"
        return with_cookie(RedirectResponse(target, 303), sid)

    async def identification(request: Request) -> Response:
        _sid, data = session_of(request)
        return page(request, "identification.html", data)

    async def password_login(request: Request) -> Response:
        sid, data = session_of(request)
        fields = await form(request, data)
        identifier = fields.get("identifiant", "").strip()
        password = fields.get("mot_de_passe", "")
        found = portal.data.by_identifier(identifier) if identifier else []
        if len(found) > 1:
            return page(
                request,
                "identification.html",
                data,
                error="Cette adresse e-mail est partagée par plusieurs comptes : connectez-vous "
                "avec votre N° d'Assurance Maladie ou votre N° FINESS.",
                identifiant=identifier,
            )
        account = found[0] if found else None
        if account is not None:
            try:
                portal.lockout.check(str(account.id))
            except AccountBlocked as exc:
                return page(
                    request,
                    "identification.html",
                    data,
                    blocked=exc.minutes_left,
                    identifiant=identifier,
                )
        if (
            account is None
            or not account.password_hash
            or not portal.hasher.verify(account.password_hash, password)
        ):
            if account is not None:
                state = portal.lockout.failed(str(account.id))
                if state.blocked(dt.datetime.now(dt.UTC)):
                    portal.journal.record(str(account.id), EventKind.ACCOUNT_BLOCKED)
                    return page(
                        request,
                        "identification.html",
                        data,
                        blocked=state.minutes_left(dt.datetime.now(dt.UTC)),
                        identifiant=identifier,
                    )
            return page(
                request,
                "identification.html",
                data,
                error="Identifiant ou mot de passe incorrect.",
                identifiant=identifier,
            )
        portal.lockout.succeeded(str(account.id))
        new = login(request, sid, account, "password")
        return with_cookie(RedirectResponse("/accueil", 303), new)

    async def cps_challenge(request: Request) -> Response:
        sid, data = session_of(request)
        check_json_csrf(request, data)
        challenge = portal.challenges.issue(sid)
        return with_cookie(JSONResponse({"nonce": challenge.nonce}), sid)

    async def cps_login(request: Request) -> Response:
        sid, data = session_of(request)
        check_json_csrf(request, data)
        try:
            body = await request.json()
            token, nonce = body["token"], body["nonce"]
            if not isinstance(nonce, str) or not isinstance(token, dict | str):
                raise TypeError
        except Exception:
            return JSONResponse({"code": "bad_request", "message": "Requête invalide."}, 400)
        raw = token if isinstance(token, str) else json.dumps(token)
        try:
            who = portal.challenges.login(sid, raw, nonce)
        except TokenRejected as exc:
            message = CPS_MESSAGES.get(exc.reason, "La connexion par carte CPS a échoué.")
            return JSONResponse({"code": exc.reason, "message": message}, 401)
        key = account_key(who)
        account = portal.data.by_card(key)
        if account is None:
            decision = may_create_account_by_card(who)
            data["pending_card"] = {
                "key": key,
                "name": who.display_name,
                "allowed": decision.allowed,
                "reason": decision.reason,
                "kind": "transport" if who.card_type.value == "CPE-TRANSPORT" else "ps",
            }
            portal.data.save_session(sid, data)
            return with_cookie(JSONResponse({"redirect": "/creer-compte/carte"}), sid)
        if portal.lockout.unblock_by_card(str(account.id)):
            portal.journal.record(str(account.id), EventKind.UNBLOCKED_BY_CARD)
        new = login(request, sid, account, "cps")
        return with_cookie(JSONResponse({"redirect": "/accueil"}), new)

    async def create_by_card(request: Request) -> Response:
        sid, data = session_of(request)
        pending = data.get("pending_card")
        if not pending:
            return with_cookie(RedirectResponse("/identification", 303), sid)
        if request.method == "GET":
            return page(request, "creer_compte.html", data, pending=pending)
        fields = await form(request, data)
        if not pending["allowed"]:
            raise HTTPException(403, pending["reason"])
        email = fields.get("email", "").strip()
        password = fields.get("mot_de_passe", "")
        errors = []
        if "@" not in email or len(email) > 254:
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
            return page(request, "creer_compte.html", data, pending=pending, errors=errors)
        account = portal.data.create(
            kind=pending["kind"],
            display_name=pending["name"],
            email=email,
            card_key=pending["key"],
            password_hash=portal.hasher.hash(password),
        )
        portal.journal.record(str(account.id), EventKind.ACCOUNT_CREATED)
        data.pop("pending_card")
        new = login(request, sid, account, "cps")
        return with_cookie(RedirectResponse("/accueil", 303), new)

    def require_account(data: dict[str, Any]) -> Account:
        account = portal.data.get(data["account"]) if data.get("account") else None
        if account is None:
            raise HTTPException(401, "Connectez-vous pour accéder à cette page.")
        return account

    async def home(request: Request) -> Response:
        sid, data = session_of(request)
        if not data.get("account"):
            return with_cookie(RedirectResponse("/identification", 303), sid)
        require_account(data)
        return page(
            request, "accueil.html", data, last_login=_french_time(data.get("previous_login"))
        )

    async def events(request: Request) -> Response:
        _sid, data = session_of(request)
        account = require_account(data)
        return page(
            request,
            "evenements.html",
            data,
            events=[e.shown() for e in portal.journal.latest(str(account.id))],
        )

    async def patient(request: Request) -> Response:
        _sid, data = session_of(request)
        require_account(data)
        if data.get("via") != "cps":
            return page(request, "patient.html", data, refused=True)
        if request.method == "GET":
            return page(request, "patient.html", data)
        fields = await form(request, data)
        try:
            nir = Nir.parse(fields.get("nir", ""))
        except NirError as exc:
            reason = NIR_MESSAGES.get(exc.code, "il ne correspond à aucun numéro possible")
            return page(request, "patient.html", data, error=f"NIR invalide : {reason}.")
        log.info("patient page opened for NIR %s", nir.masked())  # never the whole number
        return page(
            request,
            "patient.html",
            data,
            patient={
                "nir": nir.formatted(),
                "name": fields.get("nom", "")[:100],
                "first_name": fields.get("prenom", "")[:100],
            },
        )

    async def forgotten(request: Request) -> Response:
        """A reset link by e-mail, asked with the e-mail address (the confirmation shows it)
        or the N° AM / FINESS (it does not, "par mesure de sécurité"). The answer is the same
        whether an account exists or not: the page tells nobody who has one."""
        _sid, data = session_of(request)
        if request.method == "GET":
            return page(request, "oubli.html", data)
        fields = await form(request, data)
        identifier = fields.get("identifiant", "").strip()
        by_email = "@" in identifier
        found = portal.data.by_identifier(identifier) if identifier else []
        if by_email and len(found) > 1:
            return page(
                request,
                "oubli.html",
                data,
                error="Cette adresse e-mail est partagée "
                "par plusieurs comptes : indiquez votre N° d'Assurance Maladie ou votre "
                "N° FINESS.",
            )
        if len(found) == 1 and found[0].email:
            token = portal.data.new_link(found[0].id, RESET_LINK_TTL)
            portal.data.send_mail(
                found[0].email,
                "Réinitialisation de votre mot de passe",
                f"Pour choisir un nouveau mot de passe, ouvrez ce lien (valable 1 heure, une "
                f"seule fois) : {portal.config.origin}/mot-de-passe/nouveau?lien={token}",
            )
        return page(
            request, "oubli.html", data, sent=True, shown_email=identifier if by_email else None
        )

    async def new_password(request: Request) -> Response:
        _sid, data = session_of(request)
        token = request.query_params.get("lien", "")[:100]
        if request.method == "GET":
            valid = portal.data.link_account(token) is not None
            return page(request, "nouveau_mdp.html", data, token=token, invalid=not valid)
        fields = await form(request, data)
        token = fields.get("lien", "")
        password = fields.get("mot_de_passe", "")
        errors = portal.policy.problems(password)
        if errors or password != fields.get("confirmation", ""):
            message = (
                ("Le mot de passe doit contenir " + ", ".join(errors) + ".")
                if errors
                else "Les deux mots de passe ne sont pas identiques."
            )
            return page(request, "nouveau_mdp.html", data, token=token, error=message)
        account_id = portal.data.use_link(token)
        if account_id is None:
            return page(request, "nouveau_mdp.html", data, token=token, invalid=True)
        portal.data.set_password(account_id, portal.hasher.hash(password))
        portal.lockout.succeeded(str(account_id))
        portal.journal.record(str(account_id), EventKind.PASSWORD_RESET)
        return page(request, "nouveau_mdp.html", data, done=True)

    async def outbox(request: Request) -> Response:
        _sid, data = session_of(request)
        return page(request, "courrier.html", data, mails=portal.data.outbox())

    async def logout(request: Request) -> Response:
        sid, data = session_of(request)
        await form(request, data)
        portal.data.drop_session(sid)
        response = RedirectResponse("/identification", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def simple(request: Request) -> Response:
        _sid, data = session_of(request)
        name = {"/configuration": "configuration.html", "/aide": "aide.html"}[request.url.path]
        return page(request, name, data)

    async def client_js(request: Request) -> Response:
        return Response(client.text, media_type="text/javascript; charset=utf-8")

    async def error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "Erreur interne du portail."
        if status == 404:
            detail = "Cette page n'existe pas."
        if status >= 500:
            log.error("portal error on %s: %s", request.url.path, type(exc).__name__)
        return HTMLResponse(
            templates.get_template("erreur.html").render(status=status, detail=detail),
            status_code=status,
        )

    routes = [
        Route("/", root),
        Route("/identification", identification),
        Route("/connexion", password_login, methods=["POST"]),
        Route("/cps/challenge", cps_challenge, methods=["POST"]),
        Route("/cps/connexion", cps_login, methods=["POST"]),
        Route("/creer-compte/carte", create_by_card, methods=["GET", "POST"]),
        Route("/accueil", home),
        Route("/compte/evenements", events),
        Route("/patient", patient, methods=["GET", "POST"]),
        Route("/deconnexion", logout, methods=["POST"]),
        Route("/mot-de-passe-oublie", forgotten, methods=["GET", "POST"]),
        Route("/mot-de-passe/nouveau", new_password, methods=["GET", "POST"]),
        Route("/courrier", outbox),
        Route("/configuration", simple),
        Route("/aide", simple),
        Route(client_url, client_js),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: error, Exception: error})
    app.state.portal = portal
    return app


def seed_demo(portal: Portal) -> list[dict[str, str]]:
    """The demo accounts, matching the mock card profiles; their identifiers and demo
    passwords (shown by ``cardkit portal accounts``, demo only)."""
    password = DEMO_PASSWORD
    rows = [
        (
            "ps",
            "CLAIRE LEFEBVRE",
            "claire.lefebvre@cabinet.example",
            "731016879",
            None,
            "RPPS:99700075122",
            "cps-doctor",
        ),
        (
            "ps",
            "THOMAS ROUX",
            "thomas.roux@soins.example",
            "931234567",
            None,
            "ADELI:759012345",
            "cps-nurse",
        ),
        (
            "director",
            "CENTRE DE SANTÉ DES TESTS",
            "direction@centre.example",
            None,
            "750000010",
            None,
            "(FINESS + mot de passe)",
        ),
        (
            "transport",
            "AMBULANCES DU TEST",
            "contact@ambulances.example",
            None,
            "920000044",
            "CPE:3920000044/000000007",
            "cpe-transport",
        ),
    ]
    out = []
    hashed = portal.hasher.hash(password)
    for kind, name, email, am, finess, key, card in rows:
        if key and portal.data.by_card(key):
            continue
        portal.data.create(
            kind=kind,
            display_name=name,
            email=email,
            am_number=am,
            finess=finess,
            card_key=key,
            password_hash=hashed,
        )
        out.append(
            {
                "name": name,
                "email": email,
                "am_number": am or "",
                "finess": finess or "",
                "card": card,
                "password": password,
            }
        )
    return out
