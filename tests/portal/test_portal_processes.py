"""Two mock-portal *processes* (``cardkit portal run``) serving one portal, as behind a load
balancer: sharing a Redis (sessions, login challenges, lockout) or one SQLite file. A CPS
challenge issued by one is consumed by the other; the lockout counts failures made on both,
and a burst of 200 concurrent guesses, one of them right, checks at most 3 passwords, blocks
once and signs nobody in once the block is reached."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cardkit.auth import create_token
from mocks import pki
from mocks.harness import free_port
from mocks.tokens import rsa_signer

ORIGIN = "http://localhost:8000"  # the public origin both instances answer for
DOCTOR_AM = "731016879"


def _start(store: str, records: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "cardkit", "portal", "run", "--port", str(port)]
    command += ["--origin", ORIGIN, "--store", store, "--records", str(records)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(base + "/aide", timeout=1)
            return process, base
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                error = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"portal did not start: {error}")
            time.sleep(0.1)


@pytest.fixture(params=["redis", "sqlite"])
def two_portals(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str, Path, str]]:
    """(base URL of instance A, of instance B, the records file, the store)."""
    records = tmp_path / "records.db"
    if request.param == "redis":
        request.applymarker(pytest.mark.redis)
        store = request.getfixturevalue("redis_url")
        # Each run its own Redis database would be tidier; a flush is enough here.
        import redis

        redis.Redis.from_url(store).flushdb()
    else:
        store = f"sqlite:{records}"
    first = _start(store, records)
    second = _start(store, records)
    yield first[1], second[1], records, store
    for process, _ in (first, second):
        process.terminate()
        process.wait(10)


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'data-csrf="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_challenge_from_one_instance_consumed_by_the_other(
    two_portals: tuple[str, str, Path, str],
) -> None:
    a, b, _, _ = two_portals
    cookies = httpx.Cookies()
    page = httpx.get(a + "/identification", cookies=cookies)
    cookies.update(page.cookies)
    headers = {"X-CSRF-Token": _csrf(page)}
    nonce = httpx.post(a + "/cps/challenge", headers=headers, cookies=cookies).json()["nonce"]
    key, cert = pki.card_credentials("cps-doctor", "auth")
    token = create_token(rsa_signer(key), cert, ORIGIN, nonce).to_dict()
    body = {"token": token, "nonce": nonce}
    logged = httpx.post(b + "/cps/connexion", json=body, headers=headers, cookies=cookies)
    assert logged.status_code == 200 and logged.json() == {"redirect": "/accueil"}
    cookies.update(logged.cookies)
    home = httpx.get(a + "/accueil", cookies=cookies)  # the session, seen by the other one
    assert home.status_code == 200 and "CLAIRE LEFEBVRE" in home.text
    # The same token again, at either instance: refused (single use across both).
    again = httpx.post(a + "/cps/connexion", json=body, headers=headers, cookies=cookies)
    assert again.status_code in (401, 403)


def _lockout_failures(store: str, records: Path) -> int:
    """The failures the shared lockout counted for the doctor's account (id 1)."""
    if store.startswith("redis://"):
        import redis

        value = redis.Redis.from_url(store).hget("portail:lockout:{1}", "failures")
        return int(value or 0)
    with sqlite3.connect(records) as db:
        row = db.execute("SELECT failures FROM lockout WHERE account = '1'").fetchone()
    return int(row[0]) if row else 0


def test_a_burst_of_200_guesses_across_two_instances(
    two_portals: tuple[str, str, Path, str],
) -> None:
    a, b, records, store = two_portals

    async def attempts() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            forms: list[tuple[str, httpx.Cookies, str, str]] = []
            for i in range(200):
                base = (a, b)[i % 2]
                page = await client.get(base + "/identification")
                guess = "Demo-2026!" if i == 120 else f"Faux-{i}-2026!"
                forms.append((base, page.cookies, _csrf(page), guess))
                client.cookies.clear()

            async def one(
                base: str, cookies: httpx.Cookies, csrf: str, guess: str
            ) -> httpx.Response:
                fields = {"csrf": csrf, "identifiant": DOCTOR_AM, "mot_de_passe": guess}
                async with httpx.AsyncClient(cookies=cookies, timeout=60) as browser:
                    return await browser.post(base + "/connexion", data=fields)

            return list(await asyncio.gather(*(one(*form) for form in forms)))

    answers = asyncio.run(attempts())
    assert all(r.status_code in (200, 303) for r in answers)
    signed_in = sum(r.status_code == 303 for r in answers)
    wrong = sum("Identifiant ou mot de passe incorrect" in r.text for r in answers)
    blocked = sum("Votre compte est bloqué" in r.text for r in answers)
    assert wrong + blocked + signed_in == 200
    with sqlite3.connect(records) as db:
        kinds = [
            k for (k,) in db.execute("SELECT kind FROM events WHERE account = '1' ORDER BY id")
        ]
    logins = kinds.count("password_login")
    blocks = kinds.count("account_blocked")
    assert logins == signed_in <= 1 and blocks <= 1
    # Each check of the hash ends as a wrong password counted (at most three, those of the
    # block) or as the login: at most three wrong ones, and the right one if it was among
    # the first checked. Nobody signs in once the block is reached.
    assert wrong + blocks <= 3
    if blocks:
        assert _lockout_failures(store, records) == 3
        assert "password_login" not in kinds[kinds.index("account_blocked") :]
    else:
        assert logins == 1  # no block: the right password was among the first checked
    if logins == 0:
        for base in (a, b):  # and the right password is refused while blocked, on both
            with httpx.Client(base_url=base) as client:
                page = client.get("/identification")
                fields = {"csrf": _csrf(page), "identifiant": DOCTOR_AM}
                answer = client.post("/connexion", data={**fields, "mot_de_passe": "Demo-2026!"})
                assert "Votre compte est bloqué" in answer.text
