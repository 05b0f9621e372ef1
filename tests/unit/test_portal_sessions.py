"""The mock portal's session stores, SQLite and Redis, held to the same rules: an id is stored
only when saved or rotated to, a save keeps a live session's expiry and gives a new or
expired one the full lifetime, a rotation leaves nothing under the old id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from cardkit.sqlite import Database
from mocks.portal.sessions import (
    SESSION_TTL,
    RedisSessions,
    Sessions,
    SqliteSessions,
    new_id,
    well_formed,
)


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[tuple[Sessions, Any]]:
    """(the store, a function giving a session's seconds left, or None when absent)."""
    if request.param == "sqlite":
        sessions = SqliteSessions(Database())

        def left_sqlite(sid: str) -> float | None:
            row = sessions.db.one("SELECT expires FROM sessions WHERE id = ?", (sid,))
            return None if row is None else row[0] - time.time()

        yield sessions, left_sqlite
        return
    request.applymarker(pytest.mark.redis)
    import redis

    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    prefix = f"test:{new_id()}:"
    redis_sessions = RedisSessions(client, prefix=prefix)

    def left_redis(sid: str) -> float | None:
        ms = client.pttl(prefix + sid)
        return None if ms < 0 else ms / 1000

    yield redis_sessions, left_redis
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)


def _expire_soon(sessions: Sessions, sid: str, seconds: float) -> None:
    if isinstance(sessions, SqliteSessions):
        at = time.time() + seconds
        sessions.db.execute("UPDATE sessions SET expires = ? WHERE id = ?", (at, sid))
    else:
        assert isinstance(sessions, RedisSessions)
        sessions.client.pexpire(sessions.prefix + sid, int(seconds * 1000))


def test_ids_and_what_is_stored(store: tuple[Sessions, Any]) -> None:
    sessions, left = store
    sid = new_id()
    assert well_formed(sid) and not well_formed(sid + "=") and not well_formed("x" * 500)
    assert sessions.get(sid) is None and left(sid) is None  # a visitor's id: nothing stored
    assert sessions.get("../" + sid[3:]) is None
    sessions.save(sid, {"pending": {"door": "cle"}})
    assert sessions.get(sid) == {"pending": {"door": "cle"}}
    assert left(sid) == pytest.approx(SESSION_TTL.total_seconds(), abs=60)
    new = sessions.rotate(sid, {"account": 7})
    assert new != sid and sessions.get(new) == {"account": 7}
    assert sessions.get(sid) is None and left(sid) is None
    sessions.drop(new)
    assert sessions.get(new) is None


def test_save_keeps_a_live_expiry_and_renews_an_expired_one(store: tuple[Sessions, Any]) -> None:
    sessions, left = store
    sid = new_id()
    sessions.save(sid, {"step": 1})
    _expire_soon(sessions, sid, 600)
    sessions.save(sid, {"step": 2})
    assert sessions.get(sid) == {"step": 2}
    remaining = left(sid)
    assert remaining is not None and remaining < 601  # not pushed back by the save
    if isinstance(sessions, SqliteSessions):  # Redis forgets an expired key by itself
        _expire_soon(sessions, sid, -1)
        assert sessions.get(sid) is None
        sessions.save(sid, {"step": 3})
        assert sessions.get(sid) == {"step": 3}
        assert left(sid) == pytest.approx(SESSION_TTL.total_seconds(), abs=60)
