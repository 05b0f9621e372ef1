"""ISO/IEC 7816-4 command and response APDUs, status words, and the exchange rules around them.

The framing rules live here once: short and extended encodings (cases 1 to 4) in
:mod:`~cardkit.apdu.command`, command chaining, GET RESPONSE on ``61xx`` and the resend on
``6Cxx`` in :mod:`~cardkit.apdu.channel`; status words become typed errors named for what
they mean (:mod:`~cardkit.apdu.status`).
"""

from cardkit.apdu.channel import ApduChannel
from cardkit.apdu.command import (
    CHAINING_BIT,
    EXTENDED_MAX_LC,
    EXTENDED_MAX_LE,
    SECRET_COMMAND_INS,
    SHORT_MAX_LC,
    SHORT_MAX_LE,
    CommandAPDU,
    Ins,
    ResponseAPDU,
    redact_command,
    redact_response,
)
from cardkit.apdu.status import (
    SW,
    ApduError,
    CardMemoryError,
    ConditionsNotSatisfied,
    DataNotFound,
    FileNotFound,
    MalformedApdu,
    MalformedResponse,
    NotSupported,
    RecordNotFound,
    SecurityStatusNotSatisfied,
    WrongLength,
    WrongParameters,
    describe_sw,
)

__all__ = [
    "CHAINING_BIT",
    "EXTENDED_MAX_LC",
    "EXTENDED_MAX_LE",
    "SECRET_COMMAND_INS",
    "SHORT_MAX_LC",
    "SHORT_MAX_LE",
    "SW",
    "ApduChannel",
    "ApduError",
    "CardMemoryError",
    "CommandAPDU",
    "ConditionsNotSatisfied",
    "DataNotFound",
    "FileNotFound",
    "Ins",
    "MalformedApdu",
    "MalformedResponse",
    "NotSupported",
    "RecordNotFound",
    "ResponseAPDU",
    "SecurityStatusNotSatisfied",
    "WrongLength",
    "WrongParameters",
    "describe_sw",
    "redact_command",
    "redact_response",
]
