"""The mock portal tried as an attacker would, at the HTTP level: each test reproduces one
attack that used to work and shows it fails now (sessions that outlive a password change,
links that outlive newer ones, an unguarded current-password check, an e-mail change
without re-authentication, enumeration, the postal door's tells, missing headers, planted
session ids, e-mail squatting, the demo outbox on a public name)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from starlette.routing import Mount, Route

from cardkit.portal import PasswordHasher
from mocks.portal.app import DEMO_PASSWORD, PortalConfig, create_portal
from tests.unit.test_mock_portal import (  # app: the same demo portal, a fixture
    DOCTOR_AM,
    ORIGIN,
    Browser,
    app,
    mailed_link,
    plain,
    run,
)

__all__ = ["app"]

NEW_PASSWORD = "Nouveau-2026!"


async def signed_in(app: Any, password: str = DEMO_PASSWORD) -> Browser:
    b = Browser(app)
    await b.get("/identification")
    page = await b.post("/connexion", {"identifiant": DOCTOR_AM, "mot_de_passe": password})
    assert page.url.path == "/accueil", plain(page)
    return b


def test_a_password_change_ends_every_other_session(app: Any) -> None:
    async def flow() -> dict[str, Any]:
        mine, stolen = await signed_in(app), await signed_in(app)
        await mine.get("/compte/mot-de-passe")
        changed = await mine.post(
            "/compte/mot-de-passe",
            {"actuel": DEMO_PASSWORD, "mot_de_passe": NEW_PASSWORD, "confirmation": NEW_PASSWORD},
        )
        return {
            "changed": changed,
            "mine": await mine.get("/accueil"),
            "stolen": await stolen.get("/accueil"),
        }

    r = run(flow())
    assert "Votre mot de passe a été modifié" in plain(r["changed"])
    assert r["mine"].url.path == "/accueil"  # the session that changed it goes on
    assert r["stolen"].url.path == "/identification"


def test_a_reset_ends_every_session_and_voids_older_links(app: Any) -> None:
    async def flow() -> dict[str, Any]:
        stolen = await signed_in(app)
        b = Browser(app)
        for _ in range(2):  # two links asked for: the first stops working
            await b.get("/mot-de-passe-oublie")
            await b.post("/mot-de-passe-oublie", {"identifiant": DOCTOR_AM})
        outbox = plain(await b.get("/courrier"))
        newer, older = re.findall(r"/mot-de-passe/nouveau\?lien=([\w-]+)", outbox)[:2]
        fields = {"mot_de_passe": NEW_PASSWORD, "confirmation": NEW_PASSWORD}
        await b.get(f"/mot-de-passe/nouveau?lien={older}")
        with_older = await b.post("/mot-de-passe/nouveau", {"lien": older, **fields})
        done = await b.post("/mot-de-passe/nouveau", {"lien": newer, **fields})
        reused = await b.post("/mot-de-passe/nouveau", {"lien": newer, **fields})
        return {
            "with_older": with_older,
            "done": done,
            "reused": reused,
            "stolen": await stolen.get("/accueil"),
        }

    r = run(flow())
    assert "Ce lien n'est plus valide" in plain(r["with_older"])
    assert "Votre mot de passe a été modifié" in plain(r["done"])
    assert "Ce lien n'est plus valide" in plain(r["reused"])
    assert r["stolen"].url.path == "/identification"


def test_a_password_change_voids_outstanding_links(app: Any) -> None:
    async def flow() -> httpx.Response:
        b = Browser(app)
        await b.get("/mot-de-passe-oublie")
        await b.post("/mot-de-passe-oublie", {"identifiant": DOCTOR_AM})
        link = mailed_link(await b.get("/courrier"), "/mot-de-passe/nouveau")
        mine = await signed_in(app)
        await mine.get("/compte/mot-de-passe")
        await mine.post(
            "/compte/mot-de-passe",
            {"actuel": DEMO_PASSWORD, "mot_de_passe": NEW_PASSWORD, "confirmation": NEW_PASSWORD},
        )
        return await b.get(f"/mot-de-passe/nouveau?lien={link}")

    assert "Ce lien n'est plus valide" in plain(run(flow()))


def test_the_current_password_check_counts_toward_the_lockout(app: Any) -> None:
    """A stolen session guessing the current password: the third wrong guess blocks the
    account and ends the session; the right password is then refused everywhere."""

    async def flow() -> dict[str, Any]:
        stolen = await signed_in(app)
        await stolen.get("/compte/mot-de-passe")
        fields = {"mot_de_passe": NEW_PASSWORD, "confirmation": NEW_PASSWORD}
        answers = []
        for guess in ("Faux-1!aa", "Faux-2!aa", "Faux-3!aa"):
            answers.append(await stolen.post("/compte/mot-de-passe", {"actuel": guess, **fields}))
        right = await stolen.post("/compte/mot-de-passe", {"actuel": DEMO_PASSWORD, **fields})
        login = Browser(app)
        await login.get("/identification")
        by_password = await login.post(
            "/connexion", {"identifiant": DOCTOR_AM, "mot_de_passe": DEMO_PASSWORD}
        )
        return {"answers": answers, "right": right, "by_password": by_password}

    r = run(flow())
    first, second, third = r["answers"]
    assert "Le mot de passe actuel est incorrect" in plain(first)
    assert "Le mot de passe actuel est incorrect" in plain(second)
    assert third.url.path == "/identification" and "Votre session a pris fin" in plain(third)
    assert r["right"].url.path == "/identification"  # the session is gone
    assert "Votre compte est bloqué" in plain(r["by_password"])


def test_changing_the_email_needs_the_password_or_a_fresh_card_login(app: Any) -> None:
    async def flow() -> dict[str, Any]:
        stolen = await signed_in(app)
        await stolen.get("/compte")
        without = await stolen.post("/compte/email", {"email": "voleur@malveillant.example"})
        wrong = await stolen.post(
            "/compte/email", {"email": "voleur@malveillant.example", "mot_de_passe": "Faux-1!aa"}
        )
        card = Browser(app)
        await card.get("/identification")
        await card.card_login("cps-doctor")
        await card.get("/compte")
        by_card = await card.post("/compte/email", {"email": "claire@nouveau.example"})
        return {
            "without": without,
            "wrong": wrong,
            "by_card": by_card,
            "outbox": await card.get("/courrier"),
        }

    r = run(flow())
    assert "saisissez votre mot de passe" in plain(r["without"])
    assert "Le mot de passe actuel est incorrect" in plain(r["wrong"])
    assert "Un lien de confirmation a été envoyé à claire@nouveau.example" in plain(r["by_card"])
    mails = plain(r["outbox"])
    assert "voleur@malveillant.example" not in mails
    # The old address is told, with the new one named.
    notice = re.search(
        r"claire\.lefebvre@cabinet\.example — Changement de l'adresse e-mail de votre "
        r"compte</strong><br><span class=\"mail-body\">([^<]*)",
        mails,
    )
    assert notice is not None and "claire@nouveau.example" in notice.group(1)


def test_unknown_identifiers_get_the_same_blocked_answer(app: Any) -> None:
    async def tries(identifier: str) -> list[str]:
        b = Browser(app)
        await b.get("/identification")
        pages = [
            await b.post("/connexion", {"identifiant": identifier, "mot_de_passe": "Faux-1!aa"})
            for _ in range(4)
        ]
        return [
            re.sub(r"\s+", " ", re.search(r'<p class="alert"[^>]*>([^<]*)', p.text).group(1))  # type: ignore[union-attr]
            for p in pages
        ]

    known = run(tries(DOCTOR_AM))
    unknown = run(tries("700000099"))
    assert known == unknown
    assert known[2] == known[3] and "Votre compte est bloqué" in known[2]


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def hash(self, password: str) -> str:
        self.calls.append("hash")
        return super().hash(password)

    def verify(self, stored: str, password: str) -> bool:
        self.calls.append("verify")
        return super().verify(stored, password)


def test_the_postal_door_answers_and_works_alike(app: Any) -> None:
    """A letter sent, a repeat while the first letter's password is still good, a number
    nobody has, an account with a password of its own: the same page, the same work (one
    password made and hashed); one letter, whose password still works after the repeat."""
    site = app.state.site
    counting = CountingHasher()
    site.doors.hasher = counting

    async def ask(number: str) -> tuple[str, list[str]]:
        b = Browser(app)
        await b.get("/creer-compte/courrier")
        counting.calls.clear()
        page = await b.post("/creer-compte/courrier", {"numero": number})
        varying = f'{re.escape(b.csrf)}|nonce="[^"]+"'  # per session, per response
        return re.sub(varying, "", page.text), list(counting.calls)

    pages = [run(ask(n)) for n in ("753456789", "753456789", "700000001", DOCTOR_AM)]
    assert len({text for text, _ in pages}) == 1
    assert all(calls == ["hash"] for _, calls in pages)
    letters = plain(run(Browser(app).get("/courrier")))
    assert letters.count('class="letter"') == 1
    temporary = re.search(r"Mot de passe provisoire : (\S+) \.", letters)
    assert temporary is not None

    async def login() -> httpx.Response:
        b = Browser(app)
        await b.get("/identification")
        return await b.post(
            "/connexion", {"identifiant": "753456789", "mot_de_passe": temporary.group(1)}
        )

    assert run(login()).url.path == "/compte/mot-de-passe"  # not voided by the repeat


#: Where every route of the portal can be reached with a GET (the POST-only ones answer
#: 405, with the same headers).
def _paths(app: Any) -> list[str]:
    paths = []
    for route in app.routes:
        if isinstance(route, Mount):
            paths.append("/static/portail.css")
        elif isinstance(route, Route):
            paths.append(route.path)
    return [*paths, "/nulle-part"]


def test_security_headers_on_every_route(app: Any) -> None:
    async def flow() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url=ORIGIN,
        ) as client:
            answers = [await client.get(path) for path in _paths(app)]
            answers.append(await client.post("/connexion", data={"x": "y"}))
            return answers

    answers = run(flow())
    assert {a.status_code for a in answers} >= {200, 303, 403, 404, 405}
    for answer in answers:
        csp = answer.headers["content-security-policy"]
        where = f"{answer.request.method} {answer.request.url.path}: {answer.status_code}"
        assert "frame-ancestors 'none'" in csp and "script-src 'self' 'nonce-" in csp, where
        assert "default-src 'none'" in csp and "connect-src 'self' http://127.0.0.1:" in csp
        assert answer.headers["x-frame-options"] == "DENY", where
        assert answer.headers["referrer-policy"] == "no-referrer", where
        assert answer.headers["x-content-type-options"] == "nosniff", where
        if not answer.request.url.path.startswith("/static/"):
            assert answer.headers["cache-control"] == "no-store", where


def test_pages_use_their_csp_nonce(app: Any) -> None:
    """The page's two scripts (import map, module) carry the response's nonce."""

    async def flow() -> httpx.Response:
        return await Browser(app).get("/identification")

    page = run(flow())
    found = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"])
    assert found is not None
    assert page.text.count(f'nonce="{found.group(1)}"') == 2


def test_a_session_id_never_issued_is_not_adopted(app: Any) -> None:
    """A planted cookie (made up, or once valid and gone) never becomes anyone's session:
    every request with it gets a fresh id, and nothing is stored under it."""
    planted = "A" * 43

    async def visit() -> httpx.Response:
        b = Browser(app)
        b.client.cookies.set("portail_session", planted)
        return await b.get("/identification")

    first, second = run(visit()), run(visit())
    ids = [r.headers["set-cookie"].split(";")[0].split("=", 1)[1] for r in (first, second)]
    assert planted not in ids and ids[0] != ids[1]
    assert app.state.site.stores.sessions.get(planted) is None


def test_https_portals_use_a_host_only_cookie(tmp_path: Path) -> None:
    app = create_portal(
        PortalConfig(origin="https://portail.example", store=str(tmp_path / "p.db"))
    )

    async def flow() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://portail.example"
        ) as client:
            return await client.get("/identification")

    page = run(flow())
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-portail_session=")
    assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
    assert "max-age" in page.headers["strict-transport-security"]


def test_an_unverified_email_cannot_take_another_accounts_identifier(app: Any) -> None:
    """A new account declares the doctor's address (never confirmed): the doctor still logs
    in and resets with it, and the squatter's account is not found by it."""

    async def flow() -> dict[str, Any]:
        squatter = Browser(app)
        await squatter.get("/identification")
        await squatter.card_login("cps-midwife")
        created = await squatter.post(
            "/creer-compte/finaliser",
            {
                "email": "claire.lefebvre@cabinet.example",
                "mot_de_passe": "Squat-2026!",
                "confirmation": "Squat-2026!",
                "conditions": "oui",
            },
        )
        owner = Browser(app)
        await owner.get("/identification")
        login = await owner.post(
            "/connexion",
            {"identifiant": "claire.lefebvre@cabinet.example", "mot_de_passe": DEMO_PASSWORD},
        )
        other = Browser(app)
        await other.get("/identification")
        squat = await other.post(
            "/connexion",
            {"identifiant": "claire.lefebvre@cabinet.example", "mot_de_passe": "Squat-2026!"},
        )
        return {"created": created, "login": login, "squat": squat}

    r = run(flow())
    assert r["created"].url.path == "/accueil"
    assert r["login"].url.path == "/accueil" and "CLAIRE LEFEBVRE" in plain(r["login"])
    assert "Identifiant ou mot de passe incorrect" in plain(r["squat"])


def test_the_demo_outbox_is_demo_only_and_loopback_only(app: Any, tmp_path: Path) -> None:
    production = create_portal(PortalConfig(origin=ORIGIN, store=str(tmp_path / "prod.db")))

    async def get(target: Any, host: str) -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=target), base_url=f"http://{host}"
        ) as client:
            return await client.get("/courrier")

    assert run(get(app, "localhost:8000")).status_code == 200
    assert run(get(app, "127.0.0.1:8000")).status_code == 200
    assert run(get(app, "portail.example")).status_code == 404
    assert run(get(app, "localhost.portail.example")).status_code == 404
    assert run(get(production, "localhost:8000")).status_code == 404
