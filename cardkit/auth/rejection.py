"""The one error a token validation ends in, with its reason (a stable code portals map to
words: :mod:`cardkit.portal.messages`)."""

from __future__ import annotations

from cardkit.errors import CardkitError


class TokenRejected(CardkitError):
    """The token does not prove what it claims; ``reason`` says which check failed."""

    code = "token_rejected"
    http_status = 401

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
