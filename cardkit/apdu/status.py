"""Status words (ISO/IEC 7816-4), and the typed errors they become, named for what they
mean: card applications catch :class:`WrongPin` or :class:`FileNotFound` instead of
comparing integers."""

from __future__ import annotations

from enum import IntEnum, unique
from typing import ClassVar

from cardkit.errors import CardError, PinBlocked, WrongPin


@unique
class SW(IntEnum):
    """Status words with a meaning of their own (ISO 7816-4 section 5.6)."""

    OK = 0x9000
    END_OF_FILE = 0x6282
    MEMORY_FAILURE = 0x6581
    WRONG_LENGTH = 0x6700
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    LAST_COMMAND_OF_CHAIN_EXPECTED = 0x6883
    CHAINING_NOT_SUPPORTED = 0x6884
    COMMAND_INCOMPATIBLE_WITH_FILE = 0x6981
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTHENTICATION_METHOD_BLOCKED = 0x6983
    REFERENCE_DATA_NOT_USABLE = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED = 0x6986
    WRONG_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    NOT_ENOUGH_MEMORY = 0x6A84
    INCORRECT_P1P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    WRONG_P1P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


# --- errors -------------------------------------------------------------------------------


class MalformedApdu(CardError, ValueError):
    """A command APDU cannot be encoded or decoded as ISO 7816-4 allows."""

    code = "malformed_apdu"


class MalformedResponse(CardError):
    """A response APDU is not a valid response (too short, endless chaining, ...)."""

    code = "malformed_response"


class ApduError(CardError):
    """The card answered a status word other than 9000."""

    code = "apdu_error"
    _by_sw: ClassVar[dict[int, type[ApduError]]] = {}
    sws: ClassVar[tuple[int, ...]] = ()

    def __init__(self, sw: int, data: bytes = b"", message: str | None = None) -> None:
        self.sw = sw
        self.data = data
        super().__init__(message or f"card answered {sw:04X} ({describe_sw(sw)})")

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        for sw in cls.__dict__.get("sws", ()):
            ApduError._by_sw[sw] = cls

    @staticmethod
    def for_status(sw: int, data: bytes = b"") -> CardError:
        """Build the most specific error for ``sw``.

        PIN outcomes are the domain's own :class:`WrongPin` and :class:`PinBlocked` (with the
        status word kept), whatever layer reported them: one class each, not one per layer.
        """
        if sw & 0xFFF0 == 0x63C0:
            return WrongPin(f"wrong PIN, {sw & 0x0F} tries left", sw & 0x0F, sw=sw)
        if sw == SW.AUTHENTICATION_METHOD_BLOCKED:
            return PinBlocked("the PIN is blocked (6983)", sw=sw)
        cls = ApduError._by_sw.get(sw)
        if cls is None and sw >> 8 in (0x6C, 0x61):
            cls = WrongLength
        return (cls or ApduError)(sw, data)


class SecurityStatusNotSatisfied(ApduError):
    """The command needs a verification (PIN) that has not happened (6982)."""

    code = "security_status_not_satisfied"
    sws = (SW.SECURITY_STATUS_NOT_SATISFIED,)


class ConditionsNotSatisfied(ApduError):
    """The card's state does not allow the command now (6985, 6986, 6984)."""

    code = "conditions_not_satisfied"
    sws = (
        SW.CONDITIONS_NOT_SATISFIED,
        SW.COMMAND_NOT_ALLOWED,
        SW.REFERENCE_DATA_NOT_USABLE,
        SW.COMMAND_INCOMPATIBLE_WITH_FILE,
    )


class FileNotFound(ApduError):
    """The file or application selected does not exist (6A82)."""

    code = "file_not_found"
    sws = (SW.FILE_NOT_FOUND,)


class RecordNotFound(ApduError):
    """The record asked for does not exist (6A83)."""

    code = "record_not_found"
    sws = (SW.RECORD_NOT_FOUND,)


class DataNotFound(ApduError):
    """The data object or key reference does not exist (6A88)."""

    code = "data_not_found"
    sws = (SW.REFERENCED_DATA_NOT_FOUND,)


class WrongLength(ApduError):
    """Lc or Le is wrong for this command (6700, or unresolved 6Cxx/61xx)."""

    code = "wrong_length"
    sws = (SW.WRONG_LENGTH,)


class WrongParameters(ApduError):
    """P1/P2 or the data field are not acceptable (6A86, 6B00, 6A80, 6A81)."""

    code = "wrong_parameters"
    sws = (SW.INCORRECT_P1P2, SW.WRONG_P1P2, SW.WRONG_DATA, SW.FUNCTION_NOT_SUPPORTED)


class NotSupported(ApduError):
    """The card does not know this class, instruction, channel or chaining (6Dxx, 6Exx, 68xx)."""

    code = "not_supported"
    sws = (
        SW.INS_NOT_SUPPORTED,
        SW.CLA_NOT_SUPPORTED,
        SW.LOGICAL_CHANNEL_NOT_SUPPORTED,
        SW.SECURE_MESSAGING_NOT_SUPPORTED,
        SW.CHAINING_NOT_SUPPORTED,
        SW.LAST_COMMAND_OF_CHAIN_EXPECTED,
    )


class CardMemoryError(ApduError):
    """The card reports a memory failure (6581) or lack of memory (6A84)."""

    code = "card_memory"
    sws = (SW.MEMORY_FAILURE, SW.NOT_ENOUGH_MEMORY)


_SW_TEXT = {
    SW.OK: "success",
    SW.END_OF_FILE: "end of file reached before Le bytes",
    SW.MEMORY_FAILURE: "memory failure",
    SW.WRONG_LENGTH: "wrong length",
    SW.LOGICAL_CHANNEL_NOT_SUPPORTED: "logical channel not supported",
    SW.SECURE_MESSAGING_NOT_SUPPORTED: "secure messaging not supported",
    SW.LAST_COMMAND_OF_CHAIN_EXPECTED: "last command of the chain expected",
    SW.CHAINING_NOT_SUPPORTED: "command chaining not supported",
    SW.COMMAND_INCOMPATIBLE_WITH_FILE: "command incompatible with file structure",
    SW.SECURITY_STATUS_NOT_SATISFIED: "security status not satisfied",
    SW.AUTHENTICATION_METHOD_BLOCKED: "authentication method blocked",
    SW.REFERENCE_DATA_NOT_USABLE: "reference data not usable",
    SW.CONDITIONS_NOT_SATISFIED: "conditions of use not satisfied",
    SW.COMMAND_NOT_ALLOWED: "command not allowed (no current EF)",
    SW.WRONG_DATA: "incorrect parameters in the data field",
    SW.FUNCTION_NOT_SUPPORTED: "function not supported",
    SW.FILE_NOT_FOUND: "file or application not found",
    SW.RECORD_NOT_FOUND: "record not found",
    SW.NOT_ENOUGH_MEMORY: "not enough memory space in the file",
    SW.INCORRECT_P1P2: "incorrect parameters P1-P2",
    SW.REFERENCED_DATA_NOT_FOUND: "referenced data or reference data not found",
    SW.WRONG_P1P2: "wrong parameters P1-P2",
    SW.INS_NOT_SUPPORTED: "instruction not supported",
    SW.CLA_NOT_SUPPORTED: "class not supported",
    SW.NO_PRECISE_DIAGNOSIS: "no precise diagnosis",
}


def describe_sw(sw: int) -> str:
    """Human words for a status word, for messages and traces."""
    if sw in _SW_TEXT:
        return _SW_TEXT[SW(sw)]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"{sw2 or 256} more bytes available"
    if sw1 == 0x6C:
        return f"wrong Le, exact length is {sw2 or 256}"
    if sw & 0xFFF0 == 0x63C0:
        return f"verification failed, {sw & 0x0F} tries left"
    return "unknown status"
