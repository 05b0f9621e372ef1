"""Errors as RFC 9457 problem documents, mapped in this one place.

Every refusal the bridge makes has a stable ``code`` that the JS client and portals switch on;
``detail`` is for people. Unexpected exceptions become a generic 500 without internals.
"""

from __future__ import annotations

from typing import Any

from cardkit.errors import CardkitError

PROBLEM_TYPE = "application/problem+json"


class BridgeError(CardkitError):
    """A refusal of the bridge's own (HTTP-level: bad request, not found, timeout).

    Card, PIN and user-decision errors are never wrapped in this: they carry their own
    status and code (see :mod:`cardkit.errors`).
    """

    def __init__(self, status: int, code: str, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or code)
        self.http_status = status
        self.code = code
        self.detail = detail
        self.extra = extra

    def details(self) -> dict[str, Any]:
        return dict(self.extra)


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
    """The problem document for an exception raised while serving a request: the error's
    own status and code; anything that is not a cardkit error is a bug, answered without
    internals."""
    if isinstance(exc, CardkitError):
        detail = exc.detail if isinstance(exc, BridgeError) else str(exc)
        return problem_body(exc.http_status, exc.code, detail, **exc.details())
    return problem_body(500, "internal_error", "the agent failed; see its log")
