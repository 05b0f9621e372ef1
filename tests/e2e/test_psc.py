"""Pro Santé Connect in Chromium: the mock portal's PSC door, the mock provider (its login
page logs in with the mock CPS through the agent), and back to the portal."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from mocks.harness import AgentProcess, CardProcess, PortalServer, free_port, portal_origin
from mocks.harness import start_portal as start_portal_server
from mocks.psc.model import REALM, Client
from mocks.psc.provider import AccessLog, ProviderConfig, create_provider

SECRET = "secret-du-portail"
NATIONAL_ID = "899700075122"  # the mock CPS doctor's (8 + RPPS)


@pytest.fixture
def psc_portal(
    tmp_path: Path, agent: Callable[..., AgentProcess]
) -> Iterator[tuple[PortalServer, str]]:
    """(the portal with its PSC door, the provider's origin); the agent allows both (the
    provider's login page talks to the card too)."""
    provider_port, portal_port = free_port(), free_port()
    provider_origin = f"http://127.0.0.1:{provider_port}"
    portal = portal_origin(portal_port)
    client = Client("portail", SECRET, [portal + "/psc/retour"])
    running = agent(origins=(portal, provider_origin))
    app = create_provider(ProviderConfig(provider_origin, [client], bridge_port=running.port))
    server = make_server("127.0.0.1", provider_port, app, threaded=True, request_handler=AccessLog)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = start_portal_server(
        portal_port,
        running.port,
        tmp_path / "portal.db",
        psc_issuer=provider_origin + REALM,
        psc_client_secret=SECRET,
    )
    yield site, provider_origin
    site.stop()
    server.shutdown()


def test_psc_login_with_the_cps_card_unblocks_the_account(
    browser: Any,
    psc_portal: tuple[PortalServer, str],
    card_process: Callable[[str], CardProcess],
) -> None:
    card_process("cps-doctor")
    site, provider = psc_portal
    page = browser.new_page()
    page.goto(site.origin + "/identification")
    for _ in range(3):  # the account is blocked
        page.fill("input[name=identifiant]", "731016879")
        page.fill("input[name=mot_de_passe]", "Mauvais-1!")
        page.click("#password-form button")
    assert "Votre compte est bloqué" in page.inner_text("#blocked")
    page.click("#psc-login")
    page.wait_for_url(provider + REALM + "/protocol/openid-connect/auth?*", timeout=15000)
    page.click("#card-login")  # the card signs the provider's challenge, through the agent
    page.wait_for_url(site.origin + "/accueil", timeout=30000)
    assert "CLAIRE LEFEBVRE" in page.inner_text("h1")
    page.goto(site.origin + "/compte/evenements")
    events = page.inner_text("#events")
    assert "Connexion par Pro Santé Connect" in events
    assert "Compte débloqué par Pro Santé Connect" in events


def test_a_replayed_return_is_refused(
    browser: Any,
    psc_portal: tuple[PortalServer, str],
    card_process: Callable[[str], CardProcess],
) -> None:
    """The provider's return URL, loaded again (a replayed code and state): refused, with
    the portal's French message, and no session."""
    card_process("cps-doctor")
    site, _provider = psc_portal
    page = browser.new_page()
    returns: list[str] = []
    page.on("request", lambda r: returns.append(r.url) if "/psc/retour" in r.url else None)
    page.goto(site.origin + "/identification")
    page.click("#psc-login")
    page.click("#card-login")
    page.wait_for_url(site.origin + "/accueil", timeout=30000)
    page.click("text=Se déconnecter")
    page.goto(returns[0])
    assert "La connexion par Pro Santé Connect n'a pas abouti" in page.inner_text("body")
    page.goto(site.origin + "/accueil")
    assert page.url.endswith("/identification")


def start_e_cps(browser: Any, site: PortalServer) -> Any:
    """At the portal, PSC, then e-CPS at the provider: the page that waits for the phone."""
    page = browser.new_page()
    page.goto(site.origin + "/identification")
    page.click("#psc-login")
    page.fill("input[name=ecps_hint]", NATIONAL_ID)
    page.click("#ecps-login")
    return page


def answer_on_phone(browser: Any, provider: str, binding: str, action: str) -> None:
    """The professional's phone: the request with the same binding code, answered."""
    phone = browser.new_page()
    phone.goto(f"{provider}/ecps/telephone/{NATIONAL_ID}")
    assert phone.inner_text(".binding") == binding
    phone.fill("input[name=code]", "1234")
    phone.click(f"button[value={action}]")


def test_e_cps_approved_from_the_phone(browser: Any, psc_portal: tuple[PortalServer, str]) -> None:
    """The professional picks e-CPS at the provider, approves on the phone (a second page,
    showing the same binding code), and the portal's page goes on by itself."""
    site, provider = psc_portal
    page = start_e_cps(browser, site)
    answer_on_phone(browser, provider, page.inner_text("#binding"), "approuver")
    page.wait_for_url(site.origin + "/accueil", timeout=30000)
    assert "CLAIRE LEFEBVRE" in page.inner_text("h1")


def test_e_cps_refused_and_expired(
    browser: Any, psc_portal: tuple[PortalServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mocks.psc.ecps as ecps

    site, provider = psc_portal
    page = start_e_cps(browser, site)
    answer_on_phone(browser, provider, page.inner_text("#binding"), "refuser")
    page.wait_for_url(site.origin + "/psc/retour*", timeout=30000)
    assert "La connexion par Pro Santé Connect n'a pas abouti" in page.inner_text("body")
    monkeypatch.setattr(ecps, "REQUEST_LIFETIME", 1)
    page.click("#psc-login")
    page.fill("input[name=ecps_hint]", "899700075122")
    page.click("#ecps-login")
    page.wait_for_selector("#expired:not([hidden])", timeout=15000)
    assert "La demande a expiré" in page.inner_text("#expired")


@pytest.mark.parametrize("answer", ["approuver", "refuser", "expirer"])
def test_remote_authentication_ciba(
    browser: Any,
    psc_portal: tuple[PortalServer, str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
) -> None:
    """CIBA poll mode end to end: the portal's server asks the provider, the professional
    answers on the phone (or lets the request expire), the portal's page follows."""
    import mocks.psc.ecps as ecps

    monkeypatch.setattr(ecps, "POLL_INTERVAL", 1)
    if answer == "expirer":
        monkeypatch.setattr(ecps, "REQUEST_LIFETIME", 2)
    site, provider = psc_portal
    page = browser.new_page()
    page.goto(site.origin + "/identification")
    page.click("#psc-remote")
    page.fill("input[name=identifiant]", NATIONAL_ID)
    page.click("#ciba-form button")
    if answer != "expirer":
        answer_on_phone(browser, provider, page.inner_text("#binding"), answer)
    if answer == "approuver":
        page.wait_for_url(site.origin + "/accueil", timeout=30000)
        assert "CLAIRE LEFEBVRE" in page.inner_text("h1")
    else:
        page.wait_for_selector("#ciba-error:not(.hidden)", timeout=30000)
        assert "n'a pas abouti" in page.inner_text("#ciba-error")
