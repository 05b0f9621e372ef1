"""Mock CPS / CPE cards: one card, one key per usage, one PIN counter, two faces.

**CPS face** (what cardkit.cps talks to), shaped after the public ANS driver sources:
- MF: EF.DIR (2F00), EF.SN.ICC (D003, ANS issuer number ``80 25 00 00 01``), EF.CPS_DATA
  (2F10, holder data, cardkit mock encoding below), the IAS-ECC application
  ``E8 28 BD 08 0F 80 25 00 00 01 FF 00 10`` (DF 1000) with the authentication certificate
  (EF C000) and the signature certificate (EF C001), DER;
- PIN reference 01 (4 ASCII digits, unpadded) with its PUK;
- signing: MSE SET AT (``00 22 41 A4``, ``84 01 02``) + INTERNAL AUTHENTICATE (``00 88``) with
  a DigestInfo, for the authentication key (ref 02); MSE SET DST (``00 22 41 B6``,
  ``84 01 01``) + PSO HASH (``00 2A 90 A0``, ``90 20 <sha-256>``) + PSO COMPUTE DIGITAL
  SIGNATURE (``00 2A 9E 9A``) for the signature key (ref 01). RSA PKCS#1 v1.5, done by the
  card's private key; without a verified PIN the card answers 6982.

**PIV face** (what OpenSC's PIV driver talks to, NIST SP 800-73-4): application
``A0 00 00 03 08 00 00 10 00 01 00`` with discovery (7E), CCC (5FC107), CHUID (5FC102) and
the *same* authentication certificate as the PIV authentication object (5FC105, key 9A);
PIN reference 80 is the same PIN and counter as reference 01, FF-padded to 8 bytes;
GENERAL AUTHENTICATE (``87 07 9A``) performs the raw RSA private operation on the block
OpenSC has already padded.

**EF.CPS_DATA** (cardkit mock encoding; the real CPS2ter layout is not public): a ``A0``
template with ``80`` card type (CPS, CPE, CPE-TRANSPORT, CPA), ``81`` identifier type
(RPPS, ADELI, FINESS), ``82`` identifier, ``83`` surname, ``84`` given name, ``85``
profession, ``86`` profession code, ``87`` structure name, ``88`` structure identifier,
all UTF-8.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cardkit import tlv
from cardkit.algorithms import SHA256_DIGESTINFO_PREFIX
from cardkit.apdu import SW, CommandAPDU, Ins
from mocks.cards import DF, EF, Access, Iso7816Card, SwError, build_iso_card
from mocks.pki import card_credentials
from mocks.profiles import Profile

IAS_AID = bytes.fromhex("E828BD080F8025000001FF0010")
PIV_AID = bytes.fromhex("A000000308000010000100")
AUTH_KEY_REF, SIGN_KEY_REF = 0x02, 0x01
PIN_REF, PIV_PIN_REF = 0x01, 0x80
PIV_AUTH_KEY = 0x9A
PIV_RSA_2048 = 0x07

CPS_DATA_TAGS = {
    "card_type": 0x80,
    "identifier_type": 0x81,
    "identifier": 0x82,
    "surname": 0x83,
    "given_name": 0x84,
    "title": 0x85,
    "profession_code": 0x86,
    "organization": 0x87,
    "structure_id": 0x88,
}


@dataclass
class CardKey:
    ref: int
    usage: str  # "auth" or "sign"
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    piv_ref: int | None = None

    @property
    def size(self) -> int:
        return (self.key.key_size + 7) // 8


def raw_rsa(key: rsa.RSAPrivateKey, block: bytes) -> bytes:
    """The RSA private operation on a full-size block (what the chip does)."""
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    size = (n.bit_length() + 7) // 8
    if len(block) != size:
        raise SwError(SW.WRONG_LENGTH)
    m = int.from_bytes(block, "big")
    if m >= n:
        raise SwError(SW.WRONG_DATA)
    # CRT, as cards do.
    m1 = pow(m, numbers.dmp1, numbers.p)
    m2 = pow(m, numbers.dmq1, numbers.q)
    h = (numbers.iqmp * (m1 - m2)) % numbers.p
    return (m2 + h * numbers.q).to_bytes(size, "big")


def pkcs1_sign(key: rsa.RSAPrivateKey, payload: bytes) -> bytes:
    """PKCS#1 v1.5 signature block type 1 over ``payload`` (a DigestInfo), then raw RSA."""
    size = (key.key_size + 7) // 8
    if len(payload) > size - 11:
        raise SwError(SW.WRONG_LENGTH)
    block = b"\x00\x01" + b"\xff" * (size - 3 - len(payload)) + b"\x00" + payload
    return raw_rsa(key, block)


class CpsMockCard(Iso7816Card):
    """A CPS/CPE: the ISO engine plus security environments and signing."""

    keys: dict[int, CardKey]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.keys = {}
        super().__init__(*args, **kwargs)
        self.handlers[Ins.MANAGE_SECURITY_ENVIRONMENT] = self._mse
        self.handlers[Ins.PERFORM_SECURITY_OPERATION] = self._pso
        self.handlers[Ins.INTERNAL_AUTHENTICATE] = self._internal_authenticate
        self.handlers[Ins.GENERAL_AUTHENTICATE] = self._general_authenticate
        self.signatures = 0

    def on_reset(self) -> None:
        self.environment: dict[int, int] = {}  # template (A4/B6) -> key reference
        self.hash: bytes | None = None

    def _key(self, ref: int) -> CardKey:
        key = self.keys.get(ref)
        if key is None:
            raise SwError(SW.REFERENCED_DATA_NOT_FOUND)
        return key

    def _require_pin(self) -> None:
        if not self.is_verified(PIN_REF):
            raise SwError(SW.SECURITY_STATUS_NOT_SATISFIED)

    # MSE SET: 00 22 41 A4|B6 [84 01 ref] [80 01 algo]
    def _mse(self, c: CommandAPDU) -> tuple[bytes, int]:
        if c.p1 == 0xF3:  # RESTORE
            self.environment.clear()
            return b"", SW.OK
        if c.p1 != 0x41 or c.p2 not in (0xA4, 0xB6):
            raise SwError(SW.INCORRECT_P1P2)
        try:
            items = tlv.parse(c.data)
        except tlv.TlvError:
            raise SwError(SW.WRONG_DATA) from None
        ref_item = tlv.find(items, 0x84)
        if ref_item is None or len(ref_item.value) != 1:
            raise SwError(SW.WRONG_DATA)
        key = self._key(ref_item.value[0])
        if (c.p2 == 0xA4) != (key.usage == "auth"):
            raise SwError(SW.CONDITIONS_NOT_SATISFIED)  # wrong template for this key
        self.environment[c.p2] = key.ref
        return b"", SW.OK

    def _internal_authenticate(self, c: CommandAPDU) -> tuple[bytes, int]:
        if c.p1 or c.p2:
            raise SwError(SW.INCORRECT_P1P2)
        ref = self.environment.get(0xA4)
        if ref is None:
            raise SwError(SW.CONDITIONS_NOT_SATISFIED)
        self._require_pin()
        if not c.data:
            raise SwError(SW.WRONG_LENGTH)
        self.signatures += 1
        return pkcs1_sign(self._key(ref).key, c.data), SW.OK

    def _pso(self, c: CommandAPDU) -> tuple[bytes, int]:
        if (c.p1, c.p2) == (0x90, 0xA0):  # PSO HASH, hash computed outside: 90 20 <hash>
            item = _one(c.data, 0x90)
            if len(item) != 32:
                raise SwError(SW.WRONG_DATA)
            self.hash = item
            return b"", SW.OK
        if (c.p1, c.p2) == (0x9E, 0x9A):  # PSO COMPUTE DIGITAL SIGNATURE
            ref = self.environment.get(0xB6)
            if ref is None:
                raise SwError(SW.CONDITIONS_NOT_SATISFIED)
            self._require_pin()
            if c.data:
                payload = c.data  # a DigestInfo given directly
            elif self.hash is not None:
                payload = SHA256_DIGESTINFO_PREFIX + self.hash
            else:
                raise SwError(SW.CONDITIONS_NOT_SATISFIED)
            self.hash = None
            self.signatures += 1
            return pkcs1_sign(self._key(ref).key, payload), SW.OK
        raise SwError(SW.INCORRECT_P1P2)

    # PIV GENERAL AUTHENTICATE: 00 87 <alg> <key> 7C { 82 00, 81 <block> }
    def _general_authenticate(self, c: CommandAPDU) -> tuple[bytes, int]:
        if self.current_df.aid != PIV_AID:
            raise SwError(SW.CONDITIONS_NOT_SATISFIED)
        key = next((k for k in self.keys.values() if k.piv_ref == c.p2), None)
        if key is None:
            raise SwError(SW.REFERENCED_DATA_NOT_FOUND)
        if c.p1 != PIV_RSA_2048 or key.key.key_size != 2048:
            raise SwError(SW.INCORRECT_P1P2)
        try:
            template = tlv.parse_one(c.data)
            challenge = template.find(0x81) if template.tag == 0x7C else None
        except tlv.TlvError:
            raise SwError(SW.WRONG_DATA) from None
        if challenge is None:
            raise SwError(SW.WRONG_DATA)
        self._require_pin()
        self.signatures += 1
        signature = raw_rsa(key.key, challenge.value)
        return tlv.encode(0x7C, tlv.encode(0x82, signature)), SW.OK


def _one(data: bytes, tag: int) -> bytes:
    try:
        item = tlv.parse_one(data)
    except tlv.TlvError:
        raise SwError(SW.WRONG_DATA) from None
    if item.tag != tag:
        raise SwError(SW.WRONG_DATA)
    return item.value


def cps_data(holder: dict[str, Any]) -> bytes:
    """EF.CPS_DATA content for a profile's holder section (cardkit mock encoding)."""
    items = [
        (tag, str(holder[field]).encode("utf-8"))
        for field, tag in CPS_DATA_TAGS.items()
        if holder.get(field)
    ]
    return tlv.encode(0xA0, tlv.encode_all(items))


def _piv_object(tag: int, content: bytes) -> tuple[int, tuple[bytes, Access]]:
    return tag, (tlv.encode(0x53, content), Access())


def piv_application(auth: CardKey, serial: bytes) -> DF:
    """The PIV face: discovery, CCC, CHUID and the authentication certificate."""
    guid = hashlib.sha256(b"cardkit piv guid " + serial).digest()[:16]
    apt = tlv.encode(
        0x61,
        tlv.encode_all(
            [
                (0x4F, PIV_AID[5:]),
                (0x79, tlv.encode(0x4F, PIV_AID[:5])),
                (0x50, b"cardkit mock PIV"),
                (0xAC, tlv.encode_all([(0x80, bytes([PIV_RSA_2048])), (0x06, b"\x00")])),
            ]
        ),
    )
    discovery = tlv.encode(0x7E, tlv.encode_all([(0x4F, PIV_AID), (0x5F2F, b"\x40\x00")]))
    ccc = tlv.encode_all(
        [
            (0xF0, b"\xa0\x00\x00\x01\x16\xff\x02" + guid[:14]),
            (0xF1, b"\x21"),
            (0xF2, b"\x21"),
            (0xF3, b""),
            (0xF4, b"\x00"),
            (0xF5, b"\x10"),
            (0xF6, b""),
            (0xF7, b""),
            (0xFA, b""),
            (0xFB, b""),
            (0xFC, b""),
            (0xFD, b""),
            (0xFE, b""),
        ]
    )
    fascn = bytes.fromhex("D4E739DA739CED39CE739D836858210842108421C84210C3EB")
    chuid = tlv.encode_all(
        [(0x30, fascn), (0x34, guid), (0x35, b"20301231"), (0x3E, b""), (0xFE, b"")]
    )
    der = auth.certificate.public_bytes(serialization.Encoding.DER)
    cert = tlv.encode_all([(0x70, der), (0x71, b"\x00"), (0xFE, b"")])
    df = DF(0xA000, "DF.PIV", PIV_AID, select_response=apt)
    df.data_objects = dict(
        [
            (0x7E, (discovery, Access())),
            _piv_object(0x5FC107, ccc),
            _piv_object(0x5FC102, chuid),
            _piv_object(0x5FC105, cert),
        ]
    )
    return df


def build_cps_card(profile: Profile) -> CpsMockCard:
    card = build_iso_card(profile, CpsMockCard)
    name = profile["name"]
    for usage, ref, piv in (("auth", AUTH_KEY_REF, PIV_AUTH_KEY), ("sign", SIGN_KEY_REF, None)):
        key, cert = card_credentials(name, usage)
        card.keys[ref] = CardKey(ref, usage, key, cert, piv)
    ias = next((c for c in card.mf.walk() if c.aid == IAS_AID), None)
    if ias is None:
        ias = card.mf.add(DF(0x1000, "DF.IAS-ECC", IAS_AID))  # type: ignore[assignment]
    assert isinstance(ias, DF)
    for fid, ref in ((0xC000, AUTH_KEY_REF), (0xC001, SIGN_KEY_REF)):
        der = card.keys[ref].certificate.public_bytes(serialization.Encoding.DER)
        ias.add(EF(fid, f"EF.CERT.{card.keys[ref].usage.upper()}", data=bytearray(der)))
    card.mf.add(EF(0x2F10, "EF.CPS_DATA", data=bytearray(cps_data(profile["holder"]))))
    sn = card.mf.child(0xD003)
    serial = bytes(sn.data or b"") if isinstance(sn, EF) else name.encode()
    card.mf.add(piv_application(card.keys[AUTH_KEY_REF], serial))
    return card
