"""What the mock PSC provider remembers between requests: authorization codes (each taken
once), access and refresh tokens, the card-login challenges, and its signing keys. In
memory for one process, or in Redis so that several provider processes serve one login (the
authorization on one, the token request on another), as a provider behind a load balancer
does.

Records are JSON (never pickled from a shared store); a code is *taken* (``GETDEL``), so two
token requests racing with the same code cannot both get one.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Protocol

from joserfc.jwk import RSAKey

from cardkit.auth import MemoryNonceStore, NonceStore, Professional
from cardkit.identity import CardType, IdentifierType


def professional_to_dict(who: Professional) -> dict[str, Any]:
    return {**who.to_dict(), "certificate_sha256": who.certificate_sha256}


def professional_from_dict(data: dict[str, Any]) -> Professional:
    return Professional(
        card_type=CardType(data["card_type"]),
        identifier_type=IdentifierType(data["identifier_type"]),
        identifier=data["identifier"],
        national_id=data["national_id"],
        surname=data.get("surname"),
        given_name=data.get("given_name"),
        profession=data.get("profession"),
        structure=data.get("structure"),
        structure_id=data.get("structure_id"),
        certificate_sha256=data.get("certificate_sha256", ""),
    )


def new_key() -> RSAKey:
    return RSAKey.generate_key(2048, {"use": "sig", "alg": "RS256"}, auto_kid=True)


class State(Protocol):
    challenges: NonceStore

    def put(self, kind: str, name: str, record: dict[str, Any], ttl: float) -> None: ...

    def get(self, kind: str, name: str) -> dict[str, Any] | None: ...

    def take(self, kind: str, name: str) -> dict[str, Any] | None:
        """The record, removed in the same step (a code serves once)."""
        ...

    def drop(self, kind: str, name: str) -> None: ...

    def keys(self) -> list[RSAKey]:
        """The signing keys, oldest first; the newest signs."""
        ...

    def rotate(self) -> None: ...


class MemoryState:
    def __init__(self) -> None:
        self.challenges: NonceStore = MemoryNonceStore()
        self._records: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._keys = [new_key()]
        self._lock = threading.Lock()

    def put(self, kind: str, name: str, record: dict[str, Any], ttl: float) -> None:
        with self._lock:
            self._records[(kind, name)] = (time.time() + ttl, record)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._records.get((kind, name))
        return found[1] if found and found[0] > time.time() else None

    def take(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._records.pop((kind, name), None)
        return found[1] if found and found[0] > time.time() else None

    def drop(self, kind: str, name: str) -> None:
        with self._lock:
            self._records.pop((kind, name), None)

    def keys(self) -> list[RSAKey]:
        return list(self._keys)

    def rotate(self) -> None:
        with self._lock:
            self._keys = [self._keys[-1], new_key()]


class RedisState:
    """The same in Redis: records under ``psc:<kind>:<name>`` with their lifetime, keys as
    private JWKs under ``psc:keys`` (made once, by whichever process starts first)."""

    PREFIX = "psc:"

    def __init__(self, url: str) -> None:
        from cardkit.auth.redis_store import RedisNonceStore, redis_client

        self.client = redis_client(None, url)
        self.challenges: NonceStore = RedisNonceStore(
            self.client, prefix=self.PREFIX + "challenge:"
        )
        self._raw_keys: Any = None
        self._keys: list[RSAKey] = []
        first = json.dumps([new_key().as_dict(private=True)])
        self.client.set(self.PREFIX + "keys", first, nx=True)

    def _name(self, kind: str, name: str) -> str:
        return f"{self.PREFIX}{kind}:{name}"

    def put(self, kind: str, name: str, record: dict[str, Any], ttl: float) -> None:
        self.client.set(self._name(kind, name), json.dumps(record), px=max(1, int(ttl * 1000)))

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        raw = self.client.get(self._name(kind, name))
        return None if raw is None else dict(json.loads(raw))

    def take(self, kind: str, name: str) -> dict[str, Any] | None:
        raw = self.client.getdel(self._name(kind, name))
        return None if raw is None else dict(json.loads(raw))

    def drop(self, kind: str, name: str) -> None:
        self.client.delete(self._name(kind, name))

    def keys(self) -> list[RSAKey]:
        """Read at each use (another process may rotate them), parsed only when they
        changed: every token signed asks for them."""
        raw = self.client.get(self.PREFIX + "keys")
        if raw != self._raw_keys:
            self._keys = [RSAKey.import_key(k) for k in json.loads(raw)]
            self._raw_keys = raw
        return list(self._keys)

    def rotate(self) -> None:
        current = self.keys()[-1]
        keys = [current.as_dict(private=True), new_key().as_dict(private=True)]
        self.client.set(self.PREFIX + "keys", json.dumps(keys))
