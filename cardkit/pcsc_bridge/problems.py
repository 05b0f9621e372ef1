"""Errors as RFC 9457 problem documents, mapped in this one place.

Every refusal the bridge makes has a stable ``code`` that the JS client and portals switch on;
``detail`` is for people. Unexpected exceptions become a generic 500 without internals.
"""

from __future__ import annotations

from typing import Any

from cardkit.auth.challenge import NonceError
from cardkit.auth.origin import OriginError
from cardkit.errors import CardkitError, InvalidPinFormat, PinBlocked, WrongPin
from cardkit.transport.base import CardRemoved, NoCard, ReaderBusy, ReaderUnavailable

PROBLEM_TYPE = "application/problem+json"

#: (exception class, HTTP status, code), most specific first.
_MAP: list[tuple[type[BaseException], int, str]] = [
    (PinBlocked, 423, "pin_blocked"),
    (WrongPin, 401, "pin_wrong"),
    (InvalidPinFormat, 400, "pin_format"),
    (NoCard, 409, "card_absent"),
    (CardRemoved, 409, "card_absent"),
    (ReaderBusy, 409, "busy"),
    (ReaderUnavailable, 503, "reader_unavailable"),
    (NonceError, 400, "nonce_invalid"),
    (OriginError, 403, "origin_not_allowed"),
]


class BridgeError(CardkitError):
    """A refusal with its HTTP status and code."""

    def __init__(self, status: int, code: str, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def problem_body(status: int, code: str, detail: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "type": f"https://cardkit.invalid/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }


def problem_for(exc: BaseException) -> dict[str, Any]:
    """The problem document for an exception raised while serving a request."""
    if isinstance(exc, BridgeError):
        return problem_body(exc.status, exc.code, exc.detail, **exc.extra)
    for cls, status, code in _MAP:
        if isinstance(exc, cls):
            extra: dict[str, Any] = {}
            if isinstance(exc, WrongPin):
                extra["tries_left"] = exc.tries_left
            return problem_body(status, code, str(exc), **extra)
    if isinstance(exc, CardkitError):
        return problem_body(502, exc.code, str(exc))
    return problem_body(500, "internal_error", "the agent failed; see its log")
