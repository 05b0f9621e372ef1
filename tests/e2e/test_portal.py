"""The mock portal in headless Chromium, with the agent and mock cards as real processes:
CPS login, lockout unblocked by the card, "Lire carte Vitale", a stopped agent."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mocks.harness import (
    AgentProcess,
    CardProcess,
    PortalServer,
    free_port,
    portal_origin,
    start_portal,
)
from mocks.portal.app import DEMO_PASSWORD

SCREENSHOTS = Path(__file__).with_name("screenshots")


@pytest.fixture
def portal(
    tmp_path: Path, agent: Callable[..., AgentProcess]
) -> Iterator[Callable[..., tuple[PortalServer, AgentProcess]]]:
    """start() -> (the portal, the agent that allows it): the portal's origin must be in the
    agent's allowlist, and the page must know the agent's port."""
    servers: list[PortalServer] = []

    def start(
        follow_card: bool = False, wire_format: str = "cardkit:1", **options: Any
    ) -> tuple[PortalServer, AgentProcess]:
        port = free_port()
        running = agent(origins=(portal_origin(port),), **options)
        site = start_portal(
            port,
            running.port,
            tmp_path / "portal.db",
            session_follows_card=follow_card,
            wire_format=wire_format,
        )
        servers.append(site)
        return site, running

    yield start
    for site in servers:
        site.stop()


def shot(page: Any, tmp_path: Path, name: str) -> None:
    """A screenshot per flow, kept with the test's files; the README's are refreshed with
    CARDKIT_UPDATE_SCREENSHOTS=1."""
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    if os.environ.get("CARDKIT_UPDATE_SCREENSHOTS") == "1":
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_cps_login_unblocks_and_reads_vitale(
    browser: Any,
    portal: Callable[..., tuple[PortalServer, AgentProcess]],
    tmp_path: Path,
    card_process: Callable[[str], CardProcess],
) -> None:
    card_process("cps-doctor")
    card_process("vitale-family")
    site, _agent = portal()
    origin = site.origin
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(origin + "/identification")
    shot(page, tmp_path, "portal-identification")
    for _ in range(3):  # three wrong passwords
        page.fill("input[name=identifiant]", "731016879")
        page.fill("input[name=mot_de_passe]", "Mauvais-1!")
        page.click("#password-form button")
    assert "Votre compte est bloqué" in page.inner_text("#blocked")
    shot(page, tmp_path, "portal-blocked")
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text))
    page.click("#cps-login")  # the card unblocks the account at once
    try:
        page.wait_for_url(origin + "/accueil", timeout=30000)
    except Exception:
        error = page.inner_text("#cps-error") if page.is_visible("#cps-error") else ""
        raise AssertionError(f"no login: {error!r} {messages}") from None
    assert "CLAIRE LEFEBVRE" in page.inner_text("h1")
    page.goto(origin + "/patient")
    page.click("#read-vitale")
    page.wait_for_selector(".beneficiary", timeout=15000)
    names = page.locator(".beneficiary").all_inner_texts()
    assert names[0].startswith("MARIE DUPONT") and len(names) == 4
    page.locator(".beneficiary").nth(1).click()  # the second person on the card
    page.wait_for_selector("#patient", timeout=15000)
    assert "JEAN DUPONT" in page.inner_text("#patient")
    shot(page, tmp_path, "portal-patient")
    page.goto(origin + "/compte/evenements")
    events = page.inner_text("#events")
    assert "Compte débloqué par carte CPS" in events and "Compte bloqué" in events
    # The account works with its password again.
    page.click("text=Se déconnecter")
    page.fill("input[name=identifiant]", "731016879")
    page.fill("input[name=mot_de_passe]", DEMO_PASSWORD)
    page.click("#password-form button")
    page.wait_for_url(origin + "/accueil")


def test_cps_login_in_web_eid_format(
    browser: Any,
    portal: Callable[..., tuple[PortalServer, AgentProcess]],
    card_process: Callable[[str], CardProcess],
) -> None:
    """The page logs in through the client's web-eid.js-shaped ``authenticate``: the agent
    makes a web-eid:1.0 token, and the portal's card door validates it like its own."""
    card_process("cps-doctor")
    site, running = portal(wire_format="web-eid:1.0")
    page = browser.new_page()
    page.goto(site.origin + "/identification")
    page.click("#cps-login")
    page.wait_for_url(site.origin + "/accueil", timeout=30000)
    assert "CLAIRE LEFEBVRE" in page.inner_text("h1")
    logins = [line for line in running.audit_lines() if line["event"] == "auth"]
    assert [line["format"] for line in logins] == ["web-eid:1.0"]


def test_stopped_agent_is_said_plainly(
    browser: Any, portal: Callable[..., tuple[PortalServer, AgentProcess]]
) -> None:
    site, running = portal()
    page = browser.new_page()
    page.goto(site.origin + "/identification")
    running.stop()
    page.click("#cps-login")
    page.wait_for_selector("#cps-error:not(.hidden)", timeout=15000)
    text = page.inner_text("#cps-error")
    assert "Le logiciel de lecture des cartes ne répond pas" in text


def test_card_pulled_during_login(
    browser: Any,
    portal: Callable[..., tuple[PortalServer, AgentProcess]],
    card_process: Callable[[str], CardProcess],
) -> None:
    """The card is pulled while the agent waits for the PIN: the page says what happened and
    what to do, and nothing is left half logged in. The card back, the next attempt asks the
    portal for a fresh challenge (the first one signed the challenge the page came with)
    and logs in."""
    cps = card_process("cps-doctor")
    site, running = portal(fifo=True)
    page = browser.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/cps/challenge") else None)
    page.goto(site.origin + "/identification")
    page.click("#cps-login")
    with running.pin_file.open("w") as pin:  # opens once the agent waits for the PIN
        cps.ctl("remove")
        time.sleep(0.6)  # pcscd notices at its next poll
        pin.write("1234\n")
    page.wait_for_selector("#cps-error:not(.hidden)", timeout=30000)
    assert "Aucune carte CPS dans le lecteur" in page.inner_text("#cps-error")
    assert page.url.endswith("/identification") and asked == []
    cps.ctl("insert")
    time.sleep(0.6)
    page.click("#cps-login")
    with running.pin_file.open("w") as pin:
        pin.write("1234\n")
    page.wait_for_url(site.origin + "/accueil", timeout=30000)
    assert len(asked) == 1


def login_by_card(page: Any, origin: str) -> None:
    page.goto(origin + "/identification")
    page.click("#cps-login")


@pytest.mark.parametrize(
    ("profile", "pin", "created"),
    [("cps-midwife", "1234", True), ("cpe-transport", "2222", True), ("cpe-staff", "1111", False)],
)
def test_account_creation_by_card(
    browser: Any,
    portal: Callable[..., tuple[PortalServer, AgentProcess]],
    tmp_path: Path,
    card_process: Callable[[str], CardProcess],
    profile: str,
    pin: str,
    created: bool,
) -> None:
    """A CPS, or a CPE transporteur, with no account: the page invites to create one
    ("Continuer"); a plain CPE is told why not."""
    card_process(profile)
    site, _agent = portal(pin=pin)
    site.site.stores.db.execute("DELETE FROM accounts WHERE card_key LIKE 'CPE:%'")  # no account
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    login_by_card(page, site.origin)
    page.wait_for_url(site.origin + "/creer-compte/finaliser", timeout=30000)
    if not created:
        assert "Seule une carte CPE transporteur" in page.inner_text("#refused")
        shot(page, tmp_path, f"portal-creation-refused-{profile}")
        return
    page.fill("input[name=email]", f"{profile}@exemple.example")
    page.fill("input[name=mot_de_passe]", "Creation-2026!")
    page.fill("input[name=confirmation]", "Creation-2026!")
    page.check("input[name=conditions]")
    shot(page, tmp_path, f"portal-creation-{profile}")
    page.click("#create-form button")
    page.wait_for_url(site.origin + "/accueil")
    page.goto(site.origin + "/courrier")  # the e-mail validation link
    link = page.inner_text("#outbox").split("lien=")[1].split()[0]
    page.goto(f"{site.origin}/creer-compte/valider?lien={link}")
    page.click("#confirm-form button")
    assert "Votre adresse e-mail est validée" in page.inner_text("#done")


def test_security_key_and_letter_by_post(
    browser: Any, portal: Callable[..., tuple[PortalServer, AgentProcess]], tmp_path: Path
) -> None:
    """The two doors without a card: clé de sécurité (refused to a pharmacy), and a
    temporary password by post, then its forced change."""
    site, _agent = portal()
    origin = site.origin
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(origin + "/identification")
    page.click("#create-account")
    page.click("#by-key")
    page.fill("input[name=numero]", "752345678")
    page.fill("input[name=nir]", "2 85 03 75 112 045 53")
    page.fill("input[name=iban]", "5512")
    page.click("#key-form button")
    assert "pas proposée aux pharmacies" in page.inner_text("#refused")
    shot(page, tmp_path, "portal-key-refused")
    page.goto(origin + "/creer-compte/cle")
    page.fill("input[name=numero]", "751234567")
    page.fill("input[name=nir]", "2 85 03 75 112 045 53")
    page.fill("input[name=iban]", "0147")
    page.click("#key-form button")
    page.wait_for_url(origin + "/creer-compte/finaliser")
    page.fill("input[name=email]", "sophie.martin@sages-femmes.example")
    page.fill("input[name=mot_de_passe]", "Sage-Femme-26!")
    page.fill("input[name=confirmation]", "Sage-Femme-26!")
    page.check("input[name=conditions]")
    page.click("#create-form button")
    page.wait_for_url(origin + "/accueil")
    assert "SOPHIE MARTIN" in page.inner_text("h1")
    shot(page, tmp_path, "portal-key-created")
    page.click("text=Se déconnecter")
    page.goto(origin + "/creer-compte/courrier")
    page.fill("input[name=numero]", "753456789")
    page.click("#post-form button")
    assert "15 jours" in page.inner_text("main")
    page.goto(origin + "/courrier")
    shot(page, tmp_path, "portal-letter")
    letter = page.inner_text("#letters")
    temporary = letter.split("Mot de passe provisoire : ")[1].split(" ")[0]
    page.goto(origin + "/identification")
    page.fill("input[name=identifiant]", "753456789")
    page.fill("input[name=mot_de_passe]", temporary)
    page.click("#password-form button")
    page.wait_for_url(origin + "/compte/mot-de-passe")
    assert "mot de passe provisoire" in page.inner_text("#forced")
    page.fill("input[name=actuel]", temporary)
    page.fill("input[name=mot_de_passe]", "Kine-Lyon-2026!")
    page.fill("input[name=confirmation]", "Kine-Lyon-2026!")
    page.fill("input[name=email]", "paul.girard@kine.example")
    shot(page, tmp_path, "portal-forced-change")
    page.click("#password-change-form button")
    assert "Votre mot de passe a été modifié" in page.inner_text("#done")


def test_reset_link_shared_email_and_password_session(
    browser: Any, portal: Callable[..., tuple[PortalServer, AgentProcess]], tmp_path: Path
) -> None:
    site, _agent = portal()
    origin = site.origin
    site.site.stores.accounts.create(
        kind="ps",
        display_name="AUTRE MEDECIN",
        email="claire.lefebvre@cabinet.example",
        email_verified=True,
        am_number="731000000",
    )
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(origin + "/identification")
    page.fill("input[name=identifiant]", "claire.lefebvre@cabinet.example")
    page.fill("input[name=mot_de_passe]", DEMO_PASSWORD)
    page.click("#password-form button")
    assert "partagée par plusieurs comptes" in page.inner_text("#error")
    shot(page, tmp_path, "portal-shared-email")
    page.click("#forgotten")
    page.fill("input[name=identifiant]", "931234567")
    page.click("#forgotten-form button")
    assert "Par mesure de sécurité" in page.inner_text("#sent")
    page.goto(origin + "/courrier")
    link = page.inner_text("#outbox").split("lien=")[1].split()[0]
    for attempt in range(2):
        page.goto(f"{origin}/mot-de-passe/nouveau?lien={link}")
        if attempt == 1:
            assert "Ce lien n'est plus valide" in page.inner_text("#invalid")
            shot(page, tmp_path, "portal-reset-used")
            break
        page.fill("input[name=mot_de_passe]", "Nouveau-2026!")
        page.fill("input[name=confirmation]", "Nouveau-2026!")
        page.click("#new-password-form button")
        assert "Votre mot de passe a été modifié" in page.inner_text("#done")
    page.goto(origin + "/identification")
    page.fill("input[name=identifiant]", "931234567")
    page.fill("input[name=mot_de_passe]", "Nouveau-2026!")
    page.click("#password-form button")
    page.wait_for_url(origin + "/accueil")
    page.goto(origin + "/patient")
    assert "vous devez vous connecter à amelipro en carte CPS" in page.inner_text("main")
    shot(page, tmp_path, "portal-patient-refused")


def test_session_follows_the_card(
    browser: Any,
    portal: Callable[..., tuple[PortalServer, AgentProcess]],
    tmp_path: Path,
    card_process: Callable[[str], CardProcess],
) -> None:
    """With the option on, pulling the CPS that logged in ends the session at once."""
    cps = card_process("cps-doctor")
    site, _agent = portal(follow_card=True)
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    login_by_card(page, site.origin)
    page.wait_for_url(site.origin + "/accueil", timeout=30000)
    page.wait_for_timeout(500)  # the page's event stream is open
    cps.ctl("remove")
    page.wait_for_url(site.origin + "/identification?fin=carte", timeout=15000)
    assert "a été retirée du lecteur" in page.inner_text("#card-removed")
    shot(page, tmp_path, "portal-card-removed")
    page.goto(site.origin + "/accueil")
    assert page.url.endswith("/identification")  # the session is gone
