"""The lockout store for many portal instances: Redis (imports redis; the ``redis`` extra).

Each step is one Lua script, atomic across every instance: a reservation (refused while
blocked or while failures and attempts in flight reach the maximum) and its settlement (the
failure counted and the block set, or the failures forgotten if still unblocked). The
account's state is a hash and its attempts in flight a sorted set scored by expiry; both
keys share a hash tag, so they live on one node of a cluster.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from cardkit.auth.redis_store import redis_client
from cardkit.portal.lockout import CLEAR, LockoutPolicy, LockState, Outcome, Reserved, Settled

_RESERVE = """
local now = tonumber(ARGV[1])
local held = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if held > now then return {0, tostring(held)} end
if held > 0 then redis.call('DEL', KEYS[1]) end
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if failures + redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  return {0, tostring(now + tonumber(ARGV[3]))}
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[5])
redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[4]) * 1000) + 1000)
return {1, '0'}
"""

_SETTLE = """
local now = tonumber(ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[4])
local held = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if held > 0 and held <= now then
  redis.call('DEL', KEYS[1])
  held = 0
end
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if held > now then return {failures, tostring(held), 0, 0} end
if ARGV[5] == 'wrong' then
  failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= tonumber(ARGV[2]) then
    local blocked = now + tonumber(ARGV[3])
    redis.call('HSET', KEYS[1], 'until', tostring(blocked))
    redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 1000) + 60000)
    return {failures, tostring(blocked), 1, 0}
  end
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[6]))
  return {failures, '0', 0, 0}
end
if ARGV[5] == 'right' then
  redis.call('DEL', KEYS[1])
  return {0, '0', 0, 1}
end
return {failures, '0', 0, 0}
"""

#: Failures short of a block are forgotten after this long without a new one.
FAILURE_MEMORY = dt.timedelta(hours=24)


def _at(seconds: Any) -> dt.datetime | None:
    value = float(seconds)
    return dt.datetime.fromtimestamp(value, dt.UTC) if value else None


class RedisLockoutStore:
    def __init__(
        self, client: Any = None, *, url: str | None = None, prefix: str = "cardkit:lockout:"
    ) -> None:
        self.client = redis_client(client, url)
        self.prefix = prefix
        self._reserve = self.client.register_script(_RESERVE)
        self._settle = self.client.register_script(_SETTLE)

    def _keys(self, key: str) -> list[str]:
        base = f"{self.prefix}{{{key}}}"
        return [base, base + ":attempts"]

    def reserve(self, key: str, now: dt.datetime, policy: LockoutPolicy) -> Reserved:
        reservation = secrets.token_hex(8)
        granted, until = self._reserve(
            keys=self._keys(key),
            args=[
                now.timestamp(),
                policy.max_failures,
                policy.block_for.total_seconds(),
                policy.reservation_ttl.total_seconds(),
                reservation,
            ],
        )
        return Reserved(reservation) if int(granted) else Reserved(None, _at(until))

    def settle(
        self, key: str, reservation: str, outcome: Outcome, now: dt.datetime, policy: LockoutPolicy
    ) -> Settled:
        failures, until, blocked_now, accepted = self._settle(
            keys=self._keys(key),
            args=[
                now.timestamp(),
                policy.max_failures,
                policy.block_for.total_seconds(),
                reservation,
                outcome.value,
                int(FAILURE_MEMORY.total_seconds() * 1000),
            ],
        )
        state = LockState(int(failures), _at(until))
        return Settled(state, blocked_now=bool(int(blocked_now)), accepted=bool(int(accepted)))

    def state(self, key: str, now: dt.datetime) -> LockState:
        failures, until = self.client.hmget(self._keys(key)[0], "failures", "until")
        state = LockState(int(failures or 0), _at(until or 0))
        if state.blocked_until is not None and now >= state.blocked_until:
            return CLEAR
        return state

    def release(self, key: str, now: dt.datetime) -> bool:
        pipe = self.client.pipeline()  # MULTI/EXEC: read and delete as one step
        pipe.hget(self._keys(key)[0], "until")
        pipe.delete(self._keys(key)[0])
        until, _ = pipe.execute()
        return bool(until) and now.timestamp() < float(until)
