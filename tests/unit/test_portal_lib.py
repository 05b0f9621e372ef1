"""cardkit.portal: the building blocks a portal imports (lockout, challenges bound to the
session, card rules, passwords, events)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cardkit.auth import (
    MemoryNonceStore,
    RevocationPolicy,
    TokenRejected,
    Validator,
    ValidatorConfig,
    create_token,
)
from cardkit.identity import identity_from_certificate
from cardkit.portal import (
    AccountBlocked,
    EventKind,
    Lockout,
    LockoutPolicy,
    LoginChallenges,
    MemoryLockoutStore,
    PasswordHasher,
    PasswordPolicy,
    SqliteEventJournal,
    SqliteLockoutStore,
    WeakPassword,
    account_key,
    may_create_account_by_card,
)
from mocks import pki
from mocks.tokens import rsa_signer

ORIGIN = "https://portal.example"


def fifty_failures_at_once(lockouts: list[Lockout], account: str, now: dt.datetime) -> list[Any]:
    """50 wrong passwords released together, spread over ``lockouts`` (portal instances)."""
    barrier = threading.Barrier(50)
    states: list[Any] = []

    def wrong(i: int) -> None:
        barrier.wait()
        states.append(lockouts[i % len(lockouts)].failed(account, now))

    threads = [threading.Thread(target=wrong, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return states


T0 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_third_failure_blocks_and_card_unblocks(tmp_path: Path, kind: str) -> None:
    store: MemoryLockoutStore | SqliteLockoutStore = (
        MemoryLockoutStore() if kind == "memory" else SqliteLockoutStore(tmp_path / "l.db")
    )
    lockout = Lockout(store, LockoutPolicy(3, dt.timedelta(minutes=30)))
    assert lockout.failed("am:731016879", T0).failures == 1
    assert not lockout.failed("am:731016879", T0).blocked(T0)
    third = lockout.failed("am:731016879", T0)
    assert third.blocked(T0) and third.minutes_left(T0) == 30
    with pytest.raises(AccountBlocked) as info:
        lockout.check("am:731016879", T0 + dt.timedelta(minutes=12, seconds=30))
    assert info.value.minutes_left == 18 and info.value.http_status == 423
    assert lockout.failed("am:731016879", T0).failures == 3  # not counted while blocked
    assert lockout.unblock_by_card("am:731016879", T0) is True
    lockout.check("am:731016879", T0)  # usable at once
    assert lockout.unblock_by_card("am:731016879", T0) is False  # nothing to unblock now


def test_block_runs_out_and_success_resets(tmp_path: Path) -> None:
    lockout = Lockout(SqliteLockoutStore(tmp_path / "l.db"))
    for _ in range(3):
        lockout.failed("a", T0)
    lockout.check("a", T0 + dt.timedelta(minutes=31))  # the block ran out
    assert lockout.failed("a", T0 + dt.timedelta(minutes=31)).failures == 1  # fresh count
    lockout.succeeded("a")
    assert lockout.store.state("a", T0).failures == 0


@pytest.mark.parametrize("kind", ["memory", "sqlite-two-connections"])
def test_fifty_concurrent_failures_block_once(tmp_path: Path, kind: str) -> None:
    """50 wrong passwords at once: blocked once, never more than 3 failures counted (two
    SQLite connections on one file stand for two portal processes)."""
    if kind == "memory":
        shared = MemoryLockoutStore()
        lockouts = [Lockout(shared), Lockout(shared)]
    else:
        lockouts = [
            Lockout(SqliteLockoutStore(tmp_path / "shared.db")),
            Lockout(SqliteLockoutStore(tmp_path / "shared.db")),
        ]
    states = fifty_failures_at_once(lockouts, "am:1", T0)
    assert max(s.failures for s in states) == 3
    assert sorted(s.failures for s in states).count(3) == 48  # 1, 2, then blocked at 3
    assert len({s.blocked_until for s in states if s.blocked_until}) == 1  # one block
    assert sum(s.counted and s.blocked_until is not None for s in states) == 1  # said once


def test_login_challenge_is_bound_to_its_session() -> None:
    validator = Validator(
        ValidatorConfig(pki.trust_anchors(), pki.intermediates(), revocation=RevocationPolicy.OFF)
    )
    store = MemoryNonceStore()
    challenges = LoginChallenges(store, validator, ORIGIN)
    victim = challenges.issue("session-victim")
    attacker = challenges.issue("session-attacker")
    key, cert = pki.card_credentials("cps-doctor", "auth")
    attackers_token = create_token(rsa_signer(key), cert, ORIGIN, attacker.nonce).to_json()
    # Login CSRF: the attacker's token posted into the victim's session is refused.
    with pytest.raises(TokenRejected) as info:
        challenges.login("session-victim", attackers_token, attacker.nonce)
    assert info.value.reason == "nonce_unknown"
    victims_token = create_token(rsa_signer(key), cert, ORIGIN, victim.nonce).to_json()
    who = challenges.login("session-victim", victims_token, victim.nonce)
    assert who.identifier == "99700075122"
    with pytest.raises(TokenRejected):  # single use
        challenges.login("session-victim", victims_token, victim.nonce)


@pytest.mark.parametrize(
    ("profile", "allowed", "key_prefix"),
    [
        ("cps-doctor", True, "RPPS:"),
        ("cps-nurse", True, None),
        ("cpe-transport", True, "CPE:"),
        ("cpe-staff", False, "CPE:"),
    ],
)
def test_card_rules(profile: str, allowed: bool, key_prefix: str | None) -> None:
    who = identity_from_certificate(pki.card_credentials(profile, "auth")[1])
    decision = may_create_account_by_card(who)
    assert decision.allowed is allowed and decision.reason
    if key_prefix:
        assert account_key(who).startswith(key_prefix)
    if not allowed:
        assert "CPE transporteur" in decision.reason


def test_password_policy_names_what_is_missing() -> None:
    policy = PasswordPolicy()
    assert policy.problems("Motdepasse1!") == []
    assert policy.problems("motdepasse") == [
        "une lettre majuscule",
        "un chiffre",
        "un caractère spécial (par exemple ! ? @ # %)",
    ]
    assert "au moins 8 caractères" in policy.problems("Ab1!")
    with pytest.raises(WeakPassword) as info:
        policy.check("abc")
    assert str(info.value).startswith("Le mot de passe doit contenir au moins 8 caractères")


def test_password_hashing() -> None:
    hasher = PasswordHasher()
    stored = hasher.hash("Motdepasse1!")
    assert stored.startswith("$argon2id$") and "m=47104,t=1,p=1" in stored
    started = time.perf_counter()
    assert hasher.verify(stored, "Motdepasse1!")
    took = (time.perf_counter() - started) * 1000
    assert not hasher.verify(stored, "motdepasse1!")
    assert not hasher.verify("not a hash", "Motdepasse1!")  # a mismatch, not an exception
    assert not hasher.verify(stored, "x" * 100_000)  # refused before hashing
    print(f"argon2id verify: {took:.1f} ms")


def test_event_journal(tmp_path: Path) -> None:
    journal = SqliteEventJournal(tmp_path / "events.db")
    journal.record("RPPS:1", EventKind.ACCOUNT_BLOCKED, T0)
    journal.record("RPPS:1", EventKind.UNBLOCKED_BY_CARD, T0 + dt.timedelta(minutes=2))
    journal.record("RPPS:2", EventKind.CARD_LOGIN, T0)
    latest = journal.latest("RPPS:1")
    assert [e.kind for e in latest] == [EventKind.UNBLOCKED_BY_CARD, EventKind.ACCOUNT_BLOCKED]
    assert latest[0].shown().endswith("Compte débloqué par carte CPS")
    assert EventKind.PASSWORD_LOGIN.label == "Connexion par identifiant et mot de passe"
