"""Two mock PSC provider processes on one Redis serve one login: the authorization on one,
the token, keys and userinfo on the other (as behind a load balancer)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from mocks.harness import free_port
from mocks.psc.model import DISCOVERY, REALM
from tests.unit.test_psc import REDIRECT, stock_client_login


@pytest.fixture
def two_providers(redis_url: str) -> Iterator[tuple[str, str]]:
    ports = [free_port(), free_port()]
    base = f"http://127.0.0.1:{ports[0]}"  # the issuer both answer for
    processes = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "cardkit", "psc", "run", "--port", str(port)),
                *("--base", base, "--client", f"portail:secret-portail:{REDIRECT}"),
                *("--redis", redis_url),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    deadline = time.monotonic() + 30
    for url in bases:
        while True:
            try:
                httpx.get(url + REALM + DISCOVERY).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail("the provider did not start")
                time.sleep(0.1)
    yield bases[0], bases[1]
    for process in processes:
        process.terminate()
        process.wait(10)


def test_one_login_across_two_processes(two_providers: tuple[str, str]) -> None:
    first, second = two_providers
    info = stock_client_login(first, token_base=second)
    assert info["SubjectNameID"] == "899700075122"
