"""ISO/IEC 7816-4 command and response APDUs, status words, and the exchange rules around them.

The framing rules live here once: short and extended encodings (cases 1 to 4), command
chaining, GET RESPONSE on ``61xx`` and the resend on ``6Cxx`` (wrong Le) that neither pyscard
nor Yubico's stacks handle. Status words become typed errors named for what they mean, so that
card applications can catch :class:`WrongPin` instead of comparing integers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import IntEnum, unique
from typing import TYPE_CHECKING, ClassVar

from cardkit.errors import CardError, PinBlocked, WrongPin

if TYPE_CHECKING:
    from cardkit.transport.base import CardConnection

log = logging.getLogger(__name__)

SHORT_MAX_LC = 255
SHORT_MAX_LE = 256
EXTENDED_MAX_LC = 65535
EXTENDED_MAX_LE = 65536
CHAINING_BIT = 0x10


@unique
class Ins(IntEnum):
    """Instruction bytes cardkit sends or its mock cards answer (ISO 7816-4, -8, -9)."""

    VERIFY = 0x20
    CHANGE_REFERENCE_DATA = 0x24
    RESET_RETRY_COUNTER = 0x2C
    MANAGE_SECURITY_ENVIRONMENT = 0x22
    PERFORM_SECURITY_OPERATION = 0x2A
    MANAGE_CHANNEL = 0x70
    GET_CHALLENGE = 0x84
    GENERAL_AUTHENTICATE = 0x87
    INTERNAL_AUTHENTICATE = 0x88
    SELECT = 0xA4
    READ_BINARY = 0xB0
    READ_RECORD = 0xB2
    GET_RESPONSE = 0xC0
    GET_DATA = 0xCA
    GET_DATA_ODD = 0xCB


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


# --- commands and responses -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandAPDU:
    """A command APDU; ``le`` is the number of bytes expected (None for cases 1 and 3).

    ``le=256`` is encoded ``00`` in short form and ``le=65536`` as ``0000`` in extended form.
    """

    cla: int
    ins: int
    p1: int = 0
    p2: int = 0
    data: bytes = b""
    le: int | None = None
    #: The short-form wire bytes once computed (see :func:`_encoded`); not part of equality.
    _wire: bytes | None = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise MalformedApdu(f"{name} must be one byte, got {value!r}")
        if self.cla == 0xFF:
            raise MalformedApdu("CLA FF is reserved for PPS")
        if len(self.data) > EXTENDED_MAX_LC:
            raise MalformedApdu(f"data field of {len(self.data)} bytes exceeds 65535")
        if self.le is not None and not 1 <= self.le <= EXTENDED_MAX_LE:
            raise MalformedApdu(f"Le must be 1..65536 or None, got {self.le}")

    @property
    def needs_extended(self) -> bool:
        """Whether short encoding cannot carry this command."""
        return len(self.data) > SHORT_MAX_LC or (self.le or 0) > SHORT_MAX_LE

    def to_bytes(self, extended: bool | None = None) -> bytes:
        """Encode; ``extended=None`` picks short form when it fits."""
        ext = self.needs_extended if extended is None else extended
        if not ext and self.needs_extended:
            raise MalformedApdu("command does not fit the short encoding")
        out = bytearray((self.cla, self.ins, self.p1, self.p2))
        if ext:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                le = self.le & 0xFFFF  # 65536 -> 0000
                out += (b"" if self.data else b"\x00") + le.to_bytes(2, "big")
        else:
            if self.data:
                out.append(len(self.data))
                out += self.data
            if self.le is not None:
                out.append(self.le & 0xFF)  # 256 -> 00
        return bytes(out)

    @classmethod
    def parse(cls, raw: bytes) -> CommandAPDU:
        """Decode any of the seven ISO 7816-3 encodings; raises :class:`MalformedApdu`."""
        n = len(raw)
        if n < 4:
            raise MalformedApdu(f"command APDU of {n} bytes is shorter than its header")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        b = len(body)
        if b == 0:
            return cls(cla, ins, p1, p2)
        if b == 1:
            return cls(cla, ins, p1, p2, le=body[0] or SHORT_MAX_LE)
        if body[0] != 0:
            lc = body[0]
            if b == 1 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1:]))
            if b == 2 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), body[-1] or SHORT_MAX_LE)
            raise MalformedApdu(f"Lc={lc} does not match a body of {b} bytes")
        # body[0] == 0 and more than one byte: extended length
        if b == 3:
            return cls(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or EXTENDED_MAX_LE)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise MalformedApdu("extended Lc of 0")
        if b == 3 + lc:
            return cls(cla, ins, p1, p2, bytes(body[3:]))
        if b == 5 + lc:
            le = int.from_bytes(body[-2:], "big") or EXTENDED_MAX_LE
            return cls(cla, ins, p1, p2, bytes(body[3 : 3 + lc]), le)
        raise MalformedApdu(f"extended Lc={lc} does not match a body of {b} bytes")


@dataclass(frozen=True, slots=True)
class ResponseAPDU:
    """A response APDU: data field and status word."""

    data: bytes
    sw: int

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == SW.OK

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def parse(cls, raw: bytes) -> ResponseAPDU:
        if len(raw) < 2:
            raise MalformedResponse(f"response of {len(raw)} bytes has no status word")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))

    def check(self) -> bytes:
        """Return the data on 9000, raise the matching :class:`ApduError` otherwise."""
        if self.sw != SW.OK:
            raise ApduError.for_status(self.sw, self.data)
        return self.data


# --- redaction --------------------------------------------------------------------------------

#: Commands whose data field carries a PIN, a PUK or a new PIN.
SECRET_COMMAND_INS = frozenset({Ins.VERIFY, Ins.CHANGE_REFERENCE_DATA, Ins.RESET_RETRY_COUNTER})


def redact_command(raw: bytes) -> str:
    """Hex of a command for traces, with PIN-bearing data fields masked.

    Works on raw bytes that may be malformed, because traces are written before parsing.
    """
    if len(raw) > 5 and raw[1] in SECRET_COMMAND_INS:
        return f"{raw[:5].hex(' ').upper()} <{len(raw) - 5} bytes redacted>"
    return raw.hex(" ").upper()


def redact_response(ins: int, raw: bytes) -> str:
    """Hex of a response for traces: only SELECT's file control information is shown.

    Everything else a card returns may be personal or secret (names, NIRs, certificates of
    a person, signatures), so traces keep its length and status word only.
    """
    if ins == Ins.SELECT or len(raw) <= 2:
        return raw.hex(" ").upper()
    return f"<{len(raw) - 2} bytes> {raw[-2:].hex(' ').upper()}"


# --- the exchange ---


#: Commands with a data field up to this size are worth caching (SELECT by FID or AID).
CACHED_DATA_MAX = 16


def _encoded(command: CommandAPDU, extended: bool) -> bytes:
    """The bytes of ``command`` over a channel with or without extended length.

    Card applications send the same few commands (SELECT, READ BINARY) over and over, so a
    short command keeps its bytes on itself; never one that carries a PIN (they would stay
    in memory as long as the command object), nor long data fields (digests).
    """
    if extended or len(command.data) > CACHED_DATA_MAX or command.ins in SECRET_COMMAND_INS:
        return _encode_now(command, extended)
    wire = command._wire
    if wire is None:
        wire = _encode_now(command, False)
        object.__setattr__(command, "_wire", wire)  # a cache, not state: frozen otherwise
    return wire


def _encode_now(command: CommandAPDU, extended: bool) -> bytes:
    """Without extended length, an Le beyond 256 asks for 256 and the rest comes by 61xx."""
    if not extended and (command.le or 0) > SHORT_MAX_LE:
        command = CommandAPDU(
            command.cla, command.ins, command.p1, command.p2, command.data, SHORT_MAX_LE
        )
    return command.to_bytes(None if extended else False)


def _get_response_cla(cla: int) -> int:
    """GET RESPONSE keeps the logical channel of the command, without chaining or SM bits."""
    if cla & 0x40:  # further interindustry class: channels 4..19 in the low nibble
        return 0x40 | (cla & 0x0F)
    return cla & 0x03


class ApduChannel:
    """Sends commands over a :class:`CardConnection` and applies the ISO framing rules.

    - data longer than 255 bytes: extended length when ``extended`` is true, else command
      chaining (CLA bit 0x10);
    - ``61xx``: GET RESPONSE until the card has nothing more, bounded by ``max_response``
      bytes and by rounds that bring no data (a card answering ``61FF`` to every GET
      RESPONSE would otherwise be followed forever);
    - ``6Cxx``: the command is sent once more with the Le the card asked for, never twice.

    Every loop here follows the card's lead, and the card is untrusted input: each one ends
    with :class:`MalformedResponse` after a bounded number of exchanges.
    """

    #: GET RESPONSE rounds in a row that may bring no byte before the card is called broken.
    MAX_EMPTY_ROUNDS = 2
    #: GET RESPONSE rounds for one command: 64 KiB in full 256-byte answers, with room to
    #: spare; a card trickling a byte at a time is cut off here rather than at 64 Ki rounds.
    MAX_ROUNDS = 512

    def __init__(
        self, connection: CardConnection, *, extended: bool = False, max_response: int = 1 << 16
    ) -> None:
        self.connection = connection
        self.extended = extended
        self.max_response = max_response

    def _exchange(self, raw: bytes) -> ResponseAPDU:
        trace = log.isEnabledFor(logging.DEBUG)
        if trace:
            log.debug("> %s", redact_command(raw))
        answer = self.connection.transmit(raw)
        if trace:
            log.debug("< %s", redact_response(raw[1], answer))
        return ResponseAPDU.parse(answer)

    def transmit(self, command: CommandAPDU) -> ResponseAPDU:
        """Send ``command``; the response is complete (61xx and 6Cxx resolved), any status."""
        if len(command.data) > SHORT_MAX_LC and not self.extended:
            response = self._send_chained(command)
        else:
            response = self._exchange(self._encode(command))
        return self._finish(command, response)

    def _finish(self, command: CommandAPDU, response: ResponseAPDU) -> ResponseAPDU:
        """The 6Cxx resend and the 61xx collection, after the command's first answer."""
        if response.sw1 == 0x6C:
            wanted = response.sw2 or SHORT_MAX_LE
            retry = CommandAPDU(
                command.cla, command.ins, command.p1, command.p2, command.data, wanted
            )
            response = self._exchange(self._encode(retry))
            if response.sw1 == 0x6C:
                raise MalformedResponse(
                    f"card asked twice for another Le ({response.sw:04X}) on INS {command.ins:02X}"
                )
        return self._collect(command.cla, response)

    def send(self, command: CommandAPDU) -> bytes:
        """Send ``command`` and return its data; any status but 9000 raises.

        The common case (one exchange answered 9000, no trace wanted) takes a short path:
        the encoding comes from a cache and no response object is built. Everything else
        goes through :meth:`transmit`'s rules.
        """
        if (len(command.data) > SHORT_MAX_LC and not self.extended) or log.isEnabledFor(
            logging.DEBUG
        ):
            return self.transmit(command).check()
        answer = self.connection.transmit(_encoded(command, self.extended))
        if answer[-2:] == b"\x90\x00":
            return answer[:-2]
        return self._finish(command, ResponseAPDU.parse(answer)).check()

    def read_binary(self, sfi: int | None = None, *, max_size: int = 1 << 16) -> bytes:
        """A whole transparent EF: the current one, or by short file identifier.

        Reads 256-byte chunks (by SFI first, which also selects the EF, then by offset) until
        a short chunk, "end of file" (6282) or "offset outside the file" (6B00).
        """
        data = bytearray()
        p1 = 0x80 | sfi if sfi is not None else 0x00
        command = CommandAPDU(0x00, Ins.READ_BINARY, p1, 0x00, le=SHORT_MAX_LE)
        while True:
            response = self.transmit(command)
            if response.sw == SW.WRONG_P1P2 and data:
                break
            if response.sw not in (SW.OK, SW.END_OF_FILE):
                response.check()
            data += response.data
            if response.sw == SW.END_OF_FILE or len(response.data) < SHORT_MAX_LE:
                break
            if len(data) >= max_size:
                raise MalformedResponse(f"file larger than {max_size} bytes")
            offset = len(data)
            if offset > 0x7FFF:
                raise MalformedResponse("file larger than READ BINARY offsets can reach")
            command = CommandAPDU(0x00, Ins.READ_BINARY, offset >> 8, offset & 0xFF, le=256)
        return bytes(data)

    def _encode(self, command: CommandAPDU) -> bytes:
        return _encoded(command, self.extended)

    def _send_chained(self, command: CommandAPDU) -> ResponseAPDU:
        data = command.data
        chunks = [data[i : i + SHORT_MAX_LC] for i in range(0, len(data), SHORT_MAX_LC)]
        for chunk in chunks[:-1]:
            part = CommandAPDU(
                command.cla | CHAINING_BIT, command.ins, command.p1, command.p2, chunk
            )
            response = self._exchange(part.to_bytes(False))
            if not response.ok:
                return response
        last = CommandAPDU(command.cla, command.ins, command.p1, command.p2, chunks[-1], command.le)
        return self._exchange(self._encode(last))

    def _collect(self, cla: int, response: ResponseAPDU) -> ResponseAPDU:
        if response.sw1 != 0x61:
            return response
        buffer = bytearray(response.data)
        gr_cla = _get_response_cla(cla)
        empty = rounds = 0
        while response.sw1 == 0x61:
            rounds += 1
            if len(buffer) > self.max_response or rounds > self.MAX_ROUNDS:
                raise MalformedResponse(
                    f"response chaining went past {self.max_response} bytes; giving up"
                )
            empty = 0 if response.data else empty + 1
            if empty > self.MAX_EMPTY_ROUNDS:
                raise MalformedResponse(
                    f"the card keeps announcing more data ({response.sw:04X}) and sends none"
                )
            get = CommandAPDU(gr_cla, Ins.GET_RESPONSE, 0, 0, le=response.sw2 or SHORT_MAX_LE)
            response = self._exchange(get.to_bytes(False))
            if response.sw1 == 0x6C:  # some cards want the exact remaining length
                get = CommandAPDU(gr_cla, Ins.GET_RESPONSE, 0, 0, le=response.sw2 or SHORT_MAX_LE)
                response = self._exchange(get.to_bytes(False))
            buffer += response.data
        return ResponseAPDU(bytes(buffer), response.sw)
