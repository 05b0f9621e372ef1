"""A mock amelipro-like portal, built only on ``cardkit.portal`` and ``cardkit.auth`` as a real
portal would be: server-rendered French pages (Starlette + Jinja2, no build step), the
bridge reached from the page through cardkit's JS client, which the portal hosts itself.

Doors: identifier (e-mail, N° AM, N° FINESS) + password, with the lockout amelipro has
(third wrong password: blocked, "ou connectez-vous avec votre carte CPS", which unblocks at
once); CPS login (challenge bound to the session, token validated at the portal's own
origin); account creation (:mod:`mocks.portal.enrolment`); account management
(:mod:`mocks.portal.account`). Patient identification (typed NIR or "Lire carte Vitale")
needs a CPS session. NIRs never reach the portal's logs.

State: :class:`cardkit.portal.Stores`, SQLite by default (one file: a CPS login is one
commit) or Redis for sessions, challenges and lockout, which several portal processes share
(``--store redis://...``).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mocks.portal.account import AccountPages
from mocks.portal.demo import DEMO_PASSWORD, seed_demo
from mocks.portal.enrolment import EnrolmentPages
from mocks.portal.login import Login
from mocks.portal.site import HERE, PortalConfig, Redirect, SecurityHeadersMiddleware, Site

__all__ = ["DEMO_PASSWORD", "PortalConfig", "create_portal", "seed_demo"]


def create_portal(config: PortalConfig | None = None) -> Starlette:
    site = Site(config or PortalConfig())
    login = Login(site)
    enrol = EnrolmentPages(site)
    account = AccountPages(site, login)
    routes = [  # the doors first: the router tries routes in order
        Route("/cps/connexion", login.cps_login, methods=["POST"]),
        Route("/cps/challenge", login.cps_challenge, methods=["POST"]),
        Route("/psc/connexion", login.psc_start),
        Route("/psc/retour", login.psc_return),
        Route("/psc/deporte", login.ciba_page, methods=["GET", "POST"]),
        Route("/psc/deporte/etat", login.ciba_state, methods=["POST"]),
        Route("/connexion", login.password_login, methods=["POST"]),
        Route("/identification", login.identification),
        Route("/", login.root),
        Route("/creer-compte", enrol.choose),
        Route("/creer-compte/finaliser", enrol.finish, methods=["GET", "POST"]),
        Route("/creer-compte/cle", enrol.security_key, methods=["GET", "POST"]),
        Route("/creer-compte/courrier", enrol.by_post, methods=["GET", "POST"]),
        Route("/creer-compte/valider", account.confirm_email, methods=["GET", "POST"]),
        Route("/accueil", login.home),
        Route("/compte", account.account),
        Route("/compte/evenements", login.events),
        Route("/compte/mot-de-passe", account.change_password, methods=["GET", "POST"]),
        Route("/compte/email", account.change_email, methods=["POST"]),
        Route("/compte/email/valider", account.confirm_email, methods=["GET", "POST"]),
        Route("/patient", login.patient, methods=["GET", "POST"]),
        Route("/deconnexion", login.logout, methods=["POST"]),
        Route("/mot-de-passe-oublie", account.forgotten, methods=["GET", "POST"]),
        Route("/mot-de-passe/nouveau", account.new_password, methods=["GET", "POST"]),
        Route("/configuration", login.simple),
        Route("/aide", login.simple),
        Route(site.client_url, login.client_js),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    if site.config.demo:
        routes.append(Route("/courrier", login.outbox))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeadersMiddleware, headers=site.headers)],
        exception_handlers={Redirect: site.error, HTTPException: site.error, Exception: site.error},
    )
    app.state.site = site
    return app
