"""CPS login challenges bound to the browser session that asked for them.

A token signed in one browser (over the nonce that browser's session was given) can only be
consumed in that session. A page that posts a token fetched elsewhere (login CSRF: logging
the victim into the attacker's account) gets ``nonce_unknown``: that nonce was never issued
to this session.

Two ways to bind, same guarantee:

- :class:`SessionNonces`: the nonce is stored under a key that includes the session id
  (one write to issue, one to consume);
- :class:`LoginChallenges`: the nonce carries its own proof, ``random || expiry ||
  HMAC(secret, session id || random || expiry)``, so issuing it writes nothing; using it
  checks the MAC and the expiry, then *claims* it in the store, once (one write per login,
  not two, and no row for the challenges of visitors who never log in). Portal processes
  that share sessions share the secret.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import struct

from cardkit.auth.challenge import DEFAULT_TTL, Challenge, ConsumeResult, NonceStore
from cardkit.auth.validator import Professional, Validator

SEPARATOR = "|"
RANDOM_BYTES = 32
MAC_BYTES = 16
_EXPIRY = struct.Struct(">Q")  # seconds since the epoch


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

    def claim(self, nonce: str, expires_at: dt.datetime) -> bool:
        return self.store.claim(self.prefix + nonce, expires_at)

    def purge_expired(self) -> int:
        return self.store.purge_expired()


class _SignedNonces:
    """What the validator consumes from: a signed nonce of one session, claimed once."""

    def __init__(self, challenges: LoginChallenges, session_id: str) -> None:
        self.challenges = challenges
        self.session_id = session_id

    def issue(self, challenge: Challenge) -> None:
        raise TypeError("signed challenges are issued by LoginChallenges.issue")

    def consume(self, nonce: str) -> str:
        expires = self.challenges.verify(self.session_id, nonce)
        if expires is None:
            return ConsumeResult.UNKNOWN
        if dt.datetime.now(dt.UTC) >= expires:
            return ConsumeResult.EXPIRED
        claimed = self.challenges.store.claim(nonce, expires)
        return ConsumeResult.OK if claimed else ConsumeResult.REPLAYED

    def claim(self, nonce: str, expires_at: dt.datetime) -> bool:
        return self.challenges.store.claim(nonce, expires_at)

    def purge_expired(self) -> int:
        return self.challenges.store.purge_expired()


class LoginChallenges:
    """What a portal's two endpoints call: a challenge for the page, then the token back.

    ``secret`` (32 bytes or more) signs the nonces; processes serving one portal must share
    it. Without one, a random secret: right for a single process, and a restart voids the
    challenges in flight (they live 5 minutes).
    """

    def __init__(
        self, store: NonceStore, validator: Validator, origin: str, secret: bytes | None = None
    ) -> None:
        if secret is not None and len(secret) < 32:
            raise ValueError("the challenge secret has at least 32 bytes")
        self.store = store
        self.validator = validator
        self.origin = origin
        self._secret = secret or secrets.token_bytes(32)

    def _mac(self, session_id: str, body: bytes) -> bytes:
        message = session_id.encode() + SEPARATOR.encode() + body
        return hmac.digest(self._secret, message, hashlib.sha256)[:MAC_BYTES]

    def issue(self, session_id: str, ttl: dt.timedelta = DEFAULT_TTL) -> Challenge:
        expires = dt.datetime.now(dt.UTC) + ttl
        body = secrets.token_bytes(RANDOM_BYTES) + _EXPIRY.pack(int(expires.timestamp()))
        raw = body + self._mac(session_id, body)
        nonce = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        return Challenge(nonce, dt.datetime.fromtimestamp(int(expires.timestamp()), dt.UTC))

    def verify(self, session_id: str, nonce: str) -> dt.datetime | None:
        """The nonce's expiry if this portal issued it to this session, else None."""
        if len(nonce) > 128:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return None
        size = RANDOM_BYTES + _EXPIRY.size
        if len(raw) != size + MAC_BYTES:
            return None
        body, mac = raw[:size], raw[size:]
        if not hmac.compare_digest(mac, self._mac(session_id, body)):
            return None
        (seconds,) = _EXPIRY.unpack(body[RANDOM_BYTES:])
        return dt.datetime.fromtimestamp(seconds, dt.UTC)

    def login(self, session_id: str, token: str | bytes, nonce: str) -> Professional:
        """The professional the token proves, for this session only, at this portal's own
        origin (never one the page claims); :class:`TokenRejected` otherwise."""
        return self.validator.validate(token, self.origin, nonce, _SignedNonces(self, session_id))
