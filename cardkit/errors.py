"""The root of cardkit's error tree, and the one registry of what each error means outside.

Every error cardkit raises on purpose derives from :class:`CardkitError` and carries, on its
own class and nowhere else, three things the outside world relies on:

- ``code``: a stable machine-readable string (CLI ``--json``, bridge problem documents, the
  agent's audit log, the PKCS#11 worker's pipe);
- ``exit_code``: what the ``cardkit`` command exits with;
- ``http_status``: what the bridge answers.

The CLI and the bridge read these attributes; neither keeps a table. Anything that is not a
:class:`CardkitError` reaching them is, by definition, a bug (exit 1, HTTP 500).
"""

from __future__ import annotations

from enum import IntEnum, unique
from typing import Any


@unique
class ExitCode(IntEnum):
    """Exit codes of the ``cardkit`` command, stable for scripts."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    NO_READER = 3
    NO_CARD = 4
    CARD_ERROR = 5
    PIN = 6
    CARD_TIMEOUT = 7


class CardkitError(Exception):
    """Base of every error cardkit raises deliberately."""

    code: str = "error"
    exit_code: int = ExitCode.FAILURE
    http_status: int = 500
    #: What the person can do about it, in English (a msgid of the catalogue): the CLI
    #: prints it in the user's language under the technical message.
    hint: str | None = None

    def details(self) -> dict[str, Any]:
        """Extra machine-readable fields for JSON output and problem documents."""
        return {}


def registry() -> dict[str, type[CardkitError]]:
    """Every error class loaded so far, by code; the most general class wins a shared code.

    Used where an error crosses a process boundary as its code (the PKCS#11 worker) and by
    the test that checks classes sharing a code also share their exit code and HTTP status.
    """
    found: dict[str, type[CardkitError]] = {}
    pending: list[type[CardkitError]] = [CardkitError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        known = found.get(cls.code)
        if known is None or len(cls.__mro__) < len(known.__mro__):
            found[cls.code] = cls
    return found


def to_wire(exc: CardkitError) -> dict[str, Any]:
    """What crosses a process boundary for ``exc`` (see :func:`rebuild`)."""
    return {
        "error": exc.code,
        "message": str(exc),
        "exit_code": int(exc.exit_code),
        "http_status": exc.http_status,
        **exc.details(),
    }


def rebuild(code: str, message: str, **fields: Any) -> CardkitError:
    """The error a code stands for, rebuilt on this side of a pipe.

    A class this process has not loaded (the PKCS#11 layer, in the agent's main process)
    comes back as a plain :class:`CardkitError` with the code, exit code and HTTP status the
    other side declared, so nothing is lost.
    """
    cls = registry().get(code)
    if cls is not None:
        try:
            if issubclass(cls, WrongPin):
                return cls(message, fields.get("tries_left"))
            return cls(message)
        except (TypeError, ValueError):
            pass  # a class built from something else than a message (a status word...)
    error = CardkitError(message)
    error.code = code
    error.exit_code = int(fields.get("exit_code", ExitCode.FAILURE))
    error.http_status = int(fields.get("http_status", 500))
    return error


class CardError(CardkitError):
    """A card or reader did not do what was asked."""

    code = "card_error"
    exit_code = ExitCode.CARD_ERROR
    http_status = 502


class PinError(CardError):
    """Something about a PIN or PUK; subclasses say what."""

    code = "pin_error"
    exit_code = ExitCode.PIN
    http_status = 400


class WrongPin(PinError):
    """The PIN was wrong; one try is gone. ``tries_left`` is None when the middleware hides it.

    ``sw`` is the card's status word when the card itself answered (63Cx), None when a
    PKCS#11 module reported it.
    """

    code = "pin_wrong"
    http_status = 401

    def __init__(
        self, message: str = "wrong PIN", tries_left: int | None = None, *, sw: int | None = None
    ) -> None:
        super().__init__(message)
        self.tries_left = tries_left
        self.sw = sw

    def details(self) -> dict[str, Any]:
        return {"tries_left": self.tries_left}


class PinBlocked(PinError):
    """No PIN tries left: only the PUK (unblocking code) can help."""

    code = "pin_blocked"
    http_status = 423

    def __init__(self, message: str = "the PIN is blocked", *, sw: int | None = None) -> None:
        super().__init__(message)
        self.sw = sw


class WrongPuk(WrongPin):
    """The PUK was wrong; one PUK try is gone."""

    code = "puk_wrong"


class PukBlocked(PinBlocked):
    """No PUK tries left: the card cannot be unblocked any more."""

    code = "puk_blocked"


class InvalidPinFormat(PinError, ValueError):
    """The PIN or PUK typed does not have the card's format; nothing was sent to the card."""

    code = "pin_format"


class PinCancelled(PinError):
    """The user closed the PIN prompt: nothing was sent to the card."""

    code = "pin_cancelled"
    http_status = 403


class PinpadUnavailable(PinError):
    """The PIN must be typed on the reader's PIN pad, and this reader has none."""

    code = "pinpad_unavailable"
    http_status = 409


class PinCooldown(PinError):
    """A PIN prompt for this site was cancelled or failed a moment ago; wait before asking."""

    code = "pin_cooldown"
    http_status = 429

    def __init__(self, message: str = "wait before asking for the PIN again", retry_after: int = 0):
        super().__init__(message)
        self.retry_after = retry_after

    def details(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class PromptUnavailable(PinError):
    """Nothing can show the person which site asks for the PIN: the agent will not ask."""

    code = "prompt_unavailable"
    http_status = 409


# --- decisions of the person at the workstation (raised by the agent) -------------------------


class UserDecision(CardkitError):
    """The person at the workstation said no, or did not choose."""

    code = "user_decision"
    http_status = 403


class ConsentDenied(UserDecision):
    """The user did not allow this site to use the cards."""

    code = "consent_denied"


class OriginNotAllowed(UserDecision):
    """The site is not in the agent's allowlist."""

    code = "origin_not_allowed"


class AgentBusy(CardkitError):
    """The agent has no room for this request now (too many listeners or connections)."""

    code = "overloaded"
    http_status = 503


class UnknownCard(CardError):
    """The card is not the kind asked for (not a CPS/CPE, not a Vitale), or none was chosen."""

    code = "card_unknown"
    http_status = 409


class NoCardChosen(UnknownCard):
    """Several cards fit and the user chose none."""
