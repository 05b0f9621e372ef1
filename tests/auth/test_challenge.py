"""Origins, nonces, the token format, and the embedded nonce stores."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path

import pytest

from cardkit.auth import (
    Challenge,
    ConsumeResult,
    MemoryNonceStore,
    NonceError,
    NonceStore,
    OriginError,
    SqliteNonceStore,
    create_token,
    normalize_origin,
)
from cardkit.auth.challenge import check_nonce
from tests.auth.conftest import card, race, rsa_signer


@pytest.mark.parametrize(
    ("origin", "normal"),
    [
        ("https://portal.example", "https://portal.example"),
        ("HTTPS://PORTAL.Example/", "https://portal.example"),
        ("https://portal.example:443", "https://portal.example"),
        ("https://portal.example:8443", "https://portal.example:8443"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://127.0.0.1", "http://127.0.0.1"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("http://app.localhost:80", "http://app.localhost"),
    ],
)
def test_origins(origin: str, normal: str) -> None:
    assert normalize_origin(origin) == normal


@pytest.mark.parametrize(
    "origin",
    [
        "http://portal.example",
        "ftp://portal.example",
        "https://portal.example/path",
        "https://user@portal.example",
        "https://portal.example?q=1",
        "https://",
        "portal.example",
        "https://portal .example",
        "https://portal.example:99999",
        "",
        "null",
    ],
)
def test_bad_origins(origin: str) -> None:
    with pytest.raises(OriginError):
        normalize_origin(origin)


def test_challenge() -> None:
    a, b = Challenge.new(), Challenge.new()
    assert a.nonce != b.nonce and len(check_nonce(a.nonce)) == 32 and "=" not in a.nonce
    assert not a.expired
    assert Challenge.new(dt.timedelta(seconds=-1)).expired


@pytest.mark.parametrize("nonce", ["", "short", "A" * 42, "!" * 50, "A" * 300])
def test_short_or_bad_nonces_are_refused(nonce: str) -> None:
    with pytest.raises(NonceError):
        check_nonce(nonce)


def test_agent_refuses_to_sign_short_nonce_or_http_origin() -> None:
    key, cert = card("cps-doctor")
    signed: list[bytes] = []

    def sign(data: bytes) -> bytes:
        signed.append(data)
        return rsa_signer(key)(data)

    with pytest.raises(NonceError):
        create_token(sign, cert, "https://portal.example", "A" * 20)
    with pytest.raises(OriginError):
        create_token(sign, cert, "http://portal.example", Challenge.new().nonce)
    assert signed == []  # nothing reached the card
    token = json.loads(
        create_token(sign, cert, "https://portal.example", Challenge.new().nonce).to_json()
    )
    assert set(token) == {
        "format",
        "certificate",
        "algorithm",
        "signature",
        "issued_at",
        "app_version",
    }
    assert token["format"] == "cardkit:1" and token["issued_at"].endswith("Z")


def stores(tmp_path: Path) -> list[NonceStore]:
    return [MemoryNonceStore(), SqliteNonceStore(tmp_path / "nonces.db")]


@pytest.mark.parametrize("kind", [0, 1])
def test_store_semantics(tmp_path: Path, kind: int) -> None:
    store = stores(tmp_path)[kind]
    live, old = Challenge.new(), Challenge.new(dt.timedelta(seconds=-1))
    store.issue(live)
    store.issue(old)
    assert store.consume("never issued") == ConsumeResult.UNKNOWN
    assert store.consume(live.nonce) == ConsumeResult.OK
    assert store.consume(live.nonce) == ConsumeResult.REPLAYED
    assert store.consume(old.nonce) == ConsumeResult.EXPIRED
    assert store.consume(old.nonce) == ConsumeResult.REPLAYED


def test_sqlite_store_is_durable(tmp_path: Path) -> None:
    path = tmp_path / "nonces.db"
    challenge = Challenge.new()
    SqliteNonceStore(path).issue(challenge)
    other_process_view = SqliteNonceStore(path)
    assert other_process_view.consume(challenge.nonce) == ConsumeResult.OK
    assert SqliteNonceStore(path).consume(challenge.nonce) == ConsumeResult.REPLAYED


def test_purge(tmp_path: Path) -> None:
    for store in stores(tmp_path):
        store.issue(Challenge.new(dt.timedelta(hours=-1)))
        store.issue(Challenge.new())
        assert store.purge_expired() == 1


@pytest.mark.parametrize("kind", [0, 1])
def test_fifty_threads_one_winner(tmp_path: Path, kind: int) -> None:
    store = stores(tmp_path)[kind]
    challenge = Challenge.new()
    store.issue(challenge)
    results = race([lambda: store.consume(challenge.nonce)] * 50)
    assert results.count(ConsumeResult.OK) == 1
    assert results.count(ConsumeResult.REPLAYED) == 49


def test_sqlite_two_connections_one_winner(tmp_path: Path) -> None:
    """As with portal processes sharing the file: separate connections, one winner."""
    path = tmp_path / "shared.db"
    challenge = Challenge.new()
    SqliteNonceStore(path).issue(challenge)
    connections = [SqliteNonceStore(path) for _ in range(10)]
    results = race([functools.partial(c.consume, challenge.nonce) for c in connections])
    assert results.count(ConsumeResult.OK) == 1
