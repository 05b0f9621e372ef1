"""The bridge's contract, in one place: its endpoint table, the JSON shapes of requests and
answers, and the service the agent provides.

Routes (:mod:`cardkit.pcsc_bridge.app`), the OpenAPI document
(:mod:`cardkit.pcsc_bridge.openapi`), the Python client (:mod:`cardkit.pcsc_bridge.client`)
and the control channel's reach (:mod:`cardkit.pcsc_bridge.security`) are all built from
:data:`ENDPOINTS`. Adding an endpoint is a row here, the agent's method of the same name, and
their tests; the browser client (``client.js``) is checked against the table by a test.
"""

from __future__ import annotations

import asyncio
import functools
import re
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, NotRequired, Protocol, TypedDict

#: The bridge's port on loopback, fixed so that portals find it (overridable per agent).
DEFAULT_PORT = 38470


@dataclass(frozen=True)
class Text:
    """Bounds of a string field (``Annotated[str, Text(1, 200)]``): checked on every
    request, stated in the OpenAPI document."""

    min_length: int = 0
    max_length: int | None = None
    #: A regular expression the whole string must match.
    pattern: str | None = None
    #: The problem code of a string that does not fit (the domain's, where it has one).
    error: str = "bad_request"

    def admits(self, value: str) -> bool:
        too_long = self.max_length is not None and len(value) > self.max_length
        fits = self.pattern is None or re.fullmatch(self.pattern, value) is not None
        return self.min_length <= len(value) and not too_long and fits


Reader = Annotated[str, Text(1, 200)]


# --- requests ---


#: The token formats ``/v1/auth`` makes: cardkit's own, and Web eID's.
TOKEN_FORMATS = ("cardkit:1", "web-eid:1.0")
#: A challenge as either format's portal issues it: base64url (cardkit) or base64 (Web eID).
CHALLENGE_PATTERN = r"[A-Za-z0-9+/=_-]{43,256}"


class AuthRequest(TypedDict):
    #: The portal's challenge: 32 random bytes or more, in base64url (``cardkit:1``) or
    #: base64 (``web-eid:1.0``, 44 to 128 characters); each format checks its own.
    nonce: Annotated[str, Text(43, 256, CHALLENGE_PATTERN, "nonce_invalid")]
    card: NotRequired[Reader]  # the reader holding the card (several cards inserted)
    #: ``cardkit:1`` (the default) or ``web-eid:1.0``.
    format: NotRequired[Annotated[str, Text(1, 20, "cardkit:1|web-eid:1\\.0")]]


class CardRequest(TypedDict):
    card: NotRequired[Reader]


# --- answers ---


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


class VersionPayload(TypedDict):
    name: str
    version: str


class TokenPayload(TypedDict):
    """A ``cardkit:1`` login token (see :class:`cardkit.auth.token.AuthToken`)."""

    format: str
    certificate: str
    algorithm: str
    signature: str
    issued_at: str
    app_version: str


class WebEidTokenPayload(TypedDict):
    """A ``web-eid:1.0`` login token (see :mod:`cardkit.auth.webeid`), field for field what
    Web eID's own app returns."""

    unverifiedCertificate: str
    algorithm: str
    signature: str
    format: str
    appVersion: str


class InsurancePayload(TypedDict):
    scheme: str | None
    caisse: str | None
    centre: str | None


class BeneficiaryPayload(TypedDict):
    surname: str
    first_name: str
    birth_date: str | None  # YYYYMMDD as on the card (not always a calendar date)
    insured: bool
    nir: str | None
    nir_masked: str
    nationality: str | None
    insurance: InsurancePayload | None


class VitalePayload(TypedDict):
    """``VitaleCardData.to_dict(show_nir=True)``."""

    card: str
    valid_from: str | None
    beneficiaries: list[BeneficiaryPayload]


class EventPayload(TypedDict):
    kind: str
    reader: str
    atr: str | None


# --- the table ---


class Kind(Enum):
    #: Answered at once, on the event loop (from the agent's snapshot).
    QUICK = "quick"
    #: Card work: blocks (a PIN typed, a card read), in a worker thread, with a time limit.
    CARD = "card"
    #: Server-sent events (the service's ``subscribe``/``unsubscribe``).
    EVENTS = "events"


@dataclass(frozen=True)
class Endpoint:
    #: The agent's method that answers it, and the Python client's.
    name: str
    method: str
    path: str
    summary: str
    kind: Kind
    #: The JSON body's fields (a TypedDict), or None: no body.
    request: type | None = None
    #: The answer (a TypedDict), or the event a stream sends.
    response: Any = None
    #: The HTTP statuses of its refusals (problem documents), besides the front door's.
    errors: tuple[int, ...] = ()
    #: What the person is asked to allow for this site (an action of the consent store).
    consent: str | None = None
    #: Also open to the control channel: local tools of the agent's own user.
    control: bool = False


CARD_ERRORS = (400, 401, 403, 409, 423, 429, 502, 503, 504)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "status",
        "GET",
        "/v1/status",
        "Agent version, state, PIN provider, readers and cards",
        Kind.QUICK,
        response=StatusPayload,
        errors=(403,),
        control=True,
    ),
    Endpoint(
        "version",
        "GET",
        "/v1/version",
        "Agent name and version",
        Kind.QUICK,
        response=VersionPayload,
        errors=(403,),
        control=True,
    ),
    Endpoint(
        "events",
        "GET",
        "/v1/events",
        "Server-sent events of reader and card changes",
        Kind.EVENTS,
        response=EventPayload,
        errors=(403, 503),
    ),
    Endpoint(
        "authenticate",
        "POST",
        "/v1/auth",
        "The login token (cardkit:1, or web-eid:1.0 with format) of the inserted CPS/CPE for "
        "the request's origin (the agent asks the PIN; it never travels over HTTP)",
        Kind.CARD,
        request=AuthRequest,
        response=TokenPayload | WebEidTokenPayload,
        errors=CARD_ERRORS,
        consent="identify",
    ),
    Endpoint(
        "read_vitale",
        "POST",
        "/v1/vitale/read",
        "The people on the inserted Vitale card, with their NIRs",
        Kind.CARD,
        request=CardRequest,
        response=VitalePayload,
        errors=CARD_ERRORS,
        consent="read_vitale",
    ),
)


@dataclass(frozen=True)
class Field:
    name: str
    hint: Any  # NotRequired[...] removed, Annotated[...] kept
    required: bool
    #: The bounds its :class:`Text` mark sets (none: any string).
    bounds: Text = Text()


@functools.cache
def fields_of(kind: type) -> tuple[Field, ...]:
    """A TypedDict's fields in order, read once per TypedDict (the bridge checks every
    request against them). Whether a field is required is read from its own hint
    (``NotRequired[...]``): with postponed annotations, ``__required_keys__`` cannot see it
    on Python 3.11."""
    out = []
    for name, hint in typing.get_type_hints(kind, include_extras=True).items():
        optional = typing.get_origin(hint) is NotRequired
        own = typing.get_args(hint)[0] if optional else hint
        marks = getattr(own, "__metadata__", ())
        bounds = next((m for m in marks if isinstance(m, Text)), Text())
        out.append(Field(name, own, not optional, bounds))
    return tuple(out)


def endpoint(name: str, endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> Endpoint:
    return next(e for e in endpoints if e.name == name)


class BridgeService(Protocol):
    """What the agent provides to the bridge: one method per endpoint of the table, named
    after it. ``QUICK`` methods take nothing and answer at once (the bridge calls them on
    its event loop); ``CARD`` methods take the request's origin and its fields, and block,
    in worker threads; an ``EVENTS`` endpoint uses ``subscribe``/``unsubscribe``.

    Refusals are raised as :class:`cardkit.errors.CardkitError` subclasses; the bridge turns
    them into problem documents with the status and code each class declares.
    """

    def status(self) -> StatusPayload: ...

    def version(self) -> VersionPayload: ...

    def refused(self, origin: str) -> bool:
        """The user refused this origin: it gets nothing but the refusal (not even status)."""
        ...

    def authenticate(
        self, origin: str, nonce: str, card: str | None = None, format: str | None = None
    ) -> TokenPayload | WebEidTokenPayload: ...

    def read_vitale(self, origin: str, card: str | None = None) -> VitalePayload: ...

    def subscribe(self) -> asyncio.Queue[EventPayload]: ...

    def unsubscribe(self, queue: asyncio.Queue[EventPayload]) -> None: ...
