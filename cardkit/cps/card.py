"""The CPS/CPE card application over APDUs (the card's own face, not PKCS#11).

Every multi-APDU sequence runs inside one PC/SC transaction. PINs are checked for format
before anything is sent (a malformed PIN must not cost a try), never retried, and never
logged: the APDU layer redacts VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER data.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum

from cryptography import x509

from cardkit import errors, tlv
from cardkit.algorithms import SHA256_DIGESTINFO_PREFIX
from cardkit.apdu import (
    SW,
    ApduChannel,
    CommandAPDU,
    FileNotFound,
    Ins,
)
from cardkit.atr import CardFamily, require_family
from cardkit.errors import CardError, InvalidPinFormat, PinBlocked, UnknownCard, WrongPin
from cardkit.identity import CardType, Identity, identity_from_certificate
from cardkit.transport.base import CardConnection, ReaderBackend
from cardkit.transport.readers import open_card

IAS_AID = bytes.fromhex("E828BD080F8025000001FF0010")
ANS_ISSUER = bytes.fromhex("8025000001")
EF_SN_ICC = b"\xd0\x03"
EF_CPS_DATA = b"\x2f\x10"
EF_CERT = {"auth": b"\xc0\x00", "sign": b"\xc0\x01"}
KEY_REF = {"auth": 0x02, "sign": 0x01}
PIN_REF = 0x01
PIN_LENGTH = 4
PUK_LENGTH = 8

_CPS_DATA_FIELDS = {
    0x80: "card_type",
    0x81: "identifier_type",
    0x82: "identifier",
    0x83: "surname",
    0x84: "given_name",
    0x85: "profession",
    0x86: "profession_code",
    0x87: "structure",
    0x88: "structure_id",
}


class NotACpsCard(UnknownCard):
    """The card is not a CPS/CPE (by its ATR or its applications)."""


class CpsDataError(CardError):
    """The card's data is damaged or inconsistent."""

    code = "cps_data"


class KeyUsage(Enum):
    AUTHENTICATION = "auth"
    SIGNATURE = "sign"


@dataclass(frozen=True, slots=True)
class PinStatus:
    tries_left: int | None  # None once verified (the card does not say then)
    verified: bool
    blocked: bool

    def to_dict(self) -> dict[str, object]:
        return {"tries_left": self.tries_left, "verified": self.verified, "blocked": self.blocked}


@dataclass(frozen=True, slots=True)
class CardCertificates:
    authentication: x509.Certificate
    signature: x509.Certificate | None


def check_pin_format(pin: str, length: int = PIN_LENGTH, what: str = "PIN") -> bytes:
    if len(pin) != length or not pin.isascii() or not pin.isdigit():
        raise InvalidPinFormat(f"a {what} has {length} digits")
    return pin.encode("ascii")


class CpsCard:
    """A CPS, CPE or CPA in a reader."""

    def __init__(self, connection: CardConnection) -> None:
        identity = require_family(connection.atr, CardFamily.CPS, NotACpsCard, "CPS/CPE")
        self.connection = connection
        self.generation = identity.name
        self.channel = ApduChannel(connection)

    # --- reading ---

    def _select_mf(self) -> None:
        self.channel.send(CommandAPDU(0x00, Ins.SELECT, 0x00, 0x0C, b"\x3f\x00"))

    def _select_app(self) -> None:
        try:
            self.channel.send(CommandAPDU(0x00, Ins.SELECT, 0x04, 0x0C, IAS_AID))
        except FileNotFound:
            raise NotACpsCard("the card has no IAS-ECC CPS application") from None

    def _read_ef(self, fid: bytes) -> bytes:
        self.channel.send(CommandAPDU(0x00, Ins.SELECT, 0x02, 0x0C, fid))
        return self.channel.read_binary()

    def serial(self) -> str:
        """The card number from EF.SN.ICC (hex): IAS-ECC stores it as a primary account
        number (tag 5A, ISO/IEC 7812) that starts with the ANS issuer number."""
        with self.connection.transaction():
            self._select_mf()
            data = self._read_ef(EF_SN_ICC)
        try:
            item = tlv.parse_one(data)
        except tlv.TlvError:
            item = None
        if item is None or item.tag != 0x5A or not item.value.startswith(ANS_ISSUER):
            raise CpsDataError("EF.SN.ICC is not a card number starting with the ANS issuer")
        return item.value.hex().upper()

    def certificates(self) -> CardCertificates:
        with self.connection.transaction():
            self._select_app()
            auth_der = self._read_ef(EF_CERT["auth"])
            try:
                sign_der: bytes | None = self._read_ef(EF_CERT["sign"])
            except FileNotFound:
                sign_der = None
        try:
            auth = x509.load_der_x509_certificate(auth_der)
            sign = x509.load_der_x509_certificate(sign_der) if sign_der else None
        except ValueError as exc:
            raise CpsDataError(f"a certificate on the card does not parse: {exc}") from exc
        return CardCertificates(auth, sign)

    def card_data(self) -> dict[str, str]:
        """Holder data from EF.CPS_DATA (cardkit mock encoding); empty when absent."""
        with self.connection.transaction():
            self._select_mf()
            try:
                raw = self._read_ef(EF_CPS_DATA)
            except FileNotFound:
                return {}
        try:
            template = tlv.parse_one(raw)
            return {
                _CPS_DATA_FIELDS[item.tag]: item.value.decode("utf-8")
                for item in template.children()
                if item.tag in _CPS_DATA_FIELDS
            }
        except (tlv.TlvError, UnicodeDecodeError) as exc:
            raise CpsDataError(f"EF.CPS_DATA is damaged: {exc}") from exc

    def identity(self, certificate: x509.Certificate | None = None) -> Identity:
        """The holder, from the authentication certificate (read from the card unless the
        caller already has it: reading it costs a dozen APDUs); card data refines the type."""
        identity = identity_from_certificate(certificate or self.certificates().authentication)
        declared = self.card_data().get("card_type")
        if declared and declared in CardType._value2member_map_:
            return dataclasses.replace(identity, card_type=CardType(declared))
        return identity

    def card_type(self) -> CardType:
        return self.identity().card_type

    # --- PIN ---

    def pin_status(self) -> PinStatus:
        """Tries left, read with an empty VERIFY: no try is spent."""
        response = self.channel.transmit(CommandAPDU(0x00, Ins.VERIFY, 0x00, PIN_REF))
        if response.sw == SW.OK:
            return PinStatus(None, verified=True, blocked=False)
        if response.sw == SW.AUTHENTICATION_METHOD_BLOCKED:
            return PinStatus(0, verified=False, blocked=True)
        if response.sw & 0xFFF0 == 0x63C0:
            return PinStatus(response.sw & 0x0F, verified=False, blocked=False)
        response.check()
        raise CpsDataError(f"unexpected PIN status {response.sw:04X}")  # pragma: no cover

    def verify_pin(self, pin: str) -> None:
        """Present the PIN once. Raises WrongPin(tries_left) or PinBlocked; never retries."""
        data = check_pin_format(pin)
        self.channel.send(CommandAPDU(0x00, Ins.VERIFY, 0x00, PIN_REF, data))

    def change_pin(self, old: str, new: str) -> None:
        data = check_pin_format(old) + check_pin_format(new, what="new PIN")
        self.channel.send(CommandAPDU(0x00, Ins.CHANGE_REFERENCE_DATA, 0x00, PIN_REF, data))

    def unblock_pin(self, puk: str, new_pin: str) -> None:
        """RESET RETRY COUNTER with the PUK; the PIN gets its tries back and ``new_pin``."""
        data = check_pin_format(puk, PUK_LENGTH, "PUK") + check_pin_format(new_pin, what="new PIN")
        try:
            self.channel.send(CommandAPDU(0x00, Ins.RESET_RETRY_COUNTER, 0x00, PIN_REF, data))
        except WrongPin as exc:
            raise errors.WrongPuk(
                f"wrong PUK, {exc.tries_left} tries left", exc.tries_left
            ) from None
        except PinBlocked:
            raise errors.PukBlocked("the PUK is blocked") from None

    # --- signing with the card's own commands ---

    def sign_digest(self, digest: bytes, usage: KeyUsage = KeyUsage.AUTHENTICATION) -> bytes:
        """RSA PKCS#1 v1.5 over a SHA-256 digest, by the card (the PIN must be verified).

        Authentication: MSE SET AT + INTERNAL AUTHENTICATE with the DigestInfo; signature:
        MSE SET DST + PSO HASH + PSO COMPUTE DIGITAL SIGNATURE.
        """
        if len(digest) != 32:
            raise ValueError("a SHA-256 digest has 32 bytes")
        ref = bytes([0x84, 0x01, KEY_REF[usage.value]])
        with self.connection.transaction():
            self._select_app()
            if usage is KeyUsage.AUTHENTICATION:
                self.channel.send(
                    CommandAPDU(0x00, Ins.MANAGE_SECURITY_ENVIRONMENT, 0x41, 0xA4, ref)
                )
                return self.channel.send(
                    CommandAPDU(
                        0x00,
                        Ins.INTERNAL_AUTHENTICATE,
                        0,
                        0,
                        SHA256_DIGESTINFO_PREFIX + digest,
                        256,
                    )
                )
            self.channel.send(CommandAPDU(0x00, Ins.MANAGE_SECURITY_ENVIRONMENT, 0x41, 0xB6, ref))
            self.channel.send(
                CommandAPDU(
                    0x00, Ins.PERFORM_SECURITY_OPERATION, 0x90, 0xA0, tlv.encode(0x90, digest)
                )
            )
            return self.channel.send(
                CommandAPDU(0x00, Ins.PERFORM_SECURITY_OPERATION, 0x9E, 0x9A, le=256)
            )

    def sign(self, data: bytes, usage: KeyUsage = KeyUsage.AUTHENTICATION) -> bytes:
        return self.sign_digest(hashlib.sha256(data).digest(), usage)


@contextmanager
def open_cps(backend: ReaderBackend, reader: str) -> Iterator[CpsCard]:
    """The CPS/CPE application of the card in ``reader``, disconnected on the way out."""
    with open_card(backend, reader) as connection:
        yield CpsCard(connection)


def tries_left(backend: ReaderBackend, reader: str) -> int | None:
    """PIN tries left, read from the card's own face (an empty VERIFY: no try spent); None
    when the card cannot say (gone, not a CPS face)."""
    try:
        with open_cps(backend, reader) as card:
            return card.pin_status().tries_left
    except errors.CardkitError:
        return None


def with_tries_left(error: WrongPin, backend: ReaderBackend, reader: str) -> WrongPin:
    """``error`` with the tries left filled in from the card when the middleware hid them."""
    if error.tries_left is not None:
        return error
    left = tries_left(backend, reader)
    text = "wrong PIN" if left is None else f"wrong PIN, {left} tries left"
    return type(error)(text, left, sw=error.sw)
