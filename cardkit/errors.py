"""The root of cardkit's error tree.

Every error cardkit raises on purpose derives from :class:`CardkitError`, so that the CLI and
the bridge can map them to exit codes and problem documents in one place each, and anything
else reaching them is, by definition, a bug.
"""

from __future__ import annotations


class CardkitError(Exception):
    """Base of every error cardkit raises deliberately."""

    #: Stable machine-readable code, used by the CLI's JSON output and the bridge.
    code: str = "error"


class CardError(CardkitError):
    """A card or reader did not do what was asked."""

    code = "card_error"


class PinError(CardError):
    """Something about a PIN or PUK; subclasses say what."""

    code = "pin_error"


class WrongPin(PinError):
    """The PIN was wrong; one try is gone. ``tries_left`` is None when the middleware hides it."""

    code = "pin_wrong"

    def __init__(self, message: str = "wrong PIN", tries_left: int | None = None) -> None:
        super().__init__(message)
        self.tries_left = tries_left


class PinBlocked(PinError):
    """No PIN tries left: only the PUK (unblocking code) can help."""

    code = "pin_blocked"


class WrongPuk(WrongPin):
    """The PUK was wrong; one PUK try is gone."""

    code = "puk_wrong"


class PukBlocked(PinBlocked):
    """No PUK tries left: the card cannot be unblocked any more."""

    code = "puk_blocked"


class InvalidPinFormat(PinError, ValueError):
    """The PIN or PUK typed does not have the card's format; nothing was sent to the card."""

    code = "pin_format"
