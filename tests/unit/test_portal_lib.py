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
    EventKind,
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
from cardkit.portal.lockout import Outcome, Settled
from mocks import pki
from mocks.tokens import rsa_signer

ORIGIN = "https://portal.example"


T0 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
POLICY = LockoutPolicy(3, dt.timedelta(minutes=30))


def wrong(store: Any, key: str, now: dt.datetime, policy: LockoutPolicy = POLICY) -> Settled:
    reserved = store.reserve(key, now, policy)
    assert reserved.id is not None, "refused"
    settled: Settled = store.settle(key, reserved.id, Outcome.WRONG, now, policy)
    return settled


def lockout_store(kind: str, tmp_path: Path) -> Any:
    if kind == "memory":
        return MemoryLockoutStore()
    return SqliteLockoutStore(tmp_path / "l.db")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_third_failure_blocks_and_card_unblocks(tmp_path: Path, kind: str) -> None:
    store = lockout_store(kind, tmp_path)
    assert wrong(store, "7", T0).state.failures == 1
    assert not wrong(store, "7", T0).state.blocked(T0)
    third = wrong(store, "7", T0)
    assert third.blocked_now and third.state.minutes_left(T0) == 30
    later = T0 + dt.timedelta(minutes=12, seconds=30)
    refused = store.reserve("7", later, POLICY)
    assert refused.id is None and refused.until == third.state.blocked_until
    assert store.state("7", later).minutes_left(later) == 18
    assert store.release("7", T0) is True
    assert store.reserve("7", T0, POLICY).id is not None  # usable at once
    assert store.release("7", T0) is False  # nothing to unblock now


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_block_runs_out_and_a_right_password_resets(tmp_path: Path, kind: str) -> None:
    store = lockout_store(kind, tmp_path)
    for _ in range(3):
        wrong(store, "a", T0)
    after = T0 + dt.timedelta(minutes=31)
    assert store.reserve("a", after, POLICY).id is not None  # the block ran out
    assert wrong(store, "a", after).state.failures == 1  # a fresh count
    reserved = store.reserve("a", after, POLICY)
    assert reserved.id is not None
    right = store.settle("a", reserved.id, Outcome.RIGHT, after, POLICY)
    assert right.accepted and store.state("a", after).failures == 0


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_attempts_in_flight_count_and_expire(tmp_path: Path, kind: str) -> None:
    """Three reserved attempts hold the three places: a fourth is refused, unchecked, until
    one settles, or until a reservation outlives its ttl (a process that died)."""
    store = lockout_store(kind, tmp_path)
    held = [store.reserve("b", T0, POLICY) for _ in range(3)]
    assert all(r.id for r in held)
    refused = store.reserve("b", T0, POLICY)
    assert refused.id is None and refused.until == T0 + POLICY.block_for
    assert held[0].id is not None
    store.settle("b", held[0].id, Outcome.VOID, T0, POLICY)  # given back, counts nothing
    assert store.reserve("b", T0, POLICY).id is not None
    expired = T0 + POLICY.reservation_ttl + dt.timedelta(seconds=1)
    assert store.reserve("b", expired, POLICY).id is not None
    assert store.state("b", expired).failures == 0


def fifty_guesses_at_once(stores: list[Any], key: str, now: dt.datetime) -> list[Any]:
    """50 wrong passwords released together, spread over ``stores`` (portal instances on
    one shared store); each reserved one takes 10 ms to check. The outcomes: "refused" (no
    check) or the check's settlement."""
    barrier = threading.Barrier(50)
    results: list[Any] = []

    def guess(i: int) -> None:
        store = stores[i % len(stores)]
        barrier.wait()
        reserved = store.reserve(key, now, POLICY)
        if reserved.id is None:
            results.append("refused")
            return
        time.sleep(0.01)  # the hash
        results.append(store.settle(key, reserved.id, Outcome.WRONG, now, POLICY))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def assert_one_block(results: list[Any]) -> None:
    """Three checked, one of them blocking; the 47 others refused unchecked."""
    settled = [r for r in results if r != "refused"]
    assert len(settled) == 3 and results.count("refused") == 47
    assert sum(s.blocked_now for s in settled) == 1


@pytest.mark.parametrize("kind", ["memory", "sqlite-two-connections"])
def test_fifty_concurrent_failures_block_once(tmp_path: Path, kind: str) -> None:
    """Two SQLite connections on one file stand for two portal processes."""
    if kind == "memory":
        shared = MemoryLockoutStore()
        stores: list[Any] = [shared, shared]
    else:
        stores = [SqliteLockoutStore(tmp_path / "shared.db") for _ in range(2)]
    assert_one_block(fifty_guesses_at_once(stores, "am:1", T0))
    assert stores[0].state("am:1", T0).failures == 3


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
    assert decision.allowed is allowed and decision.message
    if key_prefix:
        assert account_key(who).startswith(key_prefix)
    if not allowed:
        assert "CPE transporteur" in decision.message


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
