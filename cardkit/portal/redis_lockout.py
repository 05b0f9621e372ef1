"""The lockout store for many portal instances: Redis (imports redis; the ``redis`` extra).

One Lua script counts the failure and sets the block, atomically across every instance.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cardkit.auth.redis_store import redis_client
from cardkit.portal.lockout import LockoutPolicy, LockState

_RECORD = """
local now = tonumber(ARGV[1])
local held = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if held > now then
  return {tonumber(redis.call('HGET', KEYS[1], 'failures')), tostring(held), 0}
end
if held > 0 then redis.call('DEL', KEYS[1]) end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[2]) then
  local blocked = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], 'until', tostring(blocked))
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 1000) + 60000)
  return {failures, tostring(blocked), 1}
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return {failures, '0', 1}
"""

#: Failures short of a block are forgotten after this long without a new one.
FAILURE_MEMORY = dt.timedelta(hours=24)


def _state(failures: Any, until: Any, counted: Any = 1) -> LockState:
    seconds = float(until)
    at = dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else None
    return LockState(int(failures), at, bool(int(counted)))


class RedisLockoutStore:
    def __init__(
        self, client: Any = None, *, url: str | None = None, prefix: str = "cardkit:lockout:"
    ) -> None:
        self.client = redis_client(client, url)
        self.prefix = prefix
        self._record = self.client.register_script(_RECORD)

    def record_failure(self, account: str, now: dt.datetime, policy: LockoutPolicy) -> LockState:
        failures, until, counted = self._record(
            keys=[self.prefix + account],
            args=[
                now.timestamp(),
                policy.max_failures,
                policy.block_for.total_seconds(),
                int(FAILURE_MEMORY.total_seconds() * 1000),
            ],
        )
        return _state(failures, until, counted)

    def state(self, account: str, now: dt.datetime) -> LockState:
        failures, until = self.client.hmget(self.prefix + account, "failures", "until")
        state = _state(failures or 0, until or 0)
        if state.blocked_until is not None and now >= state.blocked_until:
            return LockState(0, None)
        return state

    def clear(self, account: str) -> None:
        self.client.delete(self.prefix + account)

    def release(self, account: str, now: dt.datetime) -> bool:
        pipe = self.client.pipeline()  # MULTI/EXEC: read and delete as one step
        pipe.hget(self.prefix + account, "until")
        pipe.delete(self.prefix + account)
        until, _ = pipe.execute()
        return bool(until) and now.timestamp() < float(until)
