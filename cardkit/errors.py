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
