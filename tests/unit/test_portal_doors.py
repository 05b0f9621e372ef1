"""cardkit.portal's doors under attack: bursts of guesses, unknown identifiers, a success
racing a block. Each attack is reproduced with the order of events forced (a hasher that
holds the checks it is given), so that what is asserted holds in every interleaving."""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cardkit.auth import RevocationPolicy, Validator, ValidatorConfig
from cardkit.portal import (
    Blocked,
    Doors,
    EventKind,
    LockoutPolicy,
    MemoryLockoutStore,
    PasswordHasher,
    Refused,
    SignedIn,
    Stores,
)
from cardkit.portal.sessions import open_session
from mocks import pki

ORIGIN = "https://portail.example"
PASSWORD = "Bon-Mot-2026!"


class GatedHasher(PasswordHasher):
    """Argon2 at its smallest, counting checks; checks of a ``held`` password wait for
    :meth:`release`, so a test decides when they end."""

    def __init__(self) -> None:
        super().__init__(memory_cost=256, time_cost=1)
        self.checks = 0
        self.in_check = 0
        self.held: set[str] = set()
        self.gate = threading.Event()
        self.lock = threading.Lock()

    def verify(self, stored: str, password: str) -> bool:
        with self.lock:
            self.checks += 1
            self.in_check += 1
        try:
            if password in self.held:
                assert self.gate.wait(30), "the test never released the held checks"
            return super().verify(stored, password)
        finally:
            with self.lock:
                self.in_check -= 1

    def release(self) -> None:
        self.gate.set()

    def wait_checking(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while self.in_check < count:
            assert time.monotonic() < deadline, f"{self.in_check} checks running, not {count}"
            time.sleep(0.005)


def validator() -> Validator:
    return Validator(
        ValidatorConfig(pki.trust_anchors(), pki.intermediates(), revocation=RevocationPolicy.OFF)
    )


@pytest.fixture(params=["sqlite", "memory", "redis"])
def doors(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Doors]]:
    """make(**policy) -> Doors on one kind of lockout store, an account "731016879" with
    PASSWORD, and a GatedHasher (``doors.hasher``)."""
    made: list[Stores] = []

    def make(**policy: Any) -> Doors:
        stores = Stores.open(str(tmp_path / f"portal-{len(made)}.db"))
        if request.param == "memory":
            stores.lockout = MemoryLockoutStore()
        elif request.param == "redis":
            from cardkit.portal.redis_lockout import RedisLockoutStore

            url = request.getfixturevalue("redis_url")
            stores.lockout = RedisLockoutStore(url=url, prefix=f"test:{time.time_ns()}:")
        made.append(stores)
        hasher = GatedHasher()
        built = Doors(
            stores,
            origin=ORIGIN,
            validator=validator(),
            lockout=LockoutPolicy(**policy),
            hasher=hasher,
        )
        stores.accounts.create(
            kind="ps",
            display_name="CLAIRE LEFEBVRE",
            email="claire@cabinet.example",
            email_verified=True,
            am_number="731016879",
            password_hash=hasher.hash(PASSWORD),
        )
        return built

    if request.param == "redis":
        request.applymarker(pytest.mark.redis)
    yield make
    for stores in made:
        stores.db.close()


def attempt(doors: Doors, password: str, identifier: str = "731016879") -> Any:
    session = open_session(doors.stores.sessions, None)
    return doors.password.login(session, identifier, password)


def in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Every call at once (released by one barrier), in call order."""
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def blocks_journaled(doors: Doors, key: str) -> int:
    return sum(e.kind is EventKind.ACCOUNT_BLOCKED for e in doors.stores.journal.latest(key, 500))


def test_burst_of_200_guesses_checks_three_and_signs_nobody_in(
    doors: Callable[..., Doors],
) -> None:
    """Three wrong guesses are being checked when 197 more arrive, the right password among
    them: none of those is checked, all are answered "blocked"; the three end in one block,
    journaled once; the right password, tried again, is still refused unchecked."""
    portal = doors()
    hasher = portal.hasher
    assert isinstance(hasher, GatedHasher)
    hasher.held = {f"Faux-{i}!" for i in range(199)}
    first = [threading.Thread(target=attempt, args=(portal, f"Faux-{i}!")) for i in range(3)]
    for t in first:
        t.start()
    hasher.wait_checking(3)
    guesses = [f"Faux-{i}!" for i in range(3, 199)]
    guesses.insert(100, PASSWORD)
    burst = in_threads([functools.partial(attempt, portal, g) for g in guesses])
    assert all(isinstance(o, Blocked) for o in burst), {type(o).__name__ for o in burst}
    assert hasher.checks == 3  # nothing of the burst reached the hash
    hasher.release()
    for t in first:
        t.join(30)
    assert hasher.checks == 3
    assert portal.lockout.state("1").failures == 3
    assert blocks_journaled(portal, "1") == 1
    again = attempt(portal, PASSWORD)
    assert isinstance(again, Blocked) and again.minutes_left == 30
    assert hasher.checks == 3
    assert not any(
        e.kind is EventKind.PASSWORD_LOGIN for e in portal.stores.journal.latest("1", 500)
    )


def test_concurrent_burst_holds_in_any_order(doors: Callable[..., Doors]) -> None:
    """200 guesses released together, nothing forced: whatever the order, at most three
    wrong passwords are checked per block (and the right one, when it got a place among the
    first); a block is journaled at most once; nobody signs in once it is reached."""
    portal = doors()
    guesses = [f"Faux-{i}!" for i in range(199)]
    guesses.insert(150, PASSWORD)
    outcomes = in_threads([functools.partial(attempt, portal, g) for g in guesses])
    hasher = portal.hasher
    assert isinstance(hasher, GatedHasher)
    signed_in = sum(isinstance(o, SignedIn) for o in outcomes)
    journal = portal.stores.journal.latest("1", 500)[::-1]  # oldest first
    kinds = [e.kind for e in journal]
    assert signed_in <= 1 and kinds.count(EventKind.ACCOUNT_BLOCKED) <= 1
    assert hasher.checks <= 3 + signed_in
    if EventKind.ACCOUNT_BLOCKED in kinds:
        assert portal.lockout.state("1").failures == 3
        assert EventKind.PASSWORD_LOGIN not in kinds[kinds.index(EventKind.ACCOUNT_BLOCKED) :]
    else:
        assert signed_in == 1  # no block: the right password was among the first checked


def test_a_success_commits_only_if_still_unblocked(doors: Callable[..., Doors]) -> None:
    """The right password's check outlives its reservation (a process stalled); meanwhile
    three wrong ones block the account: the right one, when it ends, is refused."""
    portal = doors(reservation_ttl=dt.timedelta(milliseconds=200))
    hasher = portal.hasher
    assert isinstance(hasher, GatedHasher)
    hasher.held = {PASSWORD}
    right: list[Any] = []
    thread = threading.Thread(target=lambda: right.append(attempt(portal, PASSWORD)))
    thread.start()
    hasher.wait_checking(1)
    time.sleep(0.3)  # its reservation has expired: three places are free again
    for i in range(3):
        attempt(portal, f"Faux-{i}!")
    hasher.release()
    thread.join(30)
    assert isinstance(right[0], Blocked)
    assert blocks_journaled(portal, "1") == 1


def test_unknown_identifiers_are_answered_like_accounts(doors: Callable[..., Doors]) -> None:
    """The same answers, in the same order, for an account and for an identifier nobody
    has, and one hash per attempt for both (the block message tells nobody who exists)."""
    portal = doors()
    hasher = portal.hasher
    assert isinstance(hasher, GatedHasher)
    for identifier in ("731016879", "999999999", "personne@nulle.example"):
        checks = hasher.checks
        answers = [attempt(portal, "Faux-2026!", identifier) for _ in range(4)]
        assert [type(a) for a in answers] == [Refused, Refused, Blocked, Blocked], identifier
        assert [a.message for a in answers[:2]] == ["Identifiant ou mot de passe incorrect."] * 2
        assert answers[2].message == answers[3].message
        assert "Votre compte est bloqué" in answers[2].message
        assert hasher.checks - checks == 3  # the blocked answer costs no hash
    # What the store keeps of an unknown identifier is a keyed hash, not what was typed.
    if isinstance(portal.stores.lockout, MemoryLockoutStore):
        return
    rows = str(portal.stores.db.all("SELECT * FROM lockout"))
    assert "personne" not in rows and "999999999" not in rows


def test_three_wrong_then_a_card_login_unblocks(doors: Callable[..., Doors]) -> None:
    from cardkit.auth import create_token
    from mocks.tokens import rsa_signer

    portal = doors()
    portal.stores.db.execute("UPDATE accounts SET card_key = 'RPPS:99700075122'")
    for _ in range(3):
        attempt(portal, "Faux-2026!")
    assert isinstance(attempt(portal, PASSWORD), Blocked)
    session = open_session(portal.stores.sessions, None)
    challenge = portal.challenge(session.id)
    key, cert = pki.card_credentials("cps-doctor", "auth")
    token = create_token(rsa_signer(key), cert, ORIGIN, challenge.nonce).to_json()
    assert isinstance(portal.card.login(session, token, challenge.nonce), SignedIn)
    assert isinstance(attempt(portal, PASSWORD), SignedIn)
    kinds = [e.kind for e in portal.stores.journal.latest("1")]
    assert EventKind.UNBLOCKED_BY_CARD in kinds and kinds.count(EventKind.ACCOUNT_BLOCKED) == 1


def test_a_burst_of_postal_requests_sends_one_letter(doors: Callable[..., Doors]) -> None:
    """Twenty requests for the same number at once: one letter, one temporary password
    (the number's request record and the letter are one transaction)."""
    from cardkit.portal import Dossier, LetterRequested
    from cardkit.portal.outbox import Channel

    portal = doors()
    portal.stores.insurer.add(
        Dossier("753456789", "PAUL GIRARD", "masseur-kinesitherapeute", None, None, "Lyon")
    )
    answers = in_threads([functools.partial(portal.enrolment.by_post, "753456789")] * 20)
    assert all(isinstance(a, LetterRequested) for a in answers)
    assert len(portal.stores.outbox.latest(Channel.POST)) == 1
    assert len(portal.stores.accounts.by_identifier("753456789")) == 1
