"""The Redis nonce store against a real redis-server started for the session."""

from __future__ import annotations

import datetime as dt
import functools

import pytest

from cardkit.auth import Challenge, ConsumeResult
from cardkit.auth.redis_store import RedisNonceStore
from tests.auth.conftest import race

pytestmark = pytest.mark.redis


def test_semantics(redis_url: str) -> None:
    store = RedisNonceStore(url=redis_url, prefix="t1:")
    live, old = Challenge.new(), Challenge.new(dt.timedelta(seconds=-1))
    store.issue(live)
    store.issue(old)
    assert store.consume("never") == ConsumeResult.UNKNOWN
    assert store.consume(live.nonce) == ConsumeResult.OK
    assert store.consume(live.nonce) == ConsumeResult.REPLAYED
    assert store.consume(old.nonce) == ConsumeResult.EXPIRED


def test_keys_expire_in_redis(redis_url: str) -> None:
    store = RedisNonceStore(url=redis_url, prefix="t2:")
    challenge = Challenge.new()
    store.issue(challenge)
    ttl = store.client.pttl("t2:" + challenge.nonce)
    assert 0 < ttl <= (5 * 60 + 10 * 60) * 1000


def test_fifty_clients_one_winner(redis_url: str) -> None:
    """Fifty portal instances (one connection each) race for one nonce."""
    challenge = Challenge.new()
    RedisNonceStore(url=redis_url, prefix="t3:").issue(challenge)
    stores = [RedisNonceStore(url=redis_url, prefix="t3:") for _ in range(50)]
    results = race([functools.partial(s.consume, challenge.nonce) for s in stores])
    assert results.count(ConsumeResult.OK) == 1
    assert results.count(ConsumeResult.REPLAYED) == 49


def test_lockout_across_two_portal_instances(redis_url: str) -> None:
    """Two portal processes sharing Redis hold one lockout rule: of 50 concurrent wrong
    passwords spread over both, three are checked and one blocks; a card login on one
    instance unblocks the account on the other at once."""
    import redis

    from cardkit.portal.redis_lockout import RedisLockoutStore
    from tests.unit.test_portal_lib import POLICY, assert_one_block, fifty_guesses_at_once

    now = dt.datetime.now(dt.UTC)
    stores = [
        RedisLockoutStore(redis.Redis.from_url(redis_url), prefix="t:lock:") for _ in range(2)
    ]
    assert_one_block(fifty_guesses_at_once(list(stores), "am:731016879", now))
    assert stores[1].state("am:731016879", now).blocked(now)
    assert stores[0].release("am:731016879", now) is True  # on one instance...
    assert stores[1].reserve("am:731016879", now, POLICY).id is not None  # ...usable on the other
