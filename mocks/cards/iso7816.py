"""An ISO/IEC 7816-4 card simulator: the engine every mock card profile runs on.

Shaped like vsmartcard's virtual cards: ``execute(capdu) -> rapdu`` dispatches on INS to
handlers ``(command) -> (data, sw)`` that raise :class:`SwError` for failures. The engine owns
what is common to every card: command parsing, class checks, command chaining, response
chaining (61xx / GET RESPONSE) and Le handling (6Cxx when the profile asks for exact Le), the
file system, PIN counters and security status.

State that survives a reset (power cycle) is "non-volatile": file contents, PIN values and
try counters. Security status, current file and pending responses are volatile.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from cardkit import tlv
from cardkit.apdu import SW, CommandAPDU, Ins, MalformedApdu

log = logging.getLogger(__name__)

MAX_CHAINED_DATA = 1 << 16


class SwError(Exception):
    """Abort the command with this status word."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


# --- file system --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Access:
    """Who may read a file or data object: always, never, or after verifying a PIN."""

    rule: str = "always"  # "always" | "never" | "pin"
    pin_ref: int | None = None

    def scb(self) -> int:
        """IAS-ECC security condition byte: 00 always, FF never, 1x user authentication."""
        if self.rule == "always":
            return 0x00
        if self.rule == "never" or self.pin_ref is None:
            return 0xFF
        return 0x10 | (self.pin_ref & 0x0F)

    @classmethod
    def parse(cls, text: str | None) -> Access:
        if text in (None, "always"):
            return cls()
        if text == "never":
            return cls("never")
        if text and text.startswith("pin:"):
            return cls("pin", int(text[4:], 16))
        raise ValueError(f"unknown access rule {text!r}")


@dataclass(eq=False)
class EF:
    fid: int
    name: str = ""
    sfi: int | None = None
    data: bytearray | None = None  # transparent EF
    records: list[bytes] | None = None  # linear fixed / variable EF
    read: Access = field(default_factory=Access)
    parent: DF | None = None

    @property
    def structure(self) -> int:
        """File descriptor byte: 01 transparent, 04 linear variable."""
        return 0x01 if self.records is None else 0x04

    def fcp(self) -> bytes:
        items: list[tuple[int, bytes]] = []
        if self.data is not None:
            items.append((0x80, len(self.data).to_bytes(2, "big")))
        items.append((0x82, bytes([self.structure])))
        items.append((0x83, self.fid.to_bytes(2, "big")))
        if self.sfi is not None:
            items.append((0x88, bytes([self.sfi << 3])))
        items.append((0x8A, b"\x05"))  # LCS: operational, activated
        # Compact security attributes: delete, terminate, activate, deactivate, -, update
        # are never allowed on these read-only cards; read follows the file's rule.
        items.append((0x8C, b"\x7f" + b"\xff" * 6 + bytes([self.read.scb()])))
        return tlv.encode_all(items)


@dataclass(eq=False)
class DF:
    fid: int
    name: str = ""
    aid: bytes | None = None
    children: list[EF | DF] = field(default_factory=list)
    parent: DF | None = None
    #: Data objects reachable by GET DATA while this DF is current.
    data_objects: dict[int, tuple[bytes, Access]] = field(default_factory=dict)

    def add(self, node: EF | DF) -> EF | DF:
        node.parent = self
        self.children.append(node)
        return node

    def child(self, fid: int) -> EF | DF | None:
        return next((c for c in self.children if c.fid == fid), None)

    def ef_by_sfi(self, sfi: int) -> EF | None:
        return next((c for c in self.children if isinstance(c, EF) and c.sfi == sfi), None)

    def walk(self) -> list[DF]:
        found = [self]
        for c in self.children:
            if isinstance(c, DF):
                found.extend(c.walk())
        return found

    def fcp(self) -> bytes:
        items: list[tuple[int, bytes]] = [(0x82, b"\x38"), (0x83, self.fid.to_bytes(2, "big"))]
        if self.aid:
            items.append((0x84, self.aid))
        items.append((0x8A, b"\x05"))
        items.append((0x8C, b"\x7f" + b"\xff" * 7))  # nothing is created or deleted
        return tlv.encode_all(items)


# --- PINs ---------------------------------------------------------------------------------


@dataclass(eq=False)
class Secret:
    """A PIN or PUK value with its try counter (both non-volatile)."""

    name: str
    value: bytes
    max_tries: int = 3
    tries_left: int = 3
    min_length: int = 4
    max_length: int = 8

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0

    def check(self, candidate: bytes) -> bool:
        """Compare, and count the try. Raises 6983 when already blocked."""
        if self.blocked:
            raise SwError(SW.AUTHENTICATION_METHOD_BLOCKED)
        if _constant_time_eq(candidate, self.value):
            self.tries_left = self.max_tries
            return True
        self.tries_left -= 1
        return False

    def status_sw(self) -> int:
        if self.blocked:
            return SW.AUTHENTICATION_METHOD_BLOCKED
        return 0x63C0 | min(self.tries_left, 0x0F)


def _constant_time_eq(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


@dataclass(eq=False)
class PinReference:
    """How one reference (VERIFY P2) reaches a secret: the PIN with the PUK that resets it,
    or the PUK on its own reference (IAS-ECC middleware verifies the PUK there, then sends a
    RESET RETRY COUNTER that carries only the new PIN)."""

    ref: int
    pin: Secret
    puk: Secret | None = None

    @staticmethod
    def strip(data: bytes) -> bytes:
        """The value as typed: middleware pads a fixed-length PIN with FF bytes."""
        return data.rstrip(b"\xff")


# --- the card --------------------------------------------------------------------------------

Handler = Callable[[CommandAPDU], tuple[bytes, int]]


class Iso7816Card:
    """A simulated ISO 7816-4 card. Thread-safe: one command at a time."""

    def __init__(
        self,
        atr: bytes,
        mf: DF,
        *,
        name: str = "mock card",
        pins: list[PinReference] | None = None,
        data_objects: dict[int, tuple[bytes, Access]] | None = None,
        exact_le: bool = False,
    ) -> None:
        self.name = name
        self._atr = atr
        self.mf = mf
        self.pins = {p.ref: p for p in pins or []}
        self.data_objects = data_objects or {}
        self.exact_le = exact_le
        self._lock = threading.RLock()
        self.handlers: dict[int, Handler] = {
            Ins.SELECT: self._select,
            Ins.READ_BINARY: self._read_binary,
            Ins.READ_RECORD: self._read_record,
            Ins.GET_DATA: self._get_data,
            Ins.GET_DATA_ODD: self._get_data_odd,
            Ins.VERIFY: self._verify,
            Ins.CHANGE_REFERENCE_DATA: self._change_reference_data,
            Ins.RESET_RETRY_COUNTER: self._reset_retry_counter,
            Ins.GET_CHALLENGE: self._get_challenge,
        }
        self.commands_seen = 0
        self.reset()

    # -- power --

    @property
    def atr(self) -> bytes:
        return self._atr

    def reset(self) -> None:
        """Warm or cold reset: volatile state is lost, counters and files are kept."""
        with self._lock:
            self.current_df: DF = self.mf
            self.current_ef: EF | None = None
            self.current_record: int | None = None
            self.verified: set[int] = set()
            self.last_challenge: bytes | None = None
            self._pending = b""
            self._chain: tuple[int, int, int, bytearray] | None = None
            self.on_reset()

    def on_reset(self) -> None:
        """Hook for profiles with more volatile state (security environments...)."""

    # -- dispatch --

    def execute(self, apdu: bytes) -> bytes:
        with self._lock:
            self.commands_seen += 1
            try:
                command = CommandAPDU.parse(apdu)
            except MalformedApdu:
                self._chain = None
                return SW.WRONG_LENGTH.to_bytes(2, "big")
            try:
                data, sw = self._dispatch(command)
            except SwError as exc:
                data, sw = b"", exc.sw
            return data + sw.to_bytes(2, "big")

    def _dispatch(self, command: CommandAPDU) -> tuple[bytes, int]:
        cla = command.cla
        if cla & 0x80:
            raise SwError(SW.CLA_NOT_SUPPORTED)
        if cla & 0x40 or cla & 0x03:
            raise SwError(SW.LOGICAL_CHANNEL_NOT_SUPPORTED)
        if cla & 0x0C:
            raise SwError(SW.SECURE_MESSAGING_NOT_SUPPORTED)
        if command.ins != Ins.GET_RESPONSE:
            self._pending = b""
        handler = self.handlers.get(command.ins)
        if command.ins == Ins.GET_RESPONSE:
            return self._get_response(command)
        if handler is None or command.ins & 0xF0 in (0x60, 0x90):
            self._chain = None
            raise SwError(SW.INS_NOT_SUPPORTED)
        chained = bool(cla & 0x10)
        if self._chain is not None:
            ins, p1, p2, buffer = self._chain
            if (ins, p1, p2) != (command.ins, command.p1, command.p2):
                self._chain = None
                raise SwError(SW.LAST_COMMAND_OF_CHAIN_EXPECTED)
            buffer += command.data
            if len(buffer) > MAX_CHAINED_DATA:
                self._chain = None
                raise SwError(SW.WRONG_LENGTH)
            if chained:
                return b"", SW.OK
            self._chain = None
            command = CommandAPDU(
                cla & ~0x10, command.ins, command.p1, command.p2, bytes(buffer), command.le
            )
        elif chained:
            self._chain = (command.ins, command.p1, command.p2, bytearray(command.data))
            return b"", SW.OK
        data, sw = handler(command)
        return self._respond(command, data, sw)

    def _respond(self, command: CommandAPDU, data: bytes, sw: int) -> tuple[bytes, int]:
        """Apply Le to a complete answer.

        Le absent, ``00`` or ``0000`` means "up to the maximum"; an explicit Le smaller than the
        answer gets the first Le bytes and 61xx for the rest, or 6Cxx (the exact length) on
        profiles with ``exact_le``.
        """
        if not data or sw != SW.OK:
            return data, sw
        le = command.le
        if le in (None, 256, 65536):
            limit = len(data) if le == 65536 else 256
        else:
            assert le is not None
            if self.exact_le and le != len(data) and len(data) <= 256:
                return b"", 0x6C00 | (len(data) & 0xFF)
            limit = le
        if len(data) <= limit:
            return data, SW.OK
        self._pending = data[limit:]
        return data[:limit], 0x6100 | (min(len(self._pending), 256) & 0xFF)

    def _get_response(self, command: CommandAPDU) -> tuple[bytes, int]:
        if command.p1 or command.p2:
            raise SwError(SW.INCORRECT_P1P2)
        if not self._pending:
            raise SwError(SW.CONDITIONS_NOT_SATISFIED)
        want = command.le or 256
        pending = self._pending
        if self.exact_le and want not in (256, 65536) and want > len(pending):
            return b"", 0x6C00 | (len(pending) & 0xFF)
        chunk, self._pending = pending[:want], pending[want:]
        if self._pending:
            return chunk, 0x6100 | (min(len(self._pending), 256) & 0xFF)
        return chunk, SW.OK

    # -- security --

    def require(self, access: Access) -> None:
        if access.rule == "never":
            raise SwError(SW.SECURITY_STATUS_NOT_SATISFIED)
        if access.rule == "pin" and access.pin_ref not in self.verified:
            raise SwError(SW.SECURITY_STATUS_NOT_SATISFIED)

    def is_verified(self, ref: int) -> bool:
        """Whether ``ref``'s PIN was verified since reset (through any reference sharing it)."""
        return ref in self.verified

    def _pin(self, p2: int) -> PinReference:
        ref = self.pins.get(p2)
        if ref is None:
            raise SwError(SW.REFERENCED_DATA_NOT_FOUND)
        return ref

    def _mark_verified(self, reference: PinReference) -> None:
        for r, other in self.pins.items():
            if other.pin is reference.pin:
                self.verified.add(r)

    def _unverify(self, reference: PinReference) -> None:
        for r, other in self.pins.items():
            if other.pin is reference.pin:
                self.verified.discard(r)

    # -- handlers: files --

    def _select(self, c: CommandAPDU) -> tuple[bytes, int]:
        if c.p2 & 0xF0 or c.p2 & 0x03 not in (0, 2):
            raise SwError(SW.INCORRECT_P1P2)
        node: EF | DF | None
        if c.p1 == 0x00:
            node = self._select_fid(c.data)
        elif c.p1 == 0x01:
            node = self._fid_child(c.data, DF)
        elif c.p1 == 0x02:
            node = self._fid_child(c.data, EF)
        elif c.p1 == 0x03:
            if c.data:
                raise SwError(SW.WRONG_LENGTH)
            node = self.current_df.parent
        elif c.p1 == 0x04:
            node = self._select_aid(c.data, next_occurrence=c.p2 & 0x03 == 0x02)
        elif c.p1 in (0x08, 0x09):
            node = self._select_path(c.data, from_mf=c.p1 == 0x08)
        else:
            raise SwError(SW.INCORRECT_P1P2)
        if node is None:
            raise SwError(SW.FILE_NOT_FOUND)
        if isinstance(node, DF):
            self.current_df, self.current_ef = node, None
        else:
            assert node.parent is not None
            self.current_df, self.current_ef = node.parent, node
        self.current_record = None
        kind = c.p2 & 0x0C
        if kind == 0x0C:
            return b"", SW.OK
        fcp = node.fcp()
        if kind == 0x04:
            return tlv.encode(0x62, fcp), SW.OK
        if kind == 0x08:
            return tlv.encode(0x64, b""), SW.OK
        return tlv.encode(0x6F, fcp), SW.OK

    def _select_fid(self, data: bytes) -> EF | DF | None:
        if not data or data == b"\x3f\x00":
            return self.mf
        if len(data) != 2:
            raise SwError(SW.WRONG_LENGTH)
        fid = int.from_bytes(data, "big")
        df = self.current_df
        if df.fid == fid:
            return df
        found = df.child(fid)
        if found is None and df.parent is not None:
            found = df.parent if df.parent.fid == fid else df.parent.child(fid)
        return found

    def _fid_child(self, data: bytes, kind: type[EF] | type[DF]) -> EF | DF | None:
        if len(data) != 2:
            raise SwError(SW.WRONG_LENGTH)
        found = self.current_df.child(int.from_bytes(data, "big"))
        return found if isinstance(found, kind) else None

    def _select_aid(self, aid: bytes, *, next_occurrence: bool) -> DF | None:
        if not aid:
            return self.mf
        if len(aid) > 16:
            raise SwError(SW.WRONG_LENGTH)
        matches = [df for df in self.mf.walk() if df.aid is not None and df.aid.startswith(aid)]
        if next_occurrence and self.current_df in matches:
            index = matches.index(self.current_df) + 1
            return matches[index] if index < len(matches) else None
        return matches[0] if matches else None

    def _select_path(self, path: bytes, *, from_mf: bool) -> EF | DF | None:
        if not path or len(path) % 2:
            raise SwError(SW.WRONG_LENGTH)
        fids = [int.from_bytes(path[i : i + 2], "big") for i in range(0, len(path), 2)]
        node: EF | DF | None = self.mf if from_mf else self.current_df
        if fids[0] == 0x3F00:
            node, fids = self.mf, fids[1:]
        for fid in fids:
            if not isinstance(node, DF):
                return None
            node = node.child(fid)
        return node

    def _target_ef(self, sfi: int | None) -> EF:
        if sfi:
            ef = self.current_df.ef_by_sfi(sfi)
            if ef is None:
                raise SwError(SW.FILE_NOT_FOUND)
            self.current_ef = ef
            self.current_record = None
            return ef
        if self.current_ef is None:
            raise SwError(SW.COMMAND_NOT_ALLOWED)
        return self.current_ef

    def _read_binary(self, c: CommandAPDU) -> tuple[bytes, int]:
        if c.data:
            raise SwError(SW.WRONG_LENGTH)
        if c.p1 & 0x80:
            if c.p1 & 0x60:
                raise SwError(SW.INCORRECT_P1P2)
            ef = self._target_ef(c.p1 & 0x1F)
            offset = c.p2
        else:
            ef = self._target_ef(None)
            offset = (c.p1 << 8) | c.p2
        if ef.data is None:
            raise SwError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        self.require(ef.read)
        if c.le is None:
            raise SwError(SW.WRONG_LENGTH)
        if offset >= len(ef.data) and not (offset == 0 and not ef.data):
            raise SwError(SW.WRONG_P1P2)
        chunk = bytes(ef.data[offset : offset + c.le])
        if len(chunk) < c.le and c.le not in (256, 65536):
            return chunk, SW.END_OF_FILE
        return chunk, SW.OK

    def _read_record(self, c: CommandAPDU) -> tuple[bytes, int]:
        if c.p2 & 0x07 != 0x04:
            raise SwError(SW.INCORRECT_P1P2)
        ef = self._target_ef(c.p2 >> 3)
        if ef.records is None:
            raise SwError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        self.require(ef.read)
        number = c.p1 or self.current_record
        if number is None or not 1 <= number <= len(ef.records):
            raise SwError(SW.RECORD_NOT_FOUND)
        self.current_record = number
        record = ef.records[number - 1]
        if c.le is None:
            raise SwError(SW.WRONG_LENGTH)
        if c.le not in (256, 65536) and c.le < len(record):
            return b"", 0x6C00 | (len(record) & 0xFF)
        return record, SW.OK

    # -- handlers: data objects --

    def data_object(self, tag: int, missing: int = SW.REFERENCED_DATA_NOT_FOUND) -> bytes:
        """The data object ``tag`` of the current DF, else of the card."""
        found = self.current_df.data_objects.get(tag) or self.data_objects.get(tag)
        if found is None:
            raise SwError(missing)
        value, access = found
        self.require(access)
        return value

    def _get_data(self, c: CommandAPDU) -> tuple[bytes, int]:
        if c.data:
            raise SwError(SW.WRONG_LENGTH)
        return self.data_object((c.p1 << 8) | c.p2 if c.p1 else c.p2), SW.OK

    def _get_data_odd(self, c: CommandAPDU) -> tuple[bytes, int]:
        """GET DATA with a tag list (ISO 7816-4: ``00 CB 3F FF 5C <tag>``)."""
        if (c.p1, c.p2) != (0x3F, 0xFF):
            raise SwError(SW.INCORRECT_P1P2)
        try:
            request = tlv.parse_one(c.data)
        except tlv.TlvError:
            raise SwError(SW.WRONG_DATA) from None
        if request.tag != 0x5C or not 1 <= len(request.value) <= 3:
            raise SwError(SW.WRONG_DATA)
        return self.data_object(int.from_bytes(request.value, "big"), SW.FILE_NOT_FOUND), SW.OK

    # -- handlers: PINs --

    def _verify(self, c: CommandAPDU) -> tuple[bytes, int]:
        if c.p1 == 0xFF and not c.data:  # ISO 7816-4:2013: reset the verification status
            self._unverify(self._pin(c.p2))
            return b"", SW.OK
        if c.p1 != 0x00:
            raise SwError(SW.INCORRECT_P1P2)
        reference = self._pin(c.p2)
        if not c.data:  # status query: no try spent
            if reference.pin.blocked:
                raise SwError(SW.AUTHENTICATION_METHOD_BLOCKED)
            if c.p2 in self.verified:
                return b"", SW.OK
            return b"", reference.pin.status_sw()
        if len(c.data) > 64:
            raise SwError(SW.WRONG_LENGTH)
        candidate = reference.strip(c.data)
        if reference.pin.check(candidate):
            self._mark_verified(reference)
            log.info("%s: PIN %02X verified", self.name, c.p2)
            return b"", SW.OK
        self._unverify(reference)
        log.info("%s: wrong PIN %02X, %d tries left", self.name, c.p2, reference.pin.tries_left)
        return b"", reference.pin.status_sw()

    def _new_value(self, reference: PinReference, secret: Secret, block: bytes) -> bytes:
        value = reference.strip(block)
        if not secret.min_length <= len(value) <= secret.max_length:
            raise SwError(SW.WRONG_DATA)
        return value

    def _change_reference_data(self, c: CommandAPDU) -> tuple[bytes, int]:
        reference = self._pin(c.p2)
        pin = reference.pin
        if c.p1 == 0x01:
            if c.p2 not in self.verified:
                raise SwError(SW.SECURITY_STATUS_NOT_SATISFIED)
            pin.value = self._new_value(reference, pin, c.data)
            return b"", SW.OK
        if c.p1 != 0x00:
            raise SwError(SW.INCORRECT_P1P2)
        split = len(pin.value)
        if len(c.data) <= split:
            raise SwError(SW.WRONG_LENGTH)
        old, new = c.data[:split], c.data[split:]
        if not pin.check(reference.strip(old)):
            self._unverify(reference)
            return b"", pin.status_sw()
        pin.value = self._new_value(reference, pin, new)
        self._mark_verified(reference)
        log.info("%s: PIN %02X changed", self.name, c.p2)
        return b"", SW.OK

    def _reset_retry_counter(self, c: CommandAPDU) -> tuple[bytes, int]:
        """P1 00: PUK then new PIN; 01: PUK only; 02: new PIN only and 03: nothing, both
        after the PUK was verified on its own reference (how IAS-ECC middleware does it)."""
        reference = self._pin(c.p2)
        puk = reference.puk
        if puk is None:
            raise SwError(SW.CONDITIONS_NOT_SATISFIED)
        if c.p1 not in (0x00, 0x01, 0x02, 0x03):
            raise SwError(SW.INCORRECT_P1P2)
        carries_puk = c.p1 in (0x00, 0x01)
        carries_pin = c.p1 in (0x00, 0x02)
        split = len(puk.value) if carries_puk else 0
        if (carries_puk and len(c.data) < split) or (carries_pin and len(c.data) <= split):
            raise SwError(SW.WRONG_LENGTH)
        if not carries_pin and len(c.data) != split:
            raise SwError(SW.WRONG_LENGTH)
        # The new PIN is checked before the PUK so that a typo in it costs no PUK try.
        pin = reference.pin
        new = self._new_value(reference, pin, c.data[split:]) if carries_pin else None
        if carries_puk:
            if not puk.check(reference.strip(c.data[:split])):
                log.info("%s: wrong PUK for %02X, %d tries left", self.name, c.p2, puk.tries_left)
                return b"", puk.status_sw()
        else:
            puk_refs = [r for r, other in self.pins.items() if other.pin is puk]
            if not any(r in self.verified for r in puk_refs):
                raise SwError(SW.SECURITY_STATUS_NOT_SATISFIED)
            for r in puk_refs:
                self.verified.discard(r)
        pin.tries_left = pin.max_tries
        if new is not None:
            pin.value = new
        self._unverify(reference)
        log.info("%s: PIN %02X unblocked", self.name, c.p2)
        return b"", SW.OK

    def _get_challenge(self, c: CommandAPDU) -> tuple[bytes, int]:
        if c.p1 or c.p2:
            raise SwError(SW.INCORRECT_P1P2)
        if c.le is None or c.data:
            raise SwError(SW.WRONG_LENGTH)
        self.last_challenge = os.urandom(min(c.le, 256))
        return self.last_challenge, SW.OK
