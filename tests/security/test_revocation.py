"""Revocation fails closed, and fetching it cannot be stalled."""

from __future__ import annotations

import socket

import pytest

from cardkit.auth import RevocationPolicy, Validator, ValidatorConfig
from cardkit.auth.revocation import RevocationSource, _http
from mocks import pki
from tests.auth.conftest import card, issue
from tests.auth.test_validator import rejected


def test_hard_fail_is_the_default() -> None:
    assert ValidatorConfig(pki.trust_anchors()).revocation is RevocationPolicy.HARD_FAIL


@pytest.mark.timeout(30)
def test_silent_responder_costs_at_most_the_timeout() -> None:
    """A responder that accepts connections and never answers: each fetch ends at the
    configured timeout, and hard-fail rejects the token rather than waiting."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # connections complete in the kernel; nobody ever reads them
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        seen: list[str] = []

        def fetch(original: str, body: bytes | None) -> bytes:
            seen.append(original)
            return _http(url, body, timeout=0.3)

        config = ValidatorConfig(
            pki.trust_anchors(), pki.intermediates(), revocation=RevocationPolicy.HARD_FAIL
        )
        v = Validator(config, RevocationSource(fetch))
        t = issue(*card("cps-doctor"))
        assert rejected(v, t.token, t.nonce, t.store) == "revocation_unavailable"
        assert seen  # the responders were tried, and each try ended
