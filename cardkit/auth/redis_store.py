"""The nonce store for many portal instances: Redis (the only module importing redis).

One key per nonce, which Redis expires some minutes after the challenge does; consume is one
``SET key used XX GET`` (Redis 6.2+), so of concurrent consumers across all instances exactly
one sees the original value, and the others see "used".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import redis

from cardkit.auth.challenge import Challenge, ConsumeResult

GRACE = dt.timedelta(minutes=10)  # kept past expiry, to answer "expired"/"replayed"
USED = b"used"
DEFAULT_URL = "redis://127.0.0.1:6379/0"


def redis_client(client: Any = None, url: str | None = None) -> Any:
    """The client a store was given, else one for ``url`` (a local Redis by default)."""
    return client if client is not None else redis.Redis.from_url(url or DEFAULT_URL)


class RedisNonceStore:
    def __init__(
        self, client: Any = None, *, url: str | None = None, prefix: str = "cardkit:nonce:"
    ) -> None:
        self.client = redis_client(client, url)
        self.prefix = prefix

    def issue(self, challenge: Challenge) -> None:
        ttl = challenge.expires_at - dt.datetime.now(dt.UTC) + GRACE
        self.client.set(
            self.prefix + challenge.nonce,
            str(challenge.expires_at.timestamp()),
            px=max(1, int(ttl.total_seconds() * 1000)),
        )

    def consume(self, nonce: str) -> str:
        # SET ... XX GET: replace an existing value and return the old one, atomically.
        value = self.client.set(self.prefix + nonce, USED, xx=True, get=True, keepttl=True)
        if value is None:
            return ConsumeResult.UNKNOWN
        if value == USED:
            return ConsumeResult.REPLAYED
        expires = float(value)
        return (
            ConsumeResult.EXPIRED
            if dt.datetime.now(dt.UTC).timestamp() >= expires
            else ConsumeResult.OK
        )

    def claim(self, nonce: str, expires_at: dt.datetime) -> bool:
        ttl = expires_at - dt.datetime.now(dt.UTC) + GRACE
        done = self.client.set(
            self.prefix + nonce, USED, nx=True, px=max(1, int(ttl.total_seconds() * 1000))
        )
        return bool(done)

    def purge_expired(self) -> int:
        return 0  # Redis expires keys itself
