"""What the bridge and the agent exchange: the service interface and its payloads.

The JSON shapes are the bridge's public contract (documented in its OpenAPI document);
typing them here keeps the agent, the bridge and the Python client on one definition.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, TypedDict

#: The bridge's port on loopback, fixed so that portals find it (overridable per agent).
DEFAULT_PORT = 38470


class CardPayload(TypedDict):
    family: str
    name: str


class ReaderPayload(TypedDict):
    name: str
    card_present: bool
    atr: str | None
    card: CardPayload | None
    busy: bool


class StatusPayload(TypedDict):
    name: str
    version: str
    state: str
    pin_provider: str
    readers: list[ReaderPayload]


class TokenPayload(TypedDict):
    """A ``cardkit:1`` login token (see :class:`cardkit.auth.token.AuthToken`)."""

    format: str
    certificate: str
    algorithm: str
    signature: str
    issued_at: str
    app_version: str


class EventPayload(TypedDict):
    kind: str
    reader: str
    atr: str | None


#: ``VitaleCardData.to_dict(show_nir=True)``: card, valid_from, beneficiaries.
VitalePayload = dict[str, Any]


class BridgeService(Protocol):
    """What the agent provides to the bridge. ``status`` and ``subscribe`` answer at once
    (the bridge calls them on its event loop); the others block, in worker threads.

    Refusals are raised as :class:`cardkit.errors.CardkitError` subclasses; the bridge turns
    them into problem documents with the status and code each class declares.
    """

    def status(self) -> StatusPayload: ...

    def refused(self, origin: str) -> bool:
        """The user refused this origin: it gets nothing but the refusal (not even status)."""
        ...

    def authenticate(self, origin: str, nonce: str, card: str | None) -> TokenPayload: ...

    def read_vitale(self, origin: str, card: str | None) -> VitalePayload: ...

    def subscribe(self) -> asyncio.Queue[EventPayload]: ...

    def unsubscribe(self, queue: asyncio.Queue[EventPayload]) -> None: ...
