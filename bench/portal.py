"""The portal side of a CPS login, in one run:

- server time of a whole CPS login on the mock portal (challenge bound to the session, token
  validation at the portal's origin, account lookup, lockout release, journal, new session),
  through its ASGI app, against the validation alone as the library does it for a portal
  (``LoginChallenges.login``: the session's signed nonce checked, the token validated, the
  nonce claimed in a SQLite file, the deployed default): the JSON ``ratio`` (target <= 1.5)
  for a first attempt, which signs the challenge the identification page came with (its
  issue, done while the page renders, is timed and counted), and ``ratio_challenge_asked``
  for a later attempt, which asks ``/cps/challenge`` for a fresh one;
  ``ratio_vs_memory_store`` keeps the earlier baseline, ``Validator.validate`` with the
  in-memory nonce store of the unit tests; ``ratio_floor`` is the same first attempt with
  the portal's login handler swapped for one that does only what a login must
  (:func:`_bare_login`): what the portal's own code adds is ``ratio`` minus that;
- one Argon2id password check with the portal's parameters (by design 20-100 ms);
- CPS logins as a person does them in headless Chromium, click to logged-in page (target
  < 300 ms), with the whole chain real: the portal served by uvicorn, the agent, OpenSC and
  a mock CPS through pcscd (needs root, like the PC/SC tests; ``--browser 0`` skips it).

Tokens for the server-time part are signed with the TEST PKI's keys in-process (what the card
does is measured by ``bench pkcs11`` and ``bench bridge``); revocation is off on both sides,
so the ratio is the portal's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.stats import emit, summary
from cardkit.auth import Challenge, MemoryNonceStore, create_token
from cardkit.auth.challenge import SqliteNonceStore
from cardkit.portal import EventKind, LoginChallenges, PasswordHasher, account_key
from mocks import pki
from mocks.portal.app import Answer, Portal, PortalConfig, ScriptCall, create_portal, seed_demo
from mocks.tokens import rsa_signer

ORIGIN = "http://localhost:8000"


async def _call(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request straight into the ASGI app (no HTTP client in the measure)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status, out_headers, chunks = 0, {}, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for k, v in message.get("headers", []):
                out_headers[k.decode().lower()] = v.decode()
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, out_headers, b"".join(chunks)


def _bare_login(portal: Portal) -> Callable[[str, bytes], Awaitable[Answer]]:
    """What a CPS login must do and nothing more, for the ``floor`` measure: the post parsed,
    then in one transaction the validation with its claim, the account with its last login,
    the lockout release, the journal event and the new session (no error handling, no
    account creation, no session-follows-card)."""

    async def handler(sid: str, body: bytes) -> Answer:
        posted = json.loads(body)
        now = dt.datetime.now(dt.UTC)
        with portal.db.transaction(immediate=False):
            who = portal.challenges.login(sid, posted["token"], posted["nonce"])
            account = portal.data.login_by_card(account_key(who), now)
            assert account is not None
            portal.lockout.unblock_by_card(str(account.id), now)
            portal.journal.record(str(account.id), EventKind.CARD_LOGIN, now)
            new = portal.sessions.rotate(sid, {"account": account.id, "via": "cps"})
        return 200, {"redirect": "/accueil"}, new

    return handler


async def _portal_logins(n: int, folder: Path) -> dict[str, list[int]]:
    app = create_portal(PortalConfig(origin=ORIGIN, store=str(folder / "portal.db")))
    seed_demo(app.state.portal)
    calls = {getattr(r, "path", ""): getattr(r, "endpoint", None) for r in app.routes}
    connexion = calls["/cps/connexion"]
    assert isinstance(connexion, ScriptCall)
    handlers = {"portal": connexion.handler, "bare": _bare_login(app.state.portal)}
    validator = app.state.portal.validator
    library = LoginChallenges(SqliteNonceStore(folder / "nonces.db"), validator, ORIGIN)
    key, cert = pki.card_credentials("cps-doctor", "auth")
    sign = rsa_signer(key)
    base = {"host": "localhost:8000", "origin": ORIGIN}

    async def login(ask: bool, handler: str = "portal") -> int:
        """One CPS login's server time: the challenge the page came with (its issue timed
        apart: the page is not part of the login) or, as a second attempt does, one asked
        for; then the token posted. The card's part is outside the measure."""
        _, headers, page = await _call(app, "GET", "/identification", base)
        found = re.search(r'data-csrf="([^"]+)".*data-nonce="([^"]+)"', page.decode(), re.S)
        assert found is not None
        cookie = headers["set-cookie"].split(";", 1)[0]
        request = {
            **base,
            "cookie": cookie,
            "x-csrf-token": found.group(1),
            "content-type": "application/json",
        }
        started = time.perf_counter_ns()
        if ask:
            _, _, answer = await _call(app, "POST", "/cps/challenge", request, b"{}")
            nonce = json.loads(answer)["nonce"]
        else:
            app.state.portal.challenges.issue(cookie.split("=", 1)[1])  # the page's render did
            nonce = found.group(2)
        paused = time.perf_counter_ns()
        token = create_token(sign, cert, ORIGIN, nonce).to_json()  # as the page posts it
        body = json.dumps({"token": token, "nonce": nonce}).encode()
        resumed = time.perf_counter_ns()
        connexion.handler = handlers[handler]
        status, _, answer = await _call(app, "POST", "/cps/connexion", request, body)
        done = time.perf_counter_ns()
        assert status == 200 and json.loads(answer)["redirect"] == "/accueil", answer
        return (paused - started) + (done - resumed)

    samples: dict[str, list[int]] = {
        "login": [],
        "asked": [],
        "floor": [],
        "alone": [],
        "memory": [],
    }
    for i in range(n + 5):
        # In turn first, so that none is always measured right after another (caches).
        kinds = [(False, "portal"), (True, "portal"), (False, "bare")]
        turn = i % len(kinds)
        timed = {k: await login(*k) for k in kinds[turn:] + kinds[:turn]}
        first, again, floor = (timed[k] for k in kinds)
        # The baseline: the same validation, nothing else.
        issued = library.issue("bench-session")
        raw = create_token(sign, cert, ORIGIN, issued.nonce).to_json()
        t0 = time.perf_counter_ns()
        library.login("bench-session", raw, issued.nonce)
        t1 = time.perf_counter_ns()
        # The earlier baseline: the validator with the unit tests' in-memory store.
        challenge = Challenge.new()
        store = MemoryNonceStore()
        store.issue(challenge)
        raw = create_token(sign, cert, ORIGIN, challenge.nonce).to_json()
        t2 = time.perf_counter_ns()
        validator.validate(raw, ORIGIN, challenge.nonce, store)
        t3 = time.perf_counter_ns()
        if i >= 5:  # warm-up: path validation cache, templates, SQLite pages
            values = (first, again, floor, t1 - t0, t3 - t2)
            for name, value in zip(samples, values, strict=True):
                samples[name].append(value)
    return samples


def _browser_logins(n: int, folder: Path) -> list[int]:
    """``n`` CPS logins in Chromium (after one that loads the page's modules), in ns."""
    from playwright.sync_api import sync_playwright

    from cardkit.pkcs11 import search_list
    from cardkit.transport.pcsc import PcscBackend
    from mocks.harness import (
        CHROMIUM,
        CHROMIUM_ARGS,
        free_port,
        portal_origin,
        start_agent,
        start_card_process,
        start_portal,
    )

    backend = PcscBackend()
    card = start_card_process(backend, "cps-doctor", folder / "card")
    try:
        port = free_port()
        origin = portal_origin(port)
        module = next(str(c.path) for c in search_list() if c.kind == "opensc")
        agent = start_agent(folder / "agent", module, origins=(origin,), quiet=True)
        site = start_portal(port, agent.port, folder / "site.db")
        samples: list[int] = []
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
                )
                page = browser.new_page()
                for _ in range(n + 1):
                    page.goto(origin + "/identification")
                    started = time.perf_counter_ns()
                    page.click("#cps-login")
                    page.wait_for_url(origin + "/accueil", timeout=30000)
                    samples.append(time.perf_counter_ns() - started)
                    page.click("text=Se déconnecter")
                    page.wait_for_url(origin + "/identification")
                browser.close()
        finally:
            site.stop()
            agent.stop()
    finally:
        card.stop(backend)
        backend.close()
    return samples[1:]


def run(n: int, hashes: int, browser_n: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        logins = asyncio.run(_portal_logins(n, Path(folder)))
        browser = _browser_logins(browser_n, Path(folder)) if browser_n else []
    hasher = PasswordHasher()
    stored = hasher.hash("Motdepasse1!")
    checks = []
    for _ in range(hashes):
        t0 = time.perf_counter_ns()
        assert hasher.verify(stored, "Motdepasse1!")
        checks.append(time.perf_counter_ns() - t0)
    s_login, s_asked, s_floor = (summary(logins[k]) for k in ("login", "asked", "floor"))
    s_alone, s_memory = summary(logins["alone"]), summary(logins["memory"])
    result: dict[str, object] = {
        "bench": "portal",
        "n": n,
        "cps_login_server": s_login,
        "cps_login_server_challenge_asked": s_asked,
        "cps_login_floor": s_floor,
        "validation_alone": s_alone,
        "validation_memory_store": s_memory,
        "ratio": round(s_login["median_us"] / s_alone["median_us"], 3),
        "ratio_challenge_asked": round(s_asked["median_us"] / s_alone["median_us"], 3),
        "ratio_floor": round(s_floor["median_us"] / s_alone["median_us"], 3),
        "ratio_vs_memory_store": round(s_login["median_us"] / s_memory["median_us"], 3),
        "argon2id_verify": summary(checks),
    }
    if browser:
        result["browser_n"] = len(browser)
        result["browser_cps_login"] = summary(browser)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench portal", description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="CPS logins")
    parser.add_argument("--hashes", type=int, default=20, help="password checks")
    parser.add_argument(
        "--browser", type=int, default=20, help="CPS logins in Chromium (0: none; needs root)"
    )
    args = parser.parse_args(argv)
    result = run(args.n, args.hashes, args.browser)
    for label, key in (
        ("CPS login, portal server", "cps_login_server"),
        ("same, challenge asked", "cps_login_server_challenge_asked"),
        ("what a login must do", "cps_login_floor"),
        ("validation alone", "validation_alone"),
        ("validation, memory store", "validation_memory_store"),
        ("argon2id verify", "argon2id_verify"),
        ("CPS login in Chromium", "browser_cps_login"),
    ):
        if key not in result:
            continue
        row = result[key]
        assert isinstance(row, dict)
        print(f"  {label:26}: median {row['median_us']:9.1f} us  p99 {row['p99_us']:9.1f} us")
    print(f"  ratio login / validation : {result['ratio']}")
    print(f"  same, challenge asked    : {result['ratio_challenge_asked']}")
    print(f"  what a login must do     : {result['ratio_floor']}")
    print(f"  ratio vs memory store    : {result['ratio_vs_memory_store']}")
    emit(result)


if __name__ == "__main__":
    main()
