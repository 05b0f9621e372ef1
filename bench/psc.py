"""A Pro Santé Connect login's server time, at the provider and at the portal, against the
CPS door's, in one run.

Everything in this process, no socket: the mock provider (its Flask app) and the mock
portal's stores and doors, the portal's PSC client reaching the provider through httpx's
WSGI transport. One PSC login is, at the provider, the login page and the card's token posted
there (validated, a code issued: ``provider_card_login``), then, at the portal, the return
(``portal_psc_return``: the code exchanged at the provider, the ID token checked, userinfo
read, the account signed in; the provider's token and userinfo answers are in it, as a
portal waits for them). ``cps_door`` is the CPS door's login (the card's token for a challenge
of the session, validated, the account signed in). Tokens are signed with the TEST PKI's
keys in-process; ``ratio`` is a whole PSC login over a CPS door login.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from bench.stats import emit, interleave, ratio, report
from cardkit.auth import create_token
from cardkit.portal.psc import PscClient
from mocks import pki
from mocks.portal.app import PortalConfig, create_portal, seed_demo
from mocks.psc.model import REALM, Client
from mocks.psc.provider import ProviderConfig, create_provider
from mocks.tokens import rsa_signer

PORTAL = "http://localhost:8000"
PROVIDER = "http://localhost:8600"
SECRET = "secret-portail"


def run(n: int) -> dict[str, object]:
    provider = create_provider(
        ProviderConfig(PROVIDER, [Client("portail", SECRET, [PORTAL + "/psc/retour"])])
    )
    transport = httpx.WSGITransport(app=provider)
    key, cert = pki.card_credentials("cps-doctor", "auth")
    with tempfile.TemporaryDirectory() as tmp:
        app = create_portal(PortalConfig(origin=PORTAL, store=str(Path(tmp) / "portal.db")))
        doors = app.state.site.doors
        seed_demo(doors)
        psc = PscClient(
            PROVIDER + REALM, "portail", SECRET, PORTAL + "/psc/retour", transport=transport
        )
        browser = httpx.Client(transport=transport, base_url=PROVIDER)
        parts: dict[str, list[int]] = {"provider_card_login": [], "portal_psc_return": []}
        clock = time.perf_counter_ns

        def psc_login() -> None:
            session = doors.session(None)
            url, pending = psc.begin()  # the portal's redirect: made before, not timed apart
            started = clock()
            page = browser.get(url)
            challenge = re.search(r'name="challenge" value="([^"]+)"', page.text)
            assert challenge is not None
            token = create_token(rsa_signer(key), cert, PROVIDER, challenge[1]).to_json()
            answer = browser.post(url, data={"challenge": challenge[1], "token": token})
            middle = clock()
            params = {
                k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()
            }
            login = psc.finish(params, pending)
            doors.psc.login(session, login)
            parts["provider_card_login"].append(middle - started)
            parts["portal_psc_return"].append(clock() - middle)

        def cps_door() -> None:
            session = doors.session(None)
            nonce = doors.challenge(session.id).nonce
            token = create_token(rsa_signer(key), cert, PORTAL, nonce).to_json()
            doors.card.login(session, token, nonce)

        samples = interleave({"psc_login": psc_login, "cps_door": cps_door}, n, 5)
        browser.close()
    for name in parts:
        parts[name] = parts[name][5:]  # the warm-up rounds
    return {
        "bench": "psc",
        "n": n,
        **report({**samples, **parts}),
        "ratio": ratio(samples["psc_login"], samples["cps_door"]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench psc", description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="logins of each kind")
    args = parser.parse_args(argv)
    result = run(args.n)
    for name in ("psc_login", "provider_card_login", "portal_psc_return", "cps_door"):
        row = result[name]
        assert isinstance(row, dict)
        print(f"  {name:20}: median {row['median_us']:9.1f} us  p99 {row['p99_us']:9.1f} us")
    print(f"  ratio PSC / CPS door : {result['ratio']}")
    emit(result)
