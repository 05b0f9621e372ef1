"""A mock Pro Santé Connect provider, for portal developers who integrate PSC offline.

It answers where PSC does and as PSC does (facts from the ANS's public repositories and
pages): discovery at ``{issuer}/.well-known/wallet-openid-configuration``, a realm-style
issuer (``/auth/realms/esante-wallet``), the authorization code flow with PKCE S256 and
``acr_values=eidas1``, ``scope=openid scope_all``, and userinfo (JSON, or a signed JWT for a
client registered so) with ``SubjectNameID`` (``8`` + RPPS), ``SubjectRefPro`` and
``Palier_Authentification``. Professionals log in with their CPS card: the login page is an
origin the agent allows, and the card signs a cardkit challenge that cardkit's validator
checks, so the identities are the mock cards' own.

OAuth and OpenID Connect are authlib's (its Flask authorization server, code and refresh
grants, PKCE and OpenID Connect extensions, userinfo endpoint; JOSE through joserfc): nothing
here encodes or signs a JWT by hand. State is in memory for one process, or in Redis for
several (:mod:`mocks.psc.state`).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo, UserInfoEndpoint
from authlib.oidc.core.grants import OpenIDCode, OpenIDToken
from flask import Flask, Response, g, jsonify, make_response, redirect, request
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import WSGIRequestHandler

from cardkit.auth import (
    Challenge,
    Professional,
    RevocationPolicy,
    TokenRejected,
    Validator,
    ValidatorConfig,
)
from cardkit.pcsc_bridge.contract import DEFAULT_PORT
from cardkit.pcsc_bridge.hosted import hosted_client
from mocks import pki
from mocks.psc.ecps import add_ecps, directory, new_request
from mocks.psc.model import (
    ACR,
    APP_AMR,
    CARD_AMR,
    CIBA_GRANT,
    DISCOVERY,
    OIDC,
    REALM,
    SCOPE,
    Client,
    Code,
    RefreshToken,
    Token,
    user_info,
)
from mocks.psc.pages import LOGIN_PAGE, WAITING_PAGE, refused_page
from mocks.psc.state import (
    MemoryState,
    RedisState,
    State,
    professional_from_dict,
    professional_to_dict,
)


@dataclass
class ProviderConfig:
    issuer: str  # the provider's base URL; the issuer is this + REALM
    clients: list[Client]
    bridge_port: int = DEFAULT_PORT
    access_token_lifetime: int = 120
    id_token_lifetime: int = 120
    refresh_token_lifetime: int = 1800
    code_lifetime: int = 60
    #: Where the provider keeps its state: ``redis://...`` for several processes.
    redis_url: str | None = None


class AccessLog(WSGIRequestHandler):
    """werkzeug's access log without query strings: a logout carries the ID token there."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log("info", '"%s %s" %s', self.command, self.path.split("?", 1)[0], code)


def create_provider(config: ProviderConfig) -> Flask:
    app = Flask("mock-psc")
    # authlib logs every token it issues, whole, at debug level: never in this provider.
    logging.getLogger("authlib").setLevel(logging.INFO)
    issuer = config.issuer.rstrip("/") + REALM
    clients = {c.client_id: c for c in config.clients}
    state: State = RedisState(config.redis_url) if config.redis_url else MemoryState()
    validator = Validator(
        ValidatorConfig(pki.trust_anchors(), pki.intermediates(), revocation=RevocationPolicy.OFF)
    )
    client_js = hosted_client()
    return_uris = [uri for c in config.clients for uri in c.redirect_uris]
    return_origins = {"{0.scheme}://{0.netloc}".format(urlsplit(uri)) for uri in return_uris}

    def signing_key() -> RSAKey:
        return state.keys()[-1]

    def save_token(token: dict[str, Any], req: Any) -> None:
        user = professional_to_dict(req.user)
        record = {"client_id": req.client.client_id, "scope": token["scope"], "user": user}
        expires = time.time() + token["expires_in"]
        state.put("token", token["access_token"], {**record, "expires_at": expires}, 3600)
        if "refresh_token" in token:
            lifetime = config.refresh_token_lifetime
            state.put("refresh", token["refresh_token"], record, lifetime)

    def generate_token(  # noqa: PLR0917 - authlib's token generator signature
        client: Client,
        grant_type: str,
        user: Professional | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token = {
            "token_type": "Bearer",
            "access_token": secrets.token_urlsafe(32),
            "expires_in": config.access_token_lifetime,
            "scope": scope,
        }
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token

    server = AuthorizationServer(app, query_client=clients.get, save_token=save_token)
    server.register_token_generator("default", generate_token)

    class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS: ClassVar = ["client_secret_basic", "client_secret_post"]

        def save_authorization_code(self, code: str, req: Any) -> None:
            data = req.payload.data
            record = {
                "client_id": req.client.client_id,
                "redirect_uri": req.payload.redirect_uri,
                "scope": req.payload.scope,
                "user": professional_to_dict(req.user),
                "nonce": data.get("nonce"),
                "code_challenge": data.get("code_challenge"),
                "code_challenge_method": data.get("code_challenge_method"),
                "auth_time": int(time.time()),
                "amr": list(getattr(g, "psc_amr", CARD_AMR)),
            }
            state.put("code", code, record, config.code_lifetime)
            if record["nonce"]:
                state.put("nonce", f"{record['client_id']}:{record['nonce']}", {}, 600)

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            record = state.take("code", code)  # taken: it serves once, whatever follows
            if record is None or record["client_id"] != client.client_id:
                return None
            return Code(
                code,
                record["client_id"],
                record["redirect_uri"],
                record["scope"],
                professional_from_dict(record["user"]),
                record["nonce"],
                record["code_challenge"],
                record["code_challenge_method"],
                time.time() + config.code_lifetime,
                record["auth_time"],
                record["amr"],
            )

        def delete_authorization_code(self, authorization_code: Code) -> None:
            pass  # taken when it was queried

        def authenticate_user(self, authorization_code: Code) -> Professional:
            return authorization_code.user

    class Refresh(grants.RefreshTokenGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS: ClassVar = ["client_secret_basic", "client_secret_post"]
        INCLUDE_NEW_REFRESH_TOKEN = True

        def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
            record = state.take("refresh", refresh_token)  # rotated: each serves once
            if record is None:
                return None
            user = professional_from_dict(record["user"])
            return RefreshToken(refresh_token, record["client_id"], record["scope"], user)

        def authenticate_user(self, refresh_token: RefreshToken) -> Professional:
            return refresh_token.user

        def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
            pass  # taken when it was authenticated

    class PscClaims:
        """The ID token's key and claims, for the code flow and CIBA alike."""

        def resolve_client_private_key(self, client: Client) -> RSAKey:
            return signing_key()

        def get_client_algorithm(self, client: Client) -> str:
            return "RS256"

        def get_encode_header(self, client: Client) -> dict[str, str]:
            return {"alg": "RS256", "kid": str(signing_key().kid)}

        def get_client_claims(self, client: Client) -> dict[str, Any]:
            now = int(time.time())
            return {"iss": issuer, "aud": [client.client_id], "exp": now + config.id_token_lifetime}

        def generate_user_info(self, user: Professional, scope: str) -> UserInfo:
            return user_info(user)

    class PscOpenIDCode(PscClaims, OpenIDCode):  # type: ignore[misc]
        def exists_nonce(self, nonce: str, req: Any) -> bool:
            return state.get("nonce", f"{req.payload.client_id}:{nonce}") is not None

    class PscOpenIDToken(PscClaims, OpenIDToken):  # type: ignore[misc]
        pass

    class PscUserInfo(UserInfoEndpoint):  # type: ignore[misc]
        def get_issuer(self) -> str:
            return issuer

        def generate_user_info(self, user: Professional, scope: str) -> UserInfo:
            return user_info(user)

        def resolve_private_key(self) -> KeySet:
            # A set of one: joserfc then names the key (kid) in the header, which a client
            # needs once a rotation publishes two keys.
            return KeySet([signing_key()])

    class Bearer(BearerTokenValidator):  # type: ignore[misc]
        def authenticate_token(self, token_string: str) -> Token | None:
            record = state.get("token", token_string)
            client = clients.get(record["client_id"]) if record else None
            if record is None or client is None:
                return None
            user = professional_from_dict(record["user"])
            return Token(token_string, client, record["scope"], user, record["expires_at"])

    protector = ResourceProtector()
    protector.register_token_validator(Bearer())
    server.register_grant(CodeGrant, [PscOpenIDCode(require_nonce=True), CodeChallenge(True)])
    server.register_grant(Refresh)
    server.register_endpoint(PscUserInfo(resource_protector=protector))
    add_ecps(app, server, state, OIDC, PscOpenIDToken())
    app.config["psc_state"] = state  # tests rotate its keys

    @app.get(REALM + DISCOVERY)
    def discovery() -> Response:
        return jsonify(
            {
                "issuer": issuer,
                "authorization_endpoint": issuer + "/protocol/openid-connect/auth",
                "token_endpoint": issuer + "/protocol/openid-connect/token",
                "userinfo_endpoint": issuer + "/protocol/openid-connect/userinfo",
                "jwks_uri": issuer + "/protocol/openid-connect/certs",
                "end_session_endpoint": issuer + "/protocol/openid-connect/logout",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token", CIBA_GRANT],
                "backchannel_authentication_endpoint": issuer
                + "/protocol/openid-connect/ext/ciba/auth",
                "backchannel_token_delivery_modes_supported": ["poll"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "userinfo_signing_alg_values_supported": ["RS256"],
                "scopes_supported": SCOPE.split(),
                "acr_values_supported": [ACR],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "claims_parameter_supported": False,
            }
        )

    @app.get(OIDC + "/certs")
    def jwks() -> Response:
        published: list[Any] = state.keys()
        return jsonify(KeySet(published).as_dict(private=False))

    @app.route(OIDC + "/auth", methods=["GET", "POST"])
    def authorize() -> Any:
        if request.args.get("acr_values") != ACR:
            return refused_page("acr_values must be eidas1", 400)
        try:
            server.get_consent_grant(end_user=None)
        except OAuth2Error as error:
            if getattr(error, "redirect_uri", None):  # the portal hears it (login_required...)
                return server.handle_error_response(None, error)
            return refused_page(error.description or error.error, 400)
        if request.method == "GET":
            challenge = Challenge.new()
            state.challenges.issue(challenge)
            return _login_page(challenge.nonce)
        if "ecps_hint" in request.form:  # e-CPS: wait for the professional's phone
            hint = request.form["ecps_hint"].strip()
            if hint not in directory():
                return refused_page("identifiant inconnu", 404)
            binding = secrets.token_hex(2).upper()
            return _waiting_page(new_request(state, hint, binding), binding)
        if "ecps_request" in request.form:
            record = state.get("ecps", request.form["ecps_request"])
            if record is None or record["status"] == "pending":
                return refused_page("demande inconnue ou en attente", 400)
            state.drop("ecps", request.form["ecps_request"])  # it serves once
            if record["status"] != "approved":  # refused on the phone: access_denied
                return server.create_authorization_response(grant_user=None)
            g.psc_amr = APP_AMR
            return server.create_authorization_response(
                grant_user=directory()[record["national_id"]]
            )
        try:
            who = validator.validate(
                request.form.get("token", ""),
                config.issuer,
                request.form.get("challenge", ""),
                state.challenges,
            )
        except TokenRejected as exc:
            return refused_page(f"carte refusée ({exc.reason})", 401)
        return server.create_authorization_response(grant_user=who)

    @app.post(OIDC + "/token")
    def token() -> Any:
        return server.create_token_response()

    @app.route(OIDC + "/userinfo", methods=["GET", "POST"])
    def userinfo() -> Any:
        return server.create_endpoint_response("userinfo")

    @app.get(OIDC + "/logout")
    def logout() -> Any:
        target = request.args.get("post_logout_redirect_uri", "")
        if target and "{0.scheme}://{0.netloc}".format(urlsplit(target)) in return_origins:
            return redirect(target)
        return refused_page("déconnecté", 200)

    @app.get("/js/" + client_js.filename)
    def bridge_client() -> Response:
        return Response(client_js.text, mimetype="text/javascript")

    def _waiting_page(request_id: str, binding: str) -> Response:
        script_nonce = secrets.token_urlsafe(16)
        page = WAITING_PAGE.format(request_id=request_id, binding=binding, nonce=script_nonce)
        return _with_csp(make_response(page), script_nonce)

    def _with_csp(response: Response, script_nonce: str) -> Response:
        # The form posts here, then is redirected to the portal: CSP's form-action covers
        # the redirect too, so the registered portals' origins are named.
        portals = " ".join(sorted(return_origins))
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'nonce-{script_nonce}'; style-src 'unsafe-inline'; "
            f"connect-src 'self' http://127.0.0.1:{config.bridge_port}; "
            f"form-action 'self' {portals}; frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def _login_page(nonce: str) -> Response:
        script_nonce = secrets.token_urlsafe(16)
        url = "/js/" + client_js.filename
        page = LOGIN_PAGE.format(
            import_map=client_js.import_map(url, nonce=script_nonce),
            nonce=nonce,
            port=config.bridge_port,
            script_nonce=script_nonce,
        )
        return _with_csp(make_response(page), script_nonce)

    return app
