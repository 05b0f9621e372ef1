"""A second portal, in Flask: the CPS door and the password door with its lockout, on nothing
but ``cardkit.portal``'s public API, as a portal in another framework than the mock's
(Starlette) adopts it. Tested in Chromium through the agent (tests/e2e/test_flask_portal.py)."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask, Response, abort, g, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from markupsafe import escape

from cardkit.auth import RevocationPolicy, Validator, ValidatorConfig
from cardkit.auth.trust import load_trust
from cardkit.portal import (
    Blocked,
    Doors,
    MustChangePassword,
    Refused,
    SecurityHeaders,
    SignedIn,
    Stores,
    bridge_messages,
    cookie_name,
    hosted_client,
    nonce,
    posted_token,
)

PAGE = """<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>{title}</title>
{import_map}<script type="application/json" id="messages">{messages}</script></head>
<body data-csrf="{csrf}" data-bridge-port="{port}"><h1>{title}</h1>{body}
<script type="module" src="/static/login.js" nonce="{nonce}"></script></body></html>"""

DOORS = """<p id="message">{message}</p>
<form method="post" action="/login" id="password-form"><input type="hidden" name="csrf"
value="{csrf}"><label>Identifiant <input name="identifier"></label><label>Mot de passe
<input name="password" type="password"></label><button>Se connecter</button></form>
<button id="cps-login" data-nonce="{challenge}">VOUS CONNECTER PAR CARTE CPS</button>
<p id="cps-error"></p>"""
#: What this small portal leaves to a full one (account creation, a temporary password).
ELSEWHERE = "Terminez cette démarche sur le portail principal."


def create_app(origin: str, store: str, bridge_port: int) -> Flask:
    stores = Stores.open(store)
    validator = Validator(ValidatorConfig(*load_trust("test"), revocation=RevocationPolicy.OFF))
    doors = Doors(stores, origin=origin, validator=validator)
    secure = origin.startswith("https://")
    cookie = cookie_name(secure)
    headers = SecurityHeaders(connect=(f"http://127.0.0.1:{bridge_port}",), https=secure)
    client = hosted_client()
    client_url = f"/js/{client.filename}"
    messages = json.dumps(bridge_messages(), ensure_ascii=False).replace("<", "\\u003c")
    app = Flask(__name__, static_folder=str(Path(__file__).with_name("static")))
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.extensions["cardkit"] = doors

    @app.before_request
    def open_session() -> None:
        g.nonce = nonce()
        g.session = doors.session(request.cookies.get(cookie))
        g.cookie = g.session.id if g.session.fresh else None

    @app.after_request
    def finish(response: Response) -> Response:
        private = not request.path.startswith(("/static/", "/js/"))
        for name, value in headers.headers(g.nonce, private=private):
            response.headers[name] = value
        if g.cookie:
            response.set_cookie(cookie, g.cookie, secure=secure, httponly=True, samesite="Lax")
        return response

    def check_csrf(token: str | None) -> None:
        if not doors.check_csrf(g.session.id, token or ""):
            abort(403)

    def page(title: str, body: str) -> str:
        return PAGE.format(
            title=title,
            body=body,
            csrf=doors.csrf_token(g.session.id),
            port=bridge_port,
            nonce=g.nonce,
            messages=messages,
            import_map=client.import_map(client_url, nonce=g.nonce),
        )

    def identification(message: str = "") -> str:
        challenge = doors.challenge(g.session.id).nonce
        csrf = doors.csrf_token(g.session.id)
        body = DOORS.format(message=escape(message), csrf=csrf, challenge=challenge)
        return page("Identification", body)

    @app.get("/")
    def index() -> str:
        return identification()

    @app.post("/login")
    def password_login() -> ResponseReturnValue:
        check_csrf(request.form.get("csrf"))
        form = request.form
        identifier, password = form.get("identifier", ""), form.get("password", "")
        outcome = doors.password.login(g.session, identifier, password)
        if isinstance(outcome, MustChangePassword):
            return identification(ELSEWHERE)
        if isinstance(outcome, SignedIn):
            g.cookie = outcome.session_id
            return redirect("/home", 303)
        assert isinstance(outcome, Blocked | Refused)
        return identification(outcome.message)

    @app.post("/cps/challenge")
    def cps_challenge() -> Response:
        check_csrf(request.headers.get("X-CSRF-Token"))
        return jsonify(nonce=doors.challenge(g.session.id).nonce)

    @app.post("/cps/login")
    def cps_login() -> ResponseReturnValue:
        check_csrf(request.headers.get("X-CSRF-Token"))
        posted = posted_token(request.get_data())
        if isinstance(posted, Refused):
            return jsonify(code=posted.code, message=posted.message), 400
        token, challenge, _reader = posted
        outcome = doors.card.login(g.session, token, challenge)
        if isinstance(outcome, SignedIn):
            g.cookie = outcome.session_id
            return jsonify(redirect="/home")
        if isinstance(outcome, Refused):
            return jsonify(code=outcome.code, message=outcome.message), 401
        return jsonify(
            code="no_account", message="Créez votre compte sur le portail principal."
        ), 403

    @app.get("/home")
    def home() -> ResponseReturnValue:
        account = doors.signed_in(g.session)
        if account is None:
            return redirect("/", 303)
        return page("Accueil", f'<p id="who">Bonjour {escape(account.display_name)}</p>')

    @app.get(client_url)
    def client_js() -> Response:
        return Response(client.text, mimetype="text/javascript")

    return app
