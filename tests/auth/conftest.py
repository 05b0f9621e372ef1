"""Fixtures for the token and validator tests: tokens signed with the TEST PKI's keys (fast,
in-process) and the TEST PKI's CRL/OCSP services on their loopback ports."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from cardkit.auth import RevocationPolicy, Validator, ValidatorConfig
from mocks import pki
from mocks.revocation import RevocationServer
from mocks.tokens import ORIGIN, IssuedLogin, issue, rsa_signer

__all__ = ["ORIGIN", "IssuedLogin", "card", "issue", "race", "rsa_signer", "validator"]


def race(calls: list[Callable[[], str]]) -> list[str]:
    """Run every call at once (a barrier releases them together); their results."""
    results: list[str] = []
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], str]) -> None:
        barrier.wait()
        results.append(call())

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    return results


def card(profile: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    return pki.card_credentials(profile, "auth")


def validator(revocation: RevocationPolicy = RevocationPolicy.OFF, **kwargs: object) -> Validator:
    config = ValidatorConfig(
        pki.trust_anchors(),
        pki.intermediates(),
        revocation=revocation,
        **kwargs,  # type: ignore[arg-type]
    )
    return Validator(config)


@pytest.fixture
def responders(revocation_server: RevocationServer) -> Iterator[RevocationServer]:
    """Both responders on, counters at zero; restored after the test."""
    revocation_server.crl_enabled = revocation_server.ocsp_enabled = True
    revocation_server.crl_requests = revocation_server.ocsp_requests = 0
    yield revocation_server
    revocation_server.crl_enabled = revocation_server.ocsp_enabled = True
