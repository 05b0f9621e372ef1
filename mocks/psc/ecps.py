"""e-CPS, the professional's mobile app, in the mock PSC provider: a login request waits
until the professional approves it on their "phone" (a page of the provider, where the
binding message shows and a code is typed), or refuses it.

Two ways in, as PSC has them: the browser flow (the provider's login page asks for the
national identifier, then waits for the approval) and CIBA in poll mode ("authentification
déportée": the portal's server asks at ``…/ext/ciba/auth`` with ``login_hint`` and
``binding_message``, then polls the token endpoint with the
``urn:openid:params:grant-type:ciba`` grant, answered ``authorization_pending``,
``slow_down``, ``access_denied`` or ``expired_token`` until the tokens come).
"""

from __future__ import annotations

import functools
import secrets
import time
from html import escape
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.hooks import hooked
from flask import Flask, Response, jsonify, make_response, redirect, request

from cardkit.auth import Professional
from cardkit.identity import DEFAULT_TRANSPORT_POLICIES
from mocks import pki
from mocks.psc.model import CIBA_GRANT, Code
from mocks.psc.state import State

#: The code the mock e-CPS app asks before approving (TEST ONLY, as the mock cards' PINs).
APP_CODE = "1234"
REQUEST_LIFETIME = 120  # seconds a request waits for the professional
POLL_INTERVAL = 2  # seconds a CIBA client waits between polls


class AuthorizationPending(OAuth2Error):  # type: ignore[misc]
    error = "authorization_pending"


class SlowDown(OAuth2Error):  # type: ignore[misc]
    error = "slow_down"


class ExpiredToken(OAuth2Error):  # type: ignore[misc]
    error = "expired_token"


@functools.cache
def directory() -> dict[str, Professional]:
    """The professionals e-CPS knows: the mock cards' holders, by national identifier."""
    found = {}
    for profile in ("cps-doctor", "cps-nurse", "cps-midwife", "cps4-pharmacist"):
        _key, cert = pki.card_credentials(profile, "auth")
        who = Professional.from_certificate(cert, DEFAULT_TRANSPORT_POLICIES)
        found[who.national_id] = who
    return found


def new_request(state: State, national_id: str, binding: str, **extra: Any) -> str:
    """A login request waiting for the professional's approval; its id."""
    request_id = secrets.token_urlsafe(24)
    record = {
        "national_id": national_id,
        "binding_message": binding,
        "status": "pending",
        "expires_at": time.time() + REQUEST_LIFETIME,
        "last_poll": 0.0,
        **extra,
    }
    state.put("ecps", request_id, record, REQUEST_LIFETIME + 60)
    waiting = state.get("ecps_for", national_id) or {"ids": []}
    waiting["ids"] = [*waiting["ids"][-9:], request_id]
    state.put("ecps_for", national_id, waiting, REQUEST_LIFETIME + 60)
    return request_id


def add_ecps(app: Flask, server: Any, state: State, oidc: str, token_extension: Any) -> None:
    """The phone, the browser flow's waiting room, and CIBA, on ``app``."""

    @app.get("/ecps/telephone/<national_id>")
    def phone(national_id: str) -> Response:
        ids = (state.get("ecps_for", national_id) or {"ids": []})["ids"]
        waiting = [(i, r) for i in ids if (r := state.get("ecps", i)) and r["status"] == "pending"]
        items = "".join(
            PHONE_ITEM.format(
                action=escape(f"/ecps/telephone/{national_id}/{i}"),
                binding=escape(r["binding_message"]),
            )
            for i, r in waiting
            if r["expires_at"] > time.time()
        )
        return make_response(PHONE_PAGE.format(items=items or "<p>Aucune demande.</p>"))

    @app.post("/ecps/telephone/<national_id>/<request_id>")
    def answer(national_id: str, request_id: str) -> Any:
        record = state.get("ecps", request_id)
        if record is None or record["national_id"] != national_id:
            return make_response("demande inconnue", 404)
        if request.form.get("action") == "refuser":
            record["status"] = "denied"
        elif secrets.compare_digest(request.form.get("code", ""), APP_CODE):
            record["status"] = "approved"
        else:
            return make_response("code incorrect", 403)
        state.put("ecps", request_id, record, REQUEST_LIFETIME + 60)
        return redirect(f"/ecps/telephone/{national_id}", 303)

    @app.get("/ecps/attente/<request_id>")
    def waiting(request_id: str) -> Response:
        record = state.get("ecps", request_id)
        if record is None or record["expires_at"] <= time.time():
            return jsonify({"status": "expired"})
        return jsonify({"status": record["status"]})

    @app.post(oidc + "/ext/ciba/auth")
    def ciba_auth() -> Any:
        try:
            client = server.authenticate_client(
                server.create_oauth2_request(request), ["client_secret_basic", "client_secret_post"]
            )
        except OAuth2Error as error:
            return server.handle_error_response(None, error)
        form = request.form
        hint, binding = form.get("login_hint", ""), form.get("binding_message", "")
        if form.get("acr_values") != "eidas1" or "openid" not in form.get("scope", "").split():
            return server.handle_error_response(None, InvalidRequestError("acr or scope"))
        if hint not in directory():
            return jsonify({"error": "unknown_user_id"}), 400
        request_id = new_request(
            state,
            hint,
            binding[:32] or secrets.token_hex(2).upper(),
            client_id=client.client_id,
            scope=form.get("scope"),
        )
        return jsonify(
            {"auth_req_id": request_id, "expires_in": REQUEST_LIFETIME, "interval": POLL_INTERVAL}
        )

    class CibaGrant(grants.BaseGrant, grants.TokenEndpointMixin):  # type: ignore[misc]
        GRANT_TYPE = CIBA_GRANT
        TOKEN_ENDPOINT_AUTH_METHODS: ClassVar = ["client_secret_basic", "client_secret_post"]

        def validate_token_request(self) -> None:
            client = self.authenticate_token_endpoint_client()
            if not client.check_grant_type(self.GRANT_TYPE):
                raise UnauthorizedClientError()
            request_id = self.request.payload.data.get("auth_req_id", "")
            record = state.get("ecps", request_id)
            if record is None or record.get("client_id") != client.client_id:
                raise InvalidGrantError("unknown auth_req_id")
            now = time.time()
            if now >= record["expires_at"]:
                raise ExpiredToken()
            if record["status"] == "denied":
                state.drop("ecps", request_id)
                raise AccessDeniedError()
            if record["status"] == "pending":
                too_soon = now - record["last_poll"] < POLL_INTERVAL
                record["last_poll"] = now
                state.put("ecps", request_id, record, REQUEST_LIFETIME + 60)
                raise SlowDown() if too_soon else AuthorizationPending()
            if state.take("ecps", request_id) is None:  # approved: the tokens, once
                raise InvalidGrantError("already used")
            self.request.client = client
            self.request.user = directory()[record["national_id"]]
            self.request.authorization_code = approved_code(record)
            self.approved_scope = record["scope"]

        @hooked  # type: ignore[untyped-decorator]
        def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
            token = self.generate_token(
                user=self.request.user, scope=self.approved_scope, include_refresh_token=True
            )
            self.save_token(token)
            return 200, token, self.TOKEN_RESPONSE_HEADER

    server.register_grant(CibaGrant, [token_extension])


def approved_code(record: dict[str, Any]) -> Any:
    """What the ID token says of an e-CPS login (its claims come from an authorization code,
    in authlib's OpenID extension): eIDAS level, a key in the app, unlocked by a code."""
    return Code(
        "",
        record.get("client_id", ""),
        "",
        record.get("scope") or "",
        directory()[record["national_id"]],
        record.get("nonce"),
        None,
        None,
        record["expires_at"],
        amr=["swk", "pin"],
    )


PHONE_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>e-CPS (démonstration)</title></head>
<body style="font-family: sans-serif; max-width: 24em; margin: 2em auto">
<h1>e-CPS</h1>{items}</body></html>
"""

PHONE_ITEM = """<form method="post" action="{action}" class="demande">
<p>Demande de connexion : <strong class="binding">{binding}</strong></p>
<label>Code e-CPS <input name="code" inputmode="numeric" autocomplete="off"></label>
<button name="action" value="approuver">Approuver</button>
<button name="action" value="refuser">Refuser</button>
</form>
"""
