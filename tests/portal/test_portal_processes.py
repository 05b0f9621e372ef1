"""Two mock-portal *processes* (``cardkit portal run``) serving one portal, as behind a load
balancer: sharing a Redis (sessions, login challenges, lockout) or one SQLite file. A CPS
challenge issued by one is consumed by the other; the lockout counts failures made on both,
and 50 concurrent wrong passwords give one block and never more than 3 counted failures."""

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
def two_portals(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(base URL of instance A, of instance B, the records file)."""
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
    yield first[1], second[1], records
    for process, _ in (first, second):
        process.terminate()
        process.wait(10)


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'data-csrf="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_challenge_from_one_instance_consumed_by_the_other(
    two_portals: tuple[str, str, Path],
) -> None:
    a, b, _ = two_portals
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


def test_fifty_wrong_passwords_across_two_instances_block_once(
    two_portals: tuple[str, str, Path],
) -> None:
    a, b, records = two_portals

    async def attempts() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            forms: list[tuple[str, httpx.Cookies, str]] = []
            for i in range(50):
                base = (a, b)[i % 2]
                page = await client.get(base + "/identification")
                forms.append((base, page.cookies, _csrf(page)))
                client.cookies.clear()

            async def one(base: str, cookies: httpx.Cookies, csrf: str) -> httpx.Response:
                fields = {"csrf": csrf, "identifiant": DOCTOR_AM, "mot_de_passe": "Faux-2026!"}
                async with httpx.AsyncClient(cookies=cookies, timeout=60) as browser:
                    return await browser.post(base + "/connexion", data=fields)

            return await asyncio.gather(*(one(*form) for form in forms))

    answers = asyncio.run(attempts())
    assert all(r.status_code == 200 for r in answers)
    blocked = sum("Votre compte est bloqué" in r.text for r in answers)
    wrong = sum("Identifiant ou mot de passe incorrect" in r.text for r in answers)
    assert wrong <= 2 and blocked == 50 - wrong  # at most 2 failures before the block
    with sqlite3.connect(records) as db:
        events = db.execute(
            "SELECT count(*) FROM events WHERE kind = 'account_blocked'"
        ).fetchone()[0]
    assert events == 1
    # And the right password is refused while blocked, on both.
    for base in (a, b):
        with httpx.Client(base_url=base) as client:
            page = client.get("/identification")
            fields = {"csrf": _csrf(page), "identifiant": DOCTOR_AM, "mot_de_passe": "Demo-2026!"}
            answer = client.post("/connexion", data=fields)
            assert "Votre compte est bloqué" in answer.text
