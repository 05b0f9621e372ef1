"""What the mock PSC provider deals in: PSC's names and levels, the portals registered with
it (:class:`Client`), authorization codes, tokens, and the claims it gives of a
professional (``scope_all``), built from the mock cards' identities."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin
from authlib.oidc.core import UserInfo

from cardkit.auth import Professional

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
REALM = "/auth/realms/esante-wallet"
DISCOVERY = "/.well-known/wallet-openid-configuration"
OIDC = REALM + "/protocol/openid-connect"
ACR = "eidas1"
SCOPE = "openid scope_all"
#: What PSC says of a login by CPS card (the authentication level, with its OID).
CARD_LEVEL = "APPPRIP3^1.2.250.1.213.1.5.1.1.1"
#: How the professional proved it: a key in hardware (the card), unlocked by a PIN.
CARD_AMR = ("hwk", "pin")
#: e-CPS: a key in the app, unlocked by its code.
APP_AMR = ("swk", "pin")
#: Profession codes of the RPPS nomenclature (TRE_G15) for the mock cards' titles.
PROFESSIONS = {"Médecin": "10", "Pharmacien": "21", "Sage-Femme": "50", "Infirmier": "60"}


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str = field(repr=False)  # authlib logs the client (repr) at debug level
    redirect_uris: list[str]
    #: Registered for a userinfo answer as a signed JWT (``userinfo_signed_response_alg``).
    signed_userinfo: bool = False

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"userinfo_signed_response_alg": "RS256"} if self.signed_userinfo else {}

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(SCOPE.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token", CIBA_GRANT)


@dataclass
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: Professional
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    auth_time: int = field(default_factory=lambda: int(time.time()))
    amr: list[str] = field(default_factory=lambda: list(CARD_AMR))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return ACR

    def get_amr(self) -> list[str]:
        return self.amr


@dataclass
class Token(TokenMixin):  # type: ignore[misc]
    access_token: str
    client: Client
    scope: str
    user: Professional
    expires_at: float

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_at - time.time())

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return False

    def get_user(self) -> Professional:
        return self.user

    def get_client(self) -> Client:
        return self.client


def user_info(user: Professional) -> UserInfo:
    """The ``scope_all`` claims PSC gives of a professional, from the card's identity."""
    exercise: dict[str, Any] = {
        "codeProfession": PROFESSIONS.get(user.profession or "", ""),
        "codeCategorieProfessionnelle": "C",
        "nomDexercice": user.surname,
        "prenomDexercice": user.given_name,
        "activities": [],
    }
    return UserInfo(
        sub=user.national_id,
        SubjectNameID=user.national_id,
        preferred_username=user.national_id,
        given_name=user.given_name,
        family_name=user.surname,
        SubjectRefPro={"codeCivilite": "", "exercices": [exercise]},
        SubjectRole=[f"{exercise['codeProfession']}^1.2.250.1.213.1.1.5.5"],
        otherIds=[{"identifiant": user.identifier, "origine": user.identifier_type.value}],
        Palier_Authentification=CARD_LEVEL,
    )


@dataclass
class RefreshToken(TokenMixin):  # type: ignore[misc]
    refresh_token: str
    client_id: str
    scope: str
    user: Professional

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return False  # the store forgets it when it expires

    def is_revoked(self) -> bool:
        return False
