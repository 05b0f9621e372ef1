"""Pro Santé Connect for a portal: the relying party's side of PSC's OpenID Connect flow, and
the door it opens (the same accounts as the CPS door, a block lifted the same way).

PSC is standard OpenID Connect with three particulars (ANS's public documentation): its
discovery document is at ``{issuer}/.well-known/wallet-openid-configuration``; the portal asks
``acr_values=eidas1`` and must check the ``acr`` it gets back; the professional's national
identifier comes as ``SubjectNameID`` in userinfo (``8`` + RPPS, ``0`` + ADELI). The rest
is authlib's OAuth client (PKCE S256, state and nonce) and joserfc's JWT and claim checks:
nothing here parses or verifies a JWT by hand.

Flow: :meth:`PscClient.begin` gives the authorization URL and what to keep in the session
(:class:`PscPending`); the provider sends the browser back with ``code`` and ``state``;
:meth:`PscClient.finish` checks them, exchanges the code, validates the ID token and reads
userinfo; :meth:`PscDoor.login` signs the account in. CIBA in poll mode, where the portal's
server asks for a login the professional approves on the e-CPS app:
:meth:`PscClient.ciba_start`, then :meth:`PscClient.ciba_poll` every ``interval``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cardkit.errors import CardkitError
from cardkit.identity import Identity, identity_from_national_id
from cardkit.portal.outcomes import Refused, SignedIn
from cardkit.portal.rules import account_key

if TYPE_CHECKING:
    from cardkit.portal.doors import Doors
    from cardkit.portal.sessions import Session

DISCOVERY_PATH = "/.well-known/wallet-openid-configuration"
ACR = "eidas1"
SCOPE = "openid scope_all"
CIBA_GRANT = "urn:openid:params:grant-type:ciba"
#: Seconds the ID token's times may be off (the portal's and the provider's clocks).
LEEWAY = 60


class PscRefused(CardkitError):
    """The PSC login did not prove who is there; ``reason`` is the OAuth error or the check
    that failed (``state_mismatch``, ``acr_refused``, ``id_token_invalid``...)."""

    code = "psc_failed"
    http_status = 401

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class PscPending:
    """What the portal keeps in the session between the redirect and the return."""

    state: str
    nonce: str
    code_verifier: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> PscPending | None:
        try:
            return cls(str(data["state"]), str(data["nonce"]), str(data["code_verifier"]))
        except (KeyError, TypeError):
            return None


@dataclass(frozen=True)
class PscLogin:
    identity: Identity
    claims: dict[str, Any]  # userinfo, as PSC gives it
    id_token: str  # for the provider's end-session (``id_token_hint``)


class PscClient:
    """One portal's registration at a PSC provider. Thread-safe; the discovery document and
    the keys are fetched once and the keys again when a token names one not seen yet."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        *,
        timeout: float = 5.0,
        transport: Any = None,
    ) -> None:
        """``transport``: an httpx transport (a proxy's, or an in-process app for tests and
        benchmarks); httpx's own by default."""
        self.issuer = issuer.rstrip("/")
        self.transport = transport
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.timeout = timeout
        self._metadata: dict[str, Any] | None = None
        self._keys: Any = None

    def _client(self) -> Any:
        from authlib.integrations.httpx_client import OAuth2Client

        return OAuth2Client(
            self.client_id,
            self.client_secret,
            scope=SCOPE,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout,
            **({"transport": self.transport} if self.transport is not None else {}),
        )

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            with self._client() as client:
                answer = client.request("GET", self.issuer + DISCOVERY_PATH, withhold_token=True)
            answer.raise_for_status()
            data = answer.json()
            if data.get("issuer") != self.issuer:
                raise PscRefused("discovery_invalid", "the document names another issuer")
            self._metadata = data
        return self._metadata

    def _key_set(self, refresh: bool = False) -> Any:
        from joserfc.jwk import KeySet

        if self._keys is None or refresh:
            with self._client() as client:
                answer = client.request("GET", self.metadata()["jwks_uri"], withhold_token=True)
            answer.raise_for_status()
            self._keys = KeySet.import_key_set(answer.json())
        return self._keys

    def begin(self) -> tuple[str, PscPending]:
        """The provider's authorization URL to send the browser to, and what to keep."""
        pending = PscPending(
            secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        )
        with self._client() as client:
            url, _ = client.create_authorization_url(
                self.metadata()["authorization_endpoint"],
                state=pending.state,
                nonce=pending.nonce,
                code_verifier=pending.code_verifier,
                acr_values=ACR,
            )
        return str(url), pending

    def finish(self, params: Mapping[str, str], pending: PscPending | None) -> PscLogin:
        """The return to the portal (its query parameters): who logged in, or
        :class:`PscRefused`. The state must be the session's; then the provider's error if
        it sent one; then the code is exchanged, and the ID token must be this provider's,
        for this portal, with this session's nonce and the eIDAS level asked."""
        from authlib.integrations.base_client import OAuthError

        if pending is None or not secrets.compare_digest(params.get("state", ""), pending.state):
            raise PscRefused("state_mismatch")
        if "error" in params:
            raise PscRefused(params["error"][:64], params.get("error_description", "")[:200])
        meta = self.metadata()
        try:
            with self._client() as client:
                token = client.fetch_token(
                    meta["token_endpoint"],
                    grant_type="authorization_code",
                    code=params.get("code", ""),
                    code_verifier=pending.code_verifier,
                )
                claims = self._id_token_claims(token.get("id_token", ""), pending.nonce)
                answer = client.get(meta["userinfo_endpoint"])
        except OAuthError as exc:
            raise PscRefused(exc.error or "token_refused") from None
        answer.raise_for_status()
        return self._login(self._userinfo(answer), claims, token)

    # --- CIBA, poll mode ("authentification déportée") ---

    def ciba_start(self, login_hint: str, binding_message: str) -> dict[str, Any]:
        """Ask the provider to have the professional (``login_hint``: their national
        identifier) approve a login on their e-CPS app, which shows ``binding_message``:
        ``{"auth_req_id", "expires_in", "interval"}``, or :class:`PscRefused`."""
        endpoint = self.metadata().get("backchannel_authentication_endpoint")
        if not endpoint:
            raise PscRefused("ciba_unsupported")
        with self._client() as client:
            answer = client.request(
                "POST",
                endpoint,
                withhold_token=True,
                auth=(self.client_id, self.client_secret),
                data={
                    "scope": SCOPE,
                    "acr_values": ACR,
                    "login_hint": login_hint,
                    "binding_message": binding_message,
                },
            )
        data = answer.json()
        if answer.status_code != 200 or "auth_req_id" not in data:
            raise PscRefused(str(data.get("error", "ciba_refused"))[:64])
        return dict(data)

    def ciba_poll(self, auth_req_id: str) -> PscLogin | None:
        """One poll: None while the professional has not answered (``authorization_pending``,
        ``slow_down``: the caller waits its interval), the login once approved, else
        :class:`PscRefused` (``access_denied``, ``expired_token``...)."""
        meta = self.metadata()
        with self._client() as client:
            answer = client.request(
                "POST",
                meta["token_endpoint"],
                withhold_token=True,
                auth=(self.client_id, self.client_secret),
                data={"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id},
            )
            token = answer.json()
            if answer.status_code != 200:
                error = str(token.get("error", "token_refused"))
                if error in ("authorization_pending", "slow_down"):
                    return None
                raise PscRefused(error[:64])
            claims = self._id_token_claims(token.get("id_token", ""), None)
            client.token = token
            info = self._userinfo(client.get(meta["userinfo_endpoint"]))
        return self._login(info, claims, token)

    def _login(self, info: dict[str, Any], claims: dict[str, Any], token: Any) -> PscLogin:
        if info.get("sub") != claims.get("sub"):
            raise PscRefused("userinfo_invalid", "userinfo is about someone else")
        national_id = str(info.get("SubjectNameID", ""))
        identity = identity_from_national_id(
            national_id, surname=info.get("family_name"), given_name=info.get("given_name")
        )
        return PscLogin(identity, info, str(token["id_token"]))

    def _decode(self, text: str) -> Any:
        from joserfc import jwt
        from joserfc.errors import JoseError

        try:
            return jwt.decode(text, self._key_set(), algorithms=["RS256"])
        except JoseError:
            try:  # a key rotated since the keys were fetched
                return jwt.decode(text, self._key_set(refresh=True), algorithms=["RS256"])
            except (JoseError, ValueError) as exc:
                raise PscRefused("id_token_invalid", str(exc)) from None
        except ValueError as exc:
            raise PscRefused("id_token_invalid", str(exc)) from None

    def _id_token_claims(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        """``nonce``: the session's (code flow); CIBA has none."""
        from joserfc import jwt
        from joserfc.errors import JoseError

        token = self._decode(id_token)
        expected: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
        }
        if nonce is not None:
            expected["nonce"] = {"essential": True, "value": nonce}
        registry = jwt.JWTClaimsRegistry(leeway=LEEWAY, **expected)
        try:
            registry.validate(token.claims)
        except JoseError as exc:
            raise PscRefused("id_token_invalid", str(exc)) from None
        if token.claims.get("acr") != ACR:
            raise PscRefused("acr_refused", f"acr {token.claims.get('acr')!r}")
        return dict(token.claims)

    def _userinfo(self, answer: Any) -> dict[str, Any]:
        """JSON, or a JWT signed by the provider for this portal (a client registered with
        ``userinfo_signed_response_alg``)."""
        from joserfc import jwt
        from joserfc.errors import JoseError

        if answer.headers.get("content-type", "").startswith("application/jwt"):
            token = self._decode(answer.text)
            registry = jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
            )
            try:
                registry.validate(token.claims)
            except JoseError as exc:
                raise PscRefused("userinfo_invalid", str(exc)) from None
            return dict(token.claims)
        data = answer.json()
        if not isinstance(data, dict):
            raise PscRefused("userinfo_invalid", "not a JSON object")
        return data

    def logout_url(self, id_token: str, post_logout_redirect_uri: str) -> str:
        from urllib.parse import urlencode

        query = urlencode(
            {"id_token_hint": id_token, "post_logout_redirect_uri": post_logout_redirect_uri}
        )
        return f"{self.metadata()['end_session_endpoint']}?{query}"


class PscDoor:
    """A PSC login signs in the professional's account, found by the national identifier
    with the same rules as the CPS door, and lifts a block as a CPS login does."""

    def __init__(self, doors: Doors) -> None:
        self.doors = doors

    def login(self, session: Session, login: PscLogin) -> SignedIn | Refused:
        doors, stores = self.doors, self.doors.stores
        now = dt.datetime.now(dt.UTC)
        with stores.db.transaction():
            account = stores.accounts.login_by_card(account_key(login.identity), now)
            if account is None:
                return Refused("psc_no_account")
            sid = doors.sign_in(session, account, "psc", now, unblock=True, recorded=True)
        return SignedIn(sid, account)
