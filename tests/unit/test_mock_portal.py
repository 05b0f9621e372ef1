"""The mock portal's flows at the HTTP level (tokens made with the TEST PKI's keys, as a card
would sign them); the same flows in a real browser with the agent are in tests/e2e."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
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
    portal = create_portal(
        PortalConfig(origin=ORIGIN, store=str(tmp_path / "portal.db"), demo=True)
    )
    seed_demo(portal.state.site.doors)
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


def test_the_cps_calls_refuse_hostile_bodies(app: Any) -> None:
    """The CPS login's two calls are bare ASGI endpoints: the same refusals as the forms."""
    key, cert = pki.card_credentials("cps-doctor", "auth")
    before = _stored(app)

    async def flow() -> list[httpx.Response]:
        b = Browser(app)
        await b.get("/identification")
        headers = {"X-CSRF-Token": b.csrf, "Content-Type": "application/json"}

        async def chunks() -> Any:
            for _ in range(200):
                yield b"x" * 1024

        return [
            await b.client.post("/cps/challenge"),  # no CSRF header
            await b.client.post("/cps/connexion", content=chunks(), headers=headers),
            await b.client.post(
                "/cps/connexion", content=b"{}", headers={**headers, "Content-Length": "99999999"}
            ),
            await b.client.post("/cps/connexion", content=b"\xff{not json", headers=headers),
            await b.client.post("/cps/connexion", json={"token": 5, "nonce": "x"}, headers=headers),
            await b.client.get("/cps/connexion", headers=headers),
        ]

    answers = run(flow())
    assert [a.status_code for a in answers] == [403, 413, 413, 400, 400, 405]
    for answer in answers[:3] + answers[5:]:
        assert 'lang="fr"' in answer.text and "Traceback" not in answer.text
    assert answers[3].json() == {"code": "bad_request", "message": "Requête invalide."}
    assert _stored(app) == before

    async def as_the_page_posts_it() -> httpx.Response:
        b = Browser(app)
        await b.get("/identification")
        headers = {"X-CSRF-Token": b.csrf}
        nonce = (await b.client.post("/cps/challenge", headers=headers)).json()["nonce"]
        token = create_token(rsa_signer(key), cert, ORIGIN, nonce).to_json()  # a string
        return await b.client.post(
            "/cps/connexion", json={"token": token, "nonce": nonce}, headers=headers
        )

    logged = run(as_the_page_posts_it())
    assert logged.json() == {"redirect": "/accueil"}
    assert "portail_session=" in logged.headers["set-cookie"]
    assert "HttpOnly" in logged.headers["set-cookie"]


def test_shared_email_must_use_the_am_number(app: Any) -> None:
    site = app.state.site
    site.stores.accounts.create(
        kind="ps",
        display_name="AUTRE",
        email="claire.lefebvre@cabinet.example",
        email_verified=True,
        am_number="731000000",
        password_hash=site.doors.hasher.hash(DEMO_PASSWORD),
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
    seed_demo(first.state.site.doors)

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


@pytest.mark.parametrize(
    "path",
    [
        "/aide",
        "/configuration",
        "/mot-de-passe-oublie",
        "/courrier",
        "/creer-compte",
        "/creer-compte/cle",
        "/creer-compte/courrier",
    ],
)
def test_every_page_renders(app: Any, path: str) -> None:
    async def flow() -> httpx.Response:
        return await Browser(app).get(path)

    page = run(flow())
    assert page.status_code == 200 and 'lang="fr"' in page.text
    if path == "/aide":
        assert "cardkit doctor" in page.text and "conseiller informatique service" in page.text


def plain(page: httpx.Response) -> str:
    """The page's text with HTML entities decoded (apostrophes are escaped)."""
    return html.unescape(page.text)


def mailed_link(page: httpx.Response, path: str) -> str:
    """The newest link to ``path`` in the mock outbox page."""
    found = re.findall(re.escape(path) + r"\?lien=([\w-]+)", plain(page))
    assert found, plain(page)
    return str(found[0])


def test_account_by_security_key(app: Any) -> None:
    nir, iban = "2 85 03 75 112 045 53", "0147"

    async def flow() -> dict[str, Any]:
        b = Browser(app)
        await b.get("/creer-compte/cle")
        wrong = await b.post(
            "/creer-compte/cle", {"numero": "751234567", "nir": nir, "iban": "9999"}
        )
        bad_nir = await b.post(
            "/creer-compte/cle",
            {"numero": "751234567", "nir": "2 85 03 75 112 045 00", "iban": iban},
        )
        invite = await b.post(
            "/creer-compte/cle", {"numero": "751 234 567", "nir": nir, "iban": iban}
        )
        home = await b.post(
            "/creer-compte/finaliser",
            {
                "email": "sophie.martin@sages-femmes.example",
                "mot_de_passe": "Sage-Femme-26!",
                "confirmation": "Sage-Femme-26!",
                "conditions": "oui",
            },
        )
        patient = await b.get("/patient")
        token = mailed_link(await b.get("/courrier"), "/creer-compte/valider")
        await b.get(f"/creer-compte/valider?lien={token}")
        confirmed = await b.post("/creer-compte/valider", {"lien": token})
        account = await b.get("/compte")
        pharmacy = Browser(app)
        await pharmacy.get("/creer-compte/cle")
        refused = await pharmacy.post(
            "/creer-compte/cle", {"numero": "752345678", "nir": nir, "iban": "5512"}
        )
        return locals()

    r = run(flow())
    assert "ne correspondent pas à celles connues" in plain(r["wrong"])
    assert "NIR invalide : la clé ne correspond pas" in plain(r["bad_nir"])
    assert r["invite"].url.path == "/creer-compte/finaliser" and "SOPHIE MARTIN" in plain(
        r["invite"]
    )
    assert r["home"].url.path == "/accueil" and "SOPHIE MARTIN" in plain(r["home"])
    assert "vous devez vous connecter à amelipro en carte CPS" in plain(r["patient"])
    assert "Votre adresse e-mail est validée" in plain(r["confirmed"])
    assert "non validée" not in plain(r["account"]) and "Création du compte" in plain(r["account"])
    assert "n'est pas proposée aux pharmacies" in plain(r["refused"])
    assert app.state.site.stores.accounts.by_identifier("752345678") == []


def test_security_key_cannot_be_guessed(app: Any) -> None:
    """Three wrong keys block the number for 30 minutes, like three wrong passwords: the
    4 IBAN characters are not guessable by a script, and even the right key then waits."""

    async def flow() -> list[httpx.Response]:
        b = Browser(app)
        await b.get("/creer-compte/cle")
        pages = []
        for tail in ("0001", "0002", "0003", "0147"):
            fields = {"numero": "751234567", "nir": "285037511204553", "iban": tail}
            pages.append(await b.post("/creer-compte/cle", fields))
        return pages

    pages = run(flow())
    assert "ne correspondent pas" in plain(pages[0]) and "ne correspondent pas" in plain(pages[1])
    assert "Trop d'essais pour ce numéro : réessayez dans 30 min" in plain(pages[2])
    assert "Trop d'essais" in plain(pages[3])  # the right key, refused while blocked


def test_temporary_password_by_post(app: Any) -> None:
    async def flow() -> dict[str, Any]:
        b = Browser(app)
        await b.get("/creer-compte/courrier")
        sent = await b.post("/creer-compte/courrier", {"numero": "753456789"})
        await b.get("/creer-compte/courrier")
        unknown = await b.post("/creer-compte/courrier", {"numero": "700000001"})
        letters = await b.get("/courrier")
        found = re.search(r"Mot de passe provisoire : (\S+) \.", letters.text)
        assert found is not None
        temporary = found.group(1).replace("&amp;", "&")
        await b.get("/identification")
        forced = await b.post("/connexion", {"identifiant": "753456789", "mot_de_passe": temporary})
        still_forced = await b.get("/patient")
        weak = await b.post(
            "/compte/mot-de-passe",
            {"actuel": temporary, "mot_de_passe": "faible", "confirmation": "faible"},
        )
        changed = await b.post(
            "/compte/mot-de-passe",
            {
                "actuel": temporary,
                "mot_de_passe": "Kine-Lyon-2026!",
                "confirmation": "Kine-Lyon-2026!",
                "email": "paul.girard@kine.example",
            },
        )
        home = await b.get("/accueil")
        account = await b.get("/compte")
        return locals()

    r = run(flow())
    for page in (r["sent"], r["unknown"]):  # the same answer: nobody learns who is known
        assert "Si vous n'avez rien reçu dans un délai de 15 jours" in plain(page)
    assert plain(r["letters"]).count('class="letter"') == 1  # none for the unknown number
    assert "PAUL GIRARD, 5 rue Pasteur, 69003 Lyon" in plain(r["letters"])
    assert r["forced"].url.path == "/compte/mot-de-passe" and "provisoire" in plain(r["forced"])
    assert r["still_forced"].url.path == "/compte/mot-de-passe"
    assert "une lettre majuscule" in plain(r["weak"])
    assert "Votre mot de passe a été modifié" in plain(r["changed"])
    assert r["home"].url.path == "/accueil"
    assert "Modification du mot de passe" in plain(r["account"])
    assert "paul.girard@kine.example (non validée)" in plain(r["account"])


def test_expired_temporary_password(app: Any) -> None:
    site = app.state.site
    account = site.stores.accounts.create(
        kind="ps", display_name="EN RETARD", am_number="700000002", email_verified=False
    )
    site.stores.accounts.set_password(
        account.id, site.doors.hasher.hash("Provisoire-1!"), temporary_until=time.time() - 1
    )

    async def flow() -> httpx.Response:
        b = Browser(app)
        await b.get("/identification")
        return await b.post(
            "/connexion", {"identifiant": "700000002", "mot_de_passe": "Provisoire-1!"}
        )

    page = run(flow())
    assert "Votre mot de passe provisoire a expiré" in plain(page)
    assert page.url.path != "/accueil"


def test_email_change_is_confirmed_by_link(app: Any) -> None:
    async def flow() -> dict[str, Any]:
        b = Browser(app)
        await b.get("/identification")
        await b.post("/connexion", {"identifiant": DOCTOR_AM, "mot_de_passe": DEMO_PASSWORD})
        await b.get("/compte")
        unproven = await b.post("/compte/email", {"email": "claire@nouveau.example"})
        asked = await b.post(
            "/compte/email", {"email": "claire@nouveau.example", "mot_de_passe": DEMO_PASSWORD}
        )
        before = await b.get("/compte")
        token = mailed_link(await b.get("/courrier"), "/compte/email/valider")
        shown = await b.get(f"/compte/email/valider?lien={token}")
        done = await b.post("/compte/email/valider", {"lien": token})
        again = await b.post("/compte/email/valider", {"lien": token})
        after = await b.get("/compte")
        return locals()

    r = run(flow())
    assert "saisissez votre mot de passe, ou reconnectez-vous avec votre carte CPS" in plain(
        r["unproven"]
    )
    assert "Un lien de confirmation a été envoyé à claire@nouveau.example" in plain(r["asked"])
    assert "claire.lefebvre@cabinet.example" in plain(r["before"])  # nothing changed yet
    assert "Valider mon adresse e-mail" in plain(r["shown"])  # a GET changes nothing
    assert "Votre adresse e-mail est validée : claire@nouveau.example" in plain(r["done"])
    assert "Ce lien n'est plus valide" in plain(r["again"])
    assert "claire@nouveau.example" in plain(r["after"])
    assert "Modification d'adresse e-mail" in plain(r["after"])


#: Every form the portal takes, with fields that would otherwise be accepted.
FORMS = {
    "/connexion": {"identifiant": DOCTOR_AM, "mot_de_passe": DEMO_PASSWORD},
    "/creer-compte/cle": {"numero": "751234567", "nir": "285037511204553", "iban": "0147"},
    "/creer-compte/courrier": {"numero": "753456789"},
    "/creer-compte/finaliser": {"email": "a@b.example", "mot_de_passe": "Aa-12345!"},
    "/mot-de-passe-oublie": {"identifiant": DOCTOR_AM},
    "/mot-de-passe/nouveau": {"lien": "x", "mot_de_passe": "Aa-12345!"},
    "/creer-compte/valider": {"lien": "x"},
    "/compte/email/valider": {"lien": "x"},
    "/compte/email": {"email": "a@b.example"},
    "/compte/mot-de-passe": {"actuel": DEMO_PASSWORD, "mot_de_passe": "Aa-12345!"},
    "/patient": {"nir": "269054958815780"},
    "/deconnexion": {},
}


def _stored(app: Any) -> dict[str, int]:
    db = app.state.site.stores.db
    tables = ("accounts", "outbox", "links", "events", "lockout", "nonces")
    counts = {t: db.one(f"SELECT count(*) FROM {t}")[0] for t in tables}
    counts["signed_in"] = db.one("SELECT count(*) FROM sessions WHERE data LIKE '%account%'")[0]
    return counts


@pytest.mark.parametrize("path", sorted(FORMS))
def test_hostile_input_on_every_form(app: Any, path: str) -> None:
    """Missing CSRF token, a huge body (announced or chunked), a field too long, bytes that
    are not UTF-8: a French error page, 4xx, no traceback, nothing stored."""

    async def flow() -> tuple[dict[str, int], list[httpx.Response]]:
        b = Browser(app)
        await b.get("/identification")
        if path.startswith("/compte/") and path != "/compte/email/valider":
            await b.post("/connexion", {"identifiant": DOCTOR_AM, "mot_de_passe": DEMO_PASSWORD})
        elif path == "/patient":
            await b.card_login("cps-doctor")
        elif path == "/creer-compte/finaliser":
            await b.card_login("cps-midwife")  # no account yet: the creation form
        before = _stored(app)
        fields = FORMS[path]
        answers = [await b.post(path, fields, csrf=False)]
        answers.append(await b.post(path, {**fields, "junk": "x" * 100_000}))
        answers.append(await b.post(path, {**fields, "junk": "x" * 2000}))

        async def chunks() -> Any:
            yield f"csrf={b.csrf}&".encode()
            for _ in range(200):
                yield b"x" * 1024

        answers.append(
            await b.client.post(
                path,
                content=chunks(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        )
        answers.append(
            await b.client.post(
                path,
                content=f"csrf={b.csrf}&identifiant=%FF%FE%C3&email=%C3".encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        )
        return before, answers

    before, answers = run(flow())
    for answer in answers:
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
        assert 'lang="fr"' in answer.text and "Traceback" not in answer.text
    assert answers[0].status_code == 403 and "Le formulaire a expiré" in answers[0].text
    assert answers[1].status_code == 413 and answers[3].status_code == 413
    assert _stored(app) == before


def test_replayed_token_and_token_for_another_origin(app: Any) -> None:
    key, cert = pki.card_credentials("cps-doctor", "auth")
    sign = rsa_signer(key)
    before = _stored(app)

    async def flow() -> dict[str, Any]:
        b = Browser(app)
        await b.get("/identification")
        headers = {"X-CSRF-Token": b.csrf}
        nonce = (await b.client.post("/cps/challenge", headers=headers)).json()["nonce"]
        elsewhere = create_token(sign, cert, "https://portail.malveillant.example", nonce)
        foreign = await b.client.post(
            "/cps/connexion", json={"token": elsewhere.to_dict(), "nonce": nonce}, headers=headers
        )
        attacker = Browser(app)  # a token for the victim's session, posted in another one
        await attacker.get("/identification")
        good = create_token(sign, cert, ORIGIN, nonce).to_dict()
        stolen = await attacker.client.post(
            "/cps/connexion",
            json={"token": good, "nonce": nonce},
            headers={"X-CSRF-Token": attacker.csrf},
        )
        after_failures = _stored(app)
        logged = await b.client.post(
            "/cps/connexion", json={"token": good, "nonce": nonce}, headers=headers
        )
        await b.get("/accueil")
        replayed = await b.client.post(
            "/cps/connexion",
            json={"token": good, "nonce": nonce},
            headers={"X-CSRF-Token": b.csrf},
        )
        return locals()

    r = run(flow())
    # The origin is part of what the card signed: at this origin, that signature is false.
    assert r["foreign"].status_code == 401 and r["foreign"].json()["code"] == "signature_invalid"
    assert r["stolen"].status_code == 401 and r["stolen"].json()["code"] == "nonce_unknown"
    assert r["after_failures"] == before  # refused tokens store nothing, burn no nonce
    assert r["logged"].status_code == 200
    assert r["replayed"].status_code == 401  # the new session never had that challenge


def test_expired_sessions_are_purged(app: Any) -> None:
    """The first new visitor of a while purges what expired (sessions, challenges, links)."""
    stores = app.state.site.stores
    for _ in range(5):
        stores.sessions.create({"pending": {}})
    stores.db.execute("UPDATE sessions SET expires = 0")

    async def flow() -> httpx.Response:
        return await Browser(app).get("/identification")

    run(flow())
    assert stores.sessions.count() == 1  # the new visitor's own


def test_the_page_carries_the_challenge_and_keeps_its_session(app: Any) -> None:
    """A visitor's session is stored once and kept across pages (its cookie set once); the
    identification page's challenge logs in without asking for another; a cookie that is not
    an id at all is replaced."""
    stores = app.state.site.stores
    key, cert = pki.card_credentials("cps-doctor", "auth")

    async def flow() -> dict[str, Any]:
        b = Browser(app)
        page = await b.get("/identification")
        again = await b.get("/identification")
        rows = stores.sessions.count()
        nonce = re.search(r'data-nonce="([^"]+)"', page.text)
        assert nonce is not None
        token = create_token(rsa_signer(key), cert, ORIGIN, nonce.group(1)).to_json()
        logged = await b.client.post(
            "/cps/connexion",
            json={"token": token, "nonce": nonce.group(1)},
            headers={"X-CSRF-Token": b.csrf},
        )
        home = await b.get("/accueil")
        junk = Browser(app)
        junk.client.cookies.set("portail_session", "x" * 500)
        replaced = await junk.get("/identification")
        return locals()

    r = run(flow())
    assert "set-cookie" in r["page"].headers and "set-cookie" not in r["again"].headers
    assert r["rows"] == 1
    assert r["logged"].status_code == 200 and r["home"].url.path == "/accueil"
    assert stores.sessions.count() == 2  # the signed-in session, the junk visitor's
    cookie = r["replaced"].headers["set-cookie"]
    assert cookie.startswith("portail_session=") and "x" * 43 not in cookie


def test_security_key_gives_a_new_session_id(app: Any) -> None:
    """The verified clé de sécurité lets its session create the account: an id planted in the
    browser before (session fixation) must not be that session."""
    nir, iban = "2 85 03 75 112 045 53", "0147"

    async def flow() -> tuple[httpx.Response, httpx.Response]:
        b = Browser(app)
        await b.get("/creer-compte/cle")
        planted = b.client.cookies["portail_session"]
        invite = await b.post(
            "/creer-compte/cle", {"numero": "751 234 567", "nir": nir, "iban": iban}
        )
        attacker = Browser(app)
        attacker.client.cookies.set("portail_session", planted)
        return invite, await attacker.get("/creer-compte/finaliser")

    invite, attacker = run(flow())
    assert invite.url.path == "/creer-compte/finaliser"
    assert attacker.url.path == "/identification" and "SOPHIE MARTIN" not in plain(attacker)
