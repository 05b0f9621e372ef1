"""The mock portal's flows at the HTTP level (tokens made with the TEST PKI's keys, as a card
would sign them); the same flows in a real browser with the agent are in tests/e2e."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from cardkit.auth import create_token
from mocks import pki
from mocks.portal.app import DEMO_PASSWORD, PortalConfig, create_portal, seed_demo
from mocks.tokens import rsa_signer

ORIGIN = "http://localhost:8000"
DOCTOR_AM = "731016879"


class Browser:
    """An HTTP client that keeps cookies and reads the CSRF token pages carry."""

    def __init__(self, app: Any) -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=ORIGIN, follow_redirects=True
        )
        self.csrf = ""

    async def get(self, path: str) -> httpx.Response:
        response = await self.client.get(path)
        self._remember(response)
        return response

    def _remember(self, response: httpx.Response) -> None:
        found = re.search(r'name="csrf" value="([^"]+)"', response.text) or re.search(
            r'data-csrf="([^"]+)"', response.text
        )
        if found:
            self.csrf = found.group(1)

    async def post(self, path: str, fields: dict[str, str], csrf: bool = True) -> httpx.Response:
        data = {**fields, **({"csrf": self.csrf} if csrf else {})}
        response = await self.client.post(path, data=data)
        self._remember(response)
        return response

    async def card_login(self, profile: str) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf}
        nonce = (await self.client.post("/cps/challenge", headers=headers)).json()["nonce"]
        key, cert = pki.card_credentials(profile, "auth")
        token = create_token(rsa_signer(key), cert, ORIGIN, nonce).to_dict()
        answer = await self.client.post(
            "/cps/connexion", json={"token": token, "nonce": nonce}, headers=headers
        )
        if answer.status_code == 200:
            return await self.get(answer.json()["redirect"])
        return answer


@pytest.fixture
def app(tmp_path: Path) -> Any:
    portal = create_portal(PortalConfig(origin=ORIGIN, store=str(tmp_path / "portal.db")))
    seed_demo(portal.state.portal)
    return portal


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_three_doors_in_french(app: Any) -> None:
    async def flow() -> httpx.Response:
        return await Browser(app).get("/")

    page = run(flow())
    assert page.status_code == 200 and 'lang="fr"' in page.text
    for text in (
        "Identifiant / mot de passe",
        "VOUS CONNECTER PAR CARTE CPS",
        "Créer un compte",
        "Mot de passe oublié",
        "N° d'Assurance Maladie",
    ):
        assert text in page.text
    assert "integrity" in page.text  # the bridge client is bound by its hash


def test_lockout_then_cps_unblocks(app: Any) -> None:
    async def flow() -> list[httpx.Response]:
        b = Browser(app)
        await b.get("/identification")
        pages = [
            await b.post("/connexion", {"identifiant": DOCTOR_AM, "mot_de_passe": "Faux1!xx"})
            for _ in range(3)
        ]
        pages.append(
            await b.post("/connexion", {"identifiant": DOCTOR_AM, "mot_de_passe": DEMO_PASSWORD})
        )
        pages.append(await b.card_login("cps-doctor"))
        await b.post("/deconnexion", {})
        await b.get("/identification")
        pages.append(
            await b.post("/connexion", {"identifiant": DOCTOR_AM, "mot_de_passe": DEMO_PASSWORD})
        )
        pages.append(await b.get("/compte/evenements"))
        return pages

    first, second, third, right_but_blocked, by_card, by_password, events = run(flow())
    assert "Identifiant ou mot de passe incorrect" in first.text
    assert "Identifiant ou mot de passe incorrect" in second.text
    expected = (
        "Votre compte est bloqué. Veuillez réessayer dans 30 min ou connectez-vous "
        "avec votre carte CPS."
    )
    assert expected in third.text and expected in right_but_blocked.text
    assert by_card.url.path == "/accueil" and "CLAIRE LEFEBVRE" in by_card.text
    assert by_password.url.path == "/accueil" and "Dernière connexion : le " in by_password.text
    listed = events.text
    for label in (
        "Compte bloqué",
        "Compte débloqué par carte CPS",
        "Connexion par carte CPS",
        "Connexion par identifiant et mot de passe",
    ):
        assert label in listed


def test_csrf_and_hostile_forms(app: Any) -> None:
    async def flow() -> list[httpx.Response]:
        b = Browser(app)
        await b.get("/identification")
        missing = await b.post(
            "/connexion", {"identifiant": DOCTOR_AM, "mot_de_passe": "x"}, csrf=False
        )
        huge = await b.post("/connexion", {"identifiant": "x" * 100_000, "mot_de_passe": "x"})
        long_field = await b.post("/connexion", {"identifiant": "x" * 2000, "mot_de_passe": "x"})
        garbage = await b.client.post(
            "/connexion",
            content=b"\xff\xfe\x00csrf=\xc3",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        forged_card = await b.client.post("/cps/connexion", json={"token": {}, "nonce": "x"})
        return [missing, huge, long_field, garbage, forged_card]

    for response in run(flow()):
        assert 400 <= response.status_code < 500, response.status_code
        assert "Traceback" not in response.text
    responses = run(flow())
    assert "Le formulaire a expiré" in responses[0].text
    assert responses[1].status_code == 413


def test_shared_email_must_use_the_am_number(app: Any) -> None:
    portal = app.state.portal
    portal.data.create(
        kind="ps",
        display_name="AUTRE",
        email="claire.lefebvre@cabinet.example",
        am_number="731000000",
        password_hash=portal.hasher.hash(DEMO_PASSWORD),
    )

    async def flow() -> httpx.Response:
        b = Browser(app)
        await b.get("/identification")
        return await b.post(
            "/connexion",
            {"identifiant": "claire.lefebvre@cabinet.example", "mot_de_passe": DEMO_PASSWORD},
        )

    page = run(flow())
    assert "partagée par plusieurs comptes" in page.text and "/accueil" not in str(page.url)


def test_patient_needs_a_card_session_and_nir_stays_out_of_logs(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def flow() -> list[httpx.Response]:
        by_password = Browser(app)
        await by_password.get("/identification")
        await by_password.post(
            "/connexion", {"identifiant": DOCTOR_AM, "mot_de_passe": DEMO_PASSWORD}
        )
        refused = await by_password.get("/patient")
        by_card = Browser(app)
        await by_card.get("/identification")
        await by_card.card_login("cps-doctor")
        await by_card.get("/patient")
        wrong = await by_card.post("/patient", {"nir": "2 69 05 49 588 157 00"})
        found = await by_card.post(
            "/patient", {"nir": "2 69 05 49 588 157 80", "nom": "DUPONT", "prenom": "MARIE"}
        )
        return [refused, wrong, found]

    with caplog.at_level(logging.DEBUG):
        refused, wrong, found = run(flow())
    assert (
        "Pour accéder à la fiche de votre patient, vous devez vous connecter à amelipro en "
        "carte CPS"
    ) in refused.text
    assert "NIR invalide : la clé ne correspond pas au numéro" in wrong.text
    assert "MARIE DUPONT" in found.text and "2 69 05 49 588 157 80" in found.text
    assert "2690549588157" not in caplog.text and "588 157" not in caplog.text


@pytest.mark.parametrize(("profile", "allowed"), [("cps-revoked", True), ("cpe-staff", False)])
def test_account_creation_by_card(app: Any, profile: str, allowed: bool) -> None:
    async def flow() -> list[httpx.Response]:
        b = Browser(app)
        await b.get("/identification")
        invite = await b.card_login(profile)
        pages = [invite]
        if allowed:
            pages.append(
                await b.post(
                    "/creer-compte/finaliser",
                    {
                        "email": "julie@officine.example",
                        "mot_de_passe": "faible",
                        "confirmation": "faible",
                        "conditions": "oui",
                    },
                )
            )
            pages.append(
                await b.post(
                    "/creer-compte/finaliser",
                    {
                        "email": "julie@officine.example",
                        "mot_de_passe": "Pharma-2026!",
                        "confirmation": "Pharma-2026!",
                        "conditions": "oui",
                    },
                )
            )
        return pages

    pages = run(flow())
    assert pages[0].url.path == "/creer-compte/finaliser"
    if not allowed:
        assert "Seule une carte CPE transporteur permet de créer un compte" in pages[0].text
        return
    assert "Vous n'avez pas encore de compte" in pages[0].text
    assert "une lettre majuscule" in pages[1].text
    assert pages[2].url.path == "/accueil" and "JULIE REVOQUE" in pages[2].text


def test_two_portal_processes_on_one_store_are_one_portal(tmp_path: Path) -> None:
    """The challenge from one instance is consumed by the other, and the lockout counts
    failures made on both (two apps on one SQLite file, as two processes would be)."""
    data = str(tmp_path / "shared.db")
    first = create_portal(PortalConfig(origin=ORIGIN, store=data))
    second = create_portal(PortalConfig(origin=ORIGIN, store=data))
    seed_demo(first.state.portal)

    async def flow() -> list[httpx.Response]:
        a, b = Browser(first), Browser(second)
        await a.get("/identification")
        b.client.cookies = a.client.cookies  # one browser, two instances behind a balancer
        b.csrf = a.csrf
        headers = {"X-CSRF-Token": a.csrf}
        nonce = (await a.client.post("/cps/challenge", headers=headers)).json()["nonce"]
        key, cert = pki.card_credentials("cps-doctor", "auth")
        token = create_token(rsa_signer(key), cert, ORIGIN, nonce).to_dict()
        logged = await b.client.post(
            "/cps/connexion", json={"token": token, "nonce": nonce}, headers=headers
        )
        other = Browser(first)
        await other.get("/identification")
        pages = [logged]
        for app_ in (first, second, first):
            browser = Browser(app_)
            browser.client.cookies = other.client.cookies
            browser.csrf = other.csrf
            pages.append(
                await browser.post(
                    "/connexion", {"identifiant": DOCTOR_AM, "mot_de_passe": "Faux-2026!"}
                )
            )
        return pages

    logged, *wrong = run(flow())
    assert logged.status_code == 200 and logged.json()["redirect"] == "/accueil"
    assert "Votre compte est bloqué" in wrong[2].text  # third failure, counted across both


def test_password_reset_by_single_use_link(app: Any) -> None:
    async def flow() -> dict[str, Any]:
        b = Browser(app)
        await b.get("/mot-de-passe-oublie")
        by_number = await b.post("/mot-de-passe-oublie", {"identifiant": DOCTOR_AM})
        await b.get("/mot-de-passe-oublie")
        by_email = await b.post(
            "/mot-de-passe-oublie", {"identifiant": "thomas.roux@soins.example"}
        )
        await b.get("/mot-de-passe-oublie")
        unknown = await b.post("/mot-de-passe-oublie", {"identifiant": "personne@nulle.example"})
        outbox = await b.get("/courrier")
        link = re.search(r"/mot-de-passe/nouveau\?lien=([\w-]+)", outbox.text.split("</li>")[-2])
        assert link is not None  # the doctor's mail (the oldest of the two)
        await b.get(f"/mot-de-passe/nouveau?lien={link.group(1)}")
        weak = await b.post(
            "/mot-de-passe/nouveau",
            {"lien": link.group(1), "mot_de_passe": "court", "confirmation": "court"},
        )
        done = await b.post(
            "/mot-de-passe/nouveau",
            {
                "lien": link.group(1),
                "mot_de_passe": "Nouveau-2026!",
                "confirmation": "Nouveau-2026!",
            },
        )
        again = await b.post(
            "/mot-de-passe/nouveau",
            {"lien": link.group(1), "mot_de_passe": "Encore-2026!", "confirmation": "Encore-2026!"},
        )
        await b.get("/identification")
        login = await b.post(
            "/connexion", {"identifiant": DOCTOR_AM, "mot_de_passe": "Nouveau-2026!"}
        )
        events = await b.get("/compte/evenements")
        return locals()

    r = run(flow())
    assert "Par mesure de sécurité" in r["by_number"].text
    assert "claire.lefebvre" not in r["by_number"].text
    assert "thomas.roux@soins.example" in r["by_email"].text
    assert "personne@nulle.example" in r["unknown"].text  # same answer: no account revealed
    assert r["outbox"].text.count("<li>") == 2  # nothing was sent for the unknown address
    assert "une lettre majuscule" in r["weak"].text
    assert "Votre mot de passe a été modifié" in r["done"].text
    assert "Ce lien n'est plus valide" in r["again"].text.replace("&#39;", "'")
    assert r["login"].url.path == "/accueil"
    assert "Réinitialisation de mot de passe" in r["events"].text


@pytest.mark.parametrize("path", ["/aide", "/configuration", "/mot-de-passe-oublie", "/courrier"])
def test_every_page_renders(app: Any, path: str) -> None:
    async def flow() -> httpx.Response:
        return await Browser(app).get(path)

    page = run(flow())
    assert page.status_code == 200 and 'lang="fr"' in page.text
    if path == "/aide":
        assert "cardkit doctor" in page.text and "conseiller informatique service" in page.text
