"""CPS login challenges bound to the browser session that asked for them.

The nonce is kept in the store under a key that includes the session id: a token signed in
one browser (over the nonce that browser's session was given) can only be consumed in that
session. A page that posts a token fetched elsewhere (login CSRF: logging the victim into
the attacker's account) gets ``nonce_unknown``: that nonce was never issued to this session.
"""

from __future__ import annotations

import datetime as dt

from cardkit.auth.challenge import DEFAULT_TTL, Challenge, NonceStore
from cardkit.auth.validator import Professional, Validator

SEPARATOR = "|"


class SessionNonces:
    """A view of a nonce store where every nonce belongs to one session."""

    def __init__(self, store: NonceStore, session_id: str) -> None:
        if not session_id or SEPARATOR in session_id:
            raise ValueError("a session id is a non-empty string without '|'")
        self.store = store
        self.prefix = session_id + SEPARATOR

    def issue(self, challenge: Challenge) -> None:
        self.store.issue(Challenge(self.prefix + challenge.nonce, challenge.expires_at))

    def consume(self, nonce: str) -> str:
        return self.store.consume(self.prefix + nonce)

    def purge_expired(self) -> int:
        return self.store.purge_expired()


class LoginChallenges:
    """What a portal's two endpoints call: a challenge for the page, then the token back."""

    def __init__(self, store: NonceStore, validator: Validator, origin: str) -> None:
        self.store = store
        self.validator = validator
        self.origin = origin

    def issue(self, session_id: str, ttl: dt.timedelta = DEFAULT_TTL) -> Challenge:
        challenge = Challenge.new(ttl)
        SessionNonces(self.store, session_id).issue(challenge)
        return challenge

    def login(self, session_id: str, token: str | bytes, nonce: str) -> Professional:
        """The professional the token proves, for this session only, at this portal's own
        origin (never one the page claims); :class:`TokenRejected` otherwise."""
        return self.validator.validate(
            token, self.origin, nonce, SessionNonces(self.store, session_id)
        )
