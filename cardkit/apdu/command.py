"""Command and response APDUs: their encodings (short and extended, cases 1 to 4), their
parsing, and what a trace may show of them (never a PIN, never what a card answered but the
file control information of a SELECT)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, unique

from cardkit.apdu.status import SW, ApduError, MalformedApdu, MalformedResponse

SHORT_MAX_LC = 255
SHORT_MAX_LE = 256
EXTENDED_MAX_LC = 65535
EXTENDED_MAX_LE = 65536
CHAINING_BIT = 0x10
#: Commands with a data field up to this size keep their short encoding (a SELECT by FID or
#: AID, a READ BINARY: what card applications send over and over).
KEPT_DATA_MAX = 16


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
    #: :meth:`short_form`, made once at construction for the commands sent over and over;
    #: never for one carrying a PIN (it would stay in memory with the command) nor for long
    #: data fields (digests, which never repeat). A derived field, not part of equality.
    _short: bytes | None = field(default=None, init=False, repr=False, compare=False, hash=False)

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
        if len(self.data) <= KEPT_DATA_MAX and self.ins not in SECRET_COMMAND_INS:
            object.__setattr__(self, "_short", self._short_bytes())  # frozen: set at init

    def short_form(self) -> bytes:
        """The bytes sent over a channel without extended length: an Le beyond 256 asks
        for 256, and the rest comes by 61xx."""
        return self._short if self._short is not None else self._short_bytes()

    def _short_bytes(self) -> bytes:
        if (self.le or 0) > SHORT_MAX_LE:
            return CommandAPDU(
                self.cla, self.ins, self.p1, self.p2, self.data, SHORT_MAX_LE
            )._short_bytes()
        return self.to_bytes(False)

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
