"""Pro Santé Connect: the mock provider (mocks/psc) and the portal's relying-party side
(cardkit.portal.psc), over real HTTP on loopback, the browser's part played by httpx and the
card's by the mock CPS's TEST key."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from werkzeug.serving import make_server

from cardkit.auth.token import create_token
from cardkit.portal.psc import ACR, DISCOVERY_PATH, PscClient, PscPending, PscRefused
from mocks import pki
from mocks.harness import free_port
from mocks.psc.model import REALM, Client
from mocks.psc.provider import AccessLog, ProviderConfig, create_provider
from mocks.tokens import rsa_signer

REDIRECT = "https://portal.example/psc/retour"


@dataclass
class Provider:
    base: str
    app: object

    @property
    def issuer(self) -> str:
        return self.base + REALM


@pytest.fixture
def provider() -> Iterator[Provider]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clients = [
        Client("portail", "secret-portail", [REDIRECT]),
        Client("portail-jwt", "secret-jwt", [REDIRECT], signed_userinfo=True),
    ]
    app = create_provider(ProviderConfig(base, clients))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=AccessLog)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Provider(base, app)
    server.shutdown()


def client_for(provider: Provider, client_id: str = "portail", secret: str = "") -> PscClient:
    secrets = {"portail": "secret-portail", "portail-jwt": "secret-jwt"}
    return PscClient(provider.issuer, client_id, secret or secrets[client_id], REDIRECT)


def log_in_with_card(provider: Provider, url: str, profile: str = "cps-doctor") -> dict[str, str]:
    """What the browser and the card do at the provider: its login page's challenge signed
    by the card, posted back; the provider's redirect to the portal, as query parameters."""
    with httpx.Client() as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        challenge = re.search(r'name="challenge" value="([^"]+)"', page.text)
        assert challenge is not None
        key, cert = pki.card_credentials(profile, "auth")
        token = create_token(rsa_signer(key), cert, provider.base, challenge.group(1))
        answer = browser.post(url, data={"challenge": challenge.group(1), "token": token.to_json()})
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_discovery_is_at_psc_path(provider: Provider) -> None:
    document = httpx.get(provider.issuer + DISCOVERY_PATH).json()
    assert document["issuer"] == provider.issuer
    assert document["acr_values_supported"] == [ACR]
    assert document["code_challenge_methods_supported"] == ["S256"]


def test_code_flow_with_the_cps_card(provider: Provider) -> None:
    psc = client_for(provider)
    url, pending = psc.begin()
    query = parse_qs(urlsplit(url).query)
    assert query["acr_values"] == [ACR] and query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["openid scope_all"]
    params = log_in_with_card(provider, url)
    login = psc.finish(params, pending)
    assert login.identity.national_id == "899700075122"
    assert login.identity.identifier_type.value == "RPPS"
    assert login.identity.surname == "LEFEBVRE"
    assert login.claims["SubjectRefPro"]["exercices"][0]["codeProfession"] == "10"
    assert login.claims["Palier_Authentification"].startswith("APPPRIP3")
    # The code served once: replayed, the provider refuses it.
    with pytest.raises(PscRefused) as replay:
        psc.finish(params, pending)
    assert replay.value.reason == "invalid_grant"


def test_signed_userinfo_and_key_rotation(provider: Provider) -> None:
    psc = client_for(provider, "portail-jwt")
    url, pending = psc.begin()
    first = psc.finish(log_in_with_card(provider, url), pending)
    provider.app.config["psc_state"].rotate()  # type: ignore[attr-defined]
    url, pending = psc.begin()
    again = psc.finish(log_in_with_card(provider, url, "cps-nurse"), pending)
    assert first.identity.surname == "LEFEBVRE" and again.identity.surname != "LEFEBVRE"


def test_what_the_relying_party_refuses(provider: Provider) -> None:
    psc = client_for(provider)
    url, pending = psc.begin()
    params = log_in_with_card(provider, url)
    with pytest.raises(PscRefused, match="state_mismatch"):
        psc.finish({**params, "state": "forged"}, pending)
    with pytest.raises(PscRefused, match="state_mismatch"):
        psc.finish(params, None)  # no login begun in this session
    other_verifier = PscPending(pending.state, pending.nonce, "x" * 64)
    with pytest.raises(PscRefused) as pkce:
        psc.finish(params, other_verifier)
    assert pkce.value.reason == "invalid_grant"  # RFC 7636 4.6
    url, pending = psc.begin()
    params = log_in_with_card(provider, url)
    with pytest.raises(PscRefused, match="id_token_invalid"):
        psc.finish(params, PscPending(pending.state, "another-nonce", pending.code_verifier))
    with pytest.raises(PscRefused, match="access_denied"):
        psc.finish({"state": pending.state, "error": "access_denied"}, pending)
    with pytest.raises(PscRefused, match="invalid_client"):
        wrong = client_for(provider, "portail", "not-the-secret")
        url, pending = wrong.begin()
        wrong.finish(log_in_with_card(provider, url), pending)


def test_what_the_provider_refuses(provider: Provider) -> None:
    psc = client_for(provider)
    url, _ = psc.begin()
    without_acr = re.sub(r"&acr_values=[^&]*", "", url)
    assert httpx.get(without_acr).status_code == 400
    foreign = url.replace("portal.example", "evil.example")
    assert httpx.get(foreign).status_code == 400  # not a registered redirect URI
    with httpx.Client() as browser:
        page = browser.get(url)
        challenge = re.search(r'name="challenge" value="([^"]+)"', page.text)
        assert challenge is not None
        key, cert = pki.card_credentials("cps-doctor", "auth")
        other_origin = create_token(rsa_signer(key), cert, "https://portal.example", challenge[1])
        refused = browser.post(
            url, data={"challenge": challenge[1], "token": other_origin.to_json()}
        )
    assert refused.status_code == 401 and "signature_invalid" in refused.text


def test_refresh_tokens_rotate(provider: Provider) -> None:
    psc = client_for(provider)
    url, pending = psc.begin()
    params = log_in_with_card(provider, url)
    from authlib.integrations.httpx_client import OAuth2Client

    meta = psc.metadata()
    with OAuth2Client("portail", "secret-portail", redirect_uri=REDIRECT) as client:
        token = client.fetch_token(
            meta["token_endpoint"], code=params["code"], code_verifier=pending.code_verifier
        )
        renewed = client.refresh_token(meta["token_endpoint"], token["refresh_token"])
        assert renewed["access_token"] != token["access_token"]
        assert renewed["refresh_token"] != token["refresh_token"]
        assert client.get(meta["userinfo_endpoint"]).json()["family_name"] == "LEFEBVRE"
        from authlib.integrations.base_client import OAuthError

        with pytest.raises(OAuthError) as used:  # a refresh token serves once
            client.refresh_token(meta["token_endpoint"], token["refresh_token"])
        assert used.value.error == "invalid_grant"


def stock_client_login(provider_base: str, token_base: str | None = None) -> dict[str, object]:
    """A stock OpenID Connect client, authlib's, knowing only the discovery URL (PSC's path),
    its credentials and ``acr_values``: ``token_base`` sends the token and userinfo requests
    to another provider process (one behind the same load balancer)."""
    from authlib.integrations.httpx_client import OAuth2Client
    from joserfc import jwt
    from joserfc.jwk import KeySet

    issuer = provider_base + REALM
    meta = httpx.get(issuer + DISCOVERY_PATH).json()
    moved = {
        name: meta[name].replace(provider_base, token_base or provider_base)
        for name in ("token_endpoint", "userinfo_endpoint", "jwks_uri")
    }
    client = OAuth2Client(
        "portail",
        "secret-portail",
        scope="openid scope_all",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    )
    verifier = "v" * 64
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], nonce="n0nce", code_verifier=verifier, acr_values="eidas1"
    )
    params = log_in_with_card(Provider(provider_base, None), url)
    assert params["state"] == state
    token = client.fetch_token(moved["token_endpoint"], code=params["code"], code_verifier=verifier)
    keys = KeySet.import_key_set(httpx.get(moved["jwks_uri"]).json())
    claims = jwt.decode(token["id_token"], keys).claims
    assert claims["iss"] == issuer and claims["nonce"] == "n0nce" and claims["acr"] == "eidas1"
    info: dict[str, object] = client.get(moved["userinfo_endpoint"]).json()
    client.close()
    return info


def test_a_stock_oidc_client_completes_the_flow(provider: Provider) -> None:
    info = stock_client_login(provider.base)
    assert info["SubjectNameID"] == "899700075122"


def test_no_token_in_the_logs(provider: Provider, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    psc = client_for(provider)
    url, pending = psc.begin()
    params = log_in_with_card(provider, url)
    login = psc.finish(params, pending)
    httpx.get(psc.logout_url(login.id_token, "https://portal.example/"))  # the token in a URL
    # Everything the provider and the portal's client logged. The HTTP client library's own
    # lines are left out: the test's stand-in browser logs the URLs it visits (a logout URL
    # carries the ID token, as the browser's history does), and httpcore traces headers.
    logged = "\n".join(
        r.getMessage() for r in caplog.records if r.name.split(".")[0] not in {"httpx", "httpcore"}
    )
    assert params["code"] not in logged and login.id_token not in logged
    assert login.id_token.split(".")[2] not in logged


def test_an_id_token_of_another_level_is_refused(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider answering with another authentication level than eidas1 (what PSC's own
    documentation tells relying parties to check)."""
    from mocks.psc.model import Code

    monkeypatch.setattr(Code, "get_acr", lambda self: "eidas2")
    psc = client_for(provider)
    url, pending = psc.begin()
    with pytest.raises(PscRefused, match="acr_refused"):
        psc.finish(log_in_with_card(provider, url), pending)


def backchannel(provider: Provider, **fields: str) -> httpx.Response:
    data = {"scope": "openid scope_all", "acr_values": "eidas1", **fields}
    return httpx.post(
        provider.issuer + "/protocol/openid-connect/ext/ciba/auth",
        data=data,
        auth=("portail", "secret-portail"),
    )


def poll(provider: Provider, auth_req_id: str) -> httpx.Response:
    return httpx.post(
        provider.issuer + "/protocol/openid-connect/token",
        data={"grant_type": "urn:openid:params:grant-type:ciba", "auth_req_id": auth_req_id},
        auth=("portail", "secret-portail"),
    )


def phone(provider: Provider, national_id: str, request_id: str, **form: str) -> httpx.Response:
    return httpx.post(f"{provider.base}/ecps/telephone/{national_id}/{request_id}", data=form)


@pytest.fixture
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    import mocks.psc.ecps as ecps

    monkeypatch.setattr(ecps, "POLL_INTERVAL", 0.3)


def test_ciba_poll_mode(provider: Provider, quick_polls: None) -> None:
    """Pending, too fast, approved on the phone (with its binding message shown there), the
    tokens once; and the errors of the start."""
    started = backchannel(provider, login_hint="899700075122", binding_message="AB12")
    assert started.status_code == 200, started.text
    request_id = started.json()["auth_req_id"]
    assert poll(provider, request_id).json()["error"] == "authorization_pending"
    assert poll(provider, request_id).json()["error"] == "slow_down"
    page = httpx.get(f"{provider.base}/ecps/telephone/899700075122")
    assert "AB12" in page.text
    assert phone(provider, "899700075122", request_id, code="0000").status_code == 403
    approved = phone(provider, "899700075122", request_id, action="approuver", code="1234")
    assert approved.status_code == 303
    import time

    time.sleep(0.35)
    tokens = poll(provider, request_id)
    assert tokens.status_code == 200, tokens.text
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(
        httpx.get(provider.issuer + "/protocol/openid-connect/certs").json()
    )
    claims = jwt.decode(tokens.json()["id_token"], keys).claims
    assert claims["acr"] == "eidas1" and claims["amr"] == ["swk", "pin"]
    assert claims["SubjectNameID"] == "899700075122"
    assert poll(provider, request_id).json()["error"] == "invalid_grant"  # once
    assert backchannel(provider, login_hint="nobody").json()["error"] == "unknown_user_id"
    assert backchannel(provider, login_hint="899700075122", acr_values="eidas2").status_code == 400


def test_ciba_refused_and_expired(
    provider: Provider, quick_polls: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import mocks.psc.ecps as ecps

    refused = backchannel(provider, login_hint="899700075122").json()["auth_req_id"]
    phone(provider, "899700075122", refused, action="refuser")
    assert poll(provider, refused).json()["error"] == "access_denied"
    monkeypatch.setattr(ecps, "REQUEST_LIFETIME", 0.5)
    late = backchannel(provider, login_hint="899700075122").json()["auth_req_id"]
    time.sleep(0.6)
    assert poll(provider, late).json()["error"] == "expired_token"


def test_prompt_none_and_a_foreign_code(provider: Provider) -> None:
    """No provider session here (no single sign-on in the mock): ``prompt=none`` comes back
    ``login_required``; a code issued to one portal is refused to another."""
    psc = client_for(provider)
    url, pending = psc.begin()
    answer = httpx.get(url + "&prompt=none")
    assert answer.status_code == 302
    back = parse_qs(urlsplit(answer.headers["location"]).query)
    assert back["error"] == ["login_required"] and back["state"] == [pending.state]
    params = log_in_with_card(provider, url)
    other = client_for(provider, "portail-jwt")
    with pytest.raises(PscRefused) as foreign:
        other.finish(params, pending)
    assert foreign.value.reason in {"invalid_grant", "invalid_client"}
    with pytest.raises(PscRefused, match="invalid_grant"):  # and it was taken: gone
        psc.finish(params, pending)


def test_end_session(provider: Provider) -> None:
    """Logout returns only to a registered portal's address."""
    psc = client_for(provider)
    url, pending = psc.begin()
    login = psc.finish(log_in_with_card(provider, url), pending)
    back = psc.logout_url(login.id_token, "https://portal.example/identification")
    answer = httpx.get(back)
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://portal.example/identification"
    elsewhere = psc.logout_url(login.id_token, "https://evil.example/identification")
    assert httpx.get(elsewhere).status_code == 200  # shown there, sent nowhere
