"""cardkit.portal's session stores, SQLite and Redis, held to the same rules: ids are made by
the store (a visitor's lives 2 hours, a signed-in one 8), only a stored id opens a session
(anything else gets a fresh one), a save keeps a live session's expiry, a rotation leaves
nothing under the old id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from cardkit.portal.sessions import (
    SESSION_TTL,
    VISITOR_TTL,
    RedisSessions,
    SessionStore,
    SqliteSessions,
    new_id,
    open_session,
    well_formed,
)
from cardkit.sqlite import Database


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[tuple[SessionStore, Any]]:
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


def _expire_soon(sessions: SessionStore, sid: str, seconds: float) -> None:
    if isinstance(sessions, SqliteSessions):
        at = time.time() + seconds
        sessions.db.execute("UPDATE sessions SET expires = ? WHERE id = ?", (at, sid))
    else:
        assert isinstance(sessions, RedisSessions)
        sessions.client.pexpire(sessions.prefix + sid, int(seconds * 1000))


def test_ids_and_what_is_stored(store: tuple[SessionStore, Any]) -> None:
    sessions, left = store
    made_up = new_id()
    assert well_formed(made_up) and not well_formed(made_up + "=")
    assert not well_formed("x" * 500) and not well_formed(None)
    assert sessions.get(made_up) is None and left(made_up) is None
    assert sessions.get("../" + made_up[3:]) is None
    opened = open_session(sessions, made_up)  # never issued: a fresh one, stored
    assert opened.fresh and opened.id != made_up and sessions.get(opened.id) == {}
    assert left(opened.id) == pytest.approx(VISITOR_TTL.total_seconds(), abs=60)
    assert sessions.get(made_up) is None
    again = open_session(sessions, opened.id)
    assert not again.fresh and again.id == opened.id
    sessions.save(opened.id, {"pending": {"door": "cle"}})
    assert sessions.get(opened.id) == {"pending": {"door": "cle"}}
    new = sessions.rotate(opened.id, {"account": 7})
    assert new != opened.id and sessions.get(new) == {"account": 7}
    assert left(new) == pytest.approx(SESSION_TTL.total_seconds(), abs=60)
    assert sessions.get(opened.id) is None and left(opened.id) is None
    sessions.drop(new)
    assert sessions.get(new) is None


def test_save_keeps_a_live_expiry_and_renews_an_expired_one(
    store: tuple[SessionStore, Any],
) -> None:
    sessions, left = store
    sid = sessions.create({"step": 0})
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
        assert left(sid) == pytest.approx(VISITOR_TTL.total_seconds(), abs=60)
