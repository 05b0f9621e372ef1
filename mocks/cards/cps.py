"""Mock CPS / CPE cards: an IAS-ECC "CPx" card that middleware cannot tell from a CPS3.

One card, one key per usage, one PIN counter, reached the same way by cardkit's own path and
by OpenSC's IAS-ECC driver (which binds the CPS3 ATR as "IAS/ECC CPx"):

- MF (AID ``80 25 00 00 01 FF 01 00``): EF.ATR (2F01: card capabilities, pre-issuing data, the
  MF AID and the IAS-ECC I/O buffer sizes in tag E0), EF.DIR (2F00), EF.SN.ICC (D003, SFI 1C,
  card number in tag 5A), EF.CPS_DATA (2F10, holder data, cardkit mock encoding below);
- DF 0001: the RSA private key SDOs (``BF 90 01`` signature, ``BF 90 02`` authentication),
  answered to GET DATA ``00 CB 3F FF 4D ...`` with their DOCP (size, access rules);
- the PIN (CHV SDO ``BF 81 01``, 4 ASCII digits) and its PUK (``BF 81 02``, 8 digits), whose
  policy and counters GET DATA reports; VERIFY on either reference; RESET RETRY COUNTER with
  the PUK in the command or after VERIFY of the PUK;
- DF 1000 (AID ``E8 28 BD 08 0F 80 25 00 00 01 FF 00 10``): the certificates (C000, C001) and a
  PKCS#15 application (ODF, TokenInfo with the card's algorithm references, AODF, PrKDF,
  CDF, DODF) carrying the CPS Cryptolib's labels (:mod:`mocks.cards.pkcs15`);
- signing: MSE SET AT (``00 22 41 A4``, ``84 01 [80|]02``) + INTERNAL AUTHENTICATE (``00 88``)
  over a DigestInfo with the authentication key; MSE SET HT/DST (``22 41 AA``/``22 41 B6``,
  ``84 01 [80|]01``) + PSO HASH (``90 20 <sha-256>`` or ``90 00 80 <n> <message>``) + PSO
  COMPUTE DIGITAL SIGNATURE with the signature key; MSE SET CT (``22 41 B8``) + PSO DECIPHER
  with the authentication key. RSA PKCS#1 v1.5 padding is the card's; without a verified PIN
  the card answers 6982.

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
from mocks.cards import pkcs15 as p15
from mocks.cards.build import build_iso_card
from mocks.cards.iso7816 import DF, EF, Iso7816Card, SwError
from mocks.pki import card_credentials
from mocks.profiles import Profile

IAS_AID = bytes.fromhex("E828BD080F8025000001FF0010")
MF_AID = bytes.fromhex("8025000001FF0100")
KEY_DF = 0x0001
AUTH_KEY_REF, SIGN_KEY_REF = 0x02, 0x01
PIN_REF, PUK_REF = 0x01, 0x02
LOCAL = 0x80  # IAS-ECC "local object" bit of a key reference
SHA1_DIGESTINFO_PREFIX = bytes.fromhex("3021300906052b0e03021a05000414")

# IAS-ECC algorithm references (MSE tag 80) and the hashes they name
ALGO_RSA_PKCS, ALGO_RSA_DECIPHER = 0x02, 0x0A
ALGO_SHA1, ALGO_SHA256 = 0x10, 0x40
HASHES = {ALGO_SHA1: "sha1", ALGO_SHA256: "sha256"}
DIGEST_INFO = {"sha1": SHA1_DIGESTINFO_PREFIX, "sha256": SHA256_DIGESTINFO_PREFIX}

# SDO classes, and the data-object tags GET DATA may ask for
SDO_CHV, SDO_RSA_PRIVATE = 0x01, 0x10
TAG_DOCP, TAG_CHV, TAG_PRIVATE_KEY = 0xA0, 0x7F41, 0x7F48

# Security condition bytes (IAS-ECC SCB): always, never, PIN verified (user authentication)
ALWAYS, NEVER, USER = 0x00, 0xFF, 0x10 | PIN_REF

# Access mode bytes with their conditions, in AMB bit order (0x40 first)
#   CHV: change, verify, reset retry counter, -, -, put data, get data
AccessRules = tuple[int, tuple[int, ...]]
CHV_ACCESS: AccessRules = (0x73, (ALWAYS, ALWAYS, 0x10 | PUK_REF, NEVER, ALWAYS))
PUK_ACCESS: AccessRules = (0x73, (NEVER, ALWAYS, NEVER, NEVER, ALWAYS))
#   RSA key: PSO signature, internal authenticate, PSO decipher, generate, -, put, get
KEY_ACCESS: dict[str, AccessRules] = {
    "auth": (0x7B, (NEVER, USER, USER, NEVER, NEVER, ALWAYS)),
    "sign": (0x7B, (USER, NEVER, NEVER, NEVER, NEVER, ALWAYS)),
}

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

# The CPS Cryptolib's object labels (see cardkit.pkcs11.token)
LABELS = {
    "auth": ("CPS_PRIV_AUT", "Certificat d'Authentification CPS"),
    "sign": ("CPS_PRIV_SIG", "Certificat de Signature CPS"),
}
CERT_FID = {"auth": 0xC000, "sign": 0xC001}
PIN_LABEL = "Code porteur de la carte CPX"
PUK_LABEL = "Code de deblocage de la carte CPX"
PIN_AUTH_ID, PUK_AUTH_ID = b"\x01", b"\x02"
# PKCS#15 directory files in DF 1000
ODF, TOKEN_INFO, AODF, PRKDF, CDF, DODF = 0x5031, 0x5032, 0x7001, 0x7002, 0x7004, 0x7005


@dataclass
class CardKey:
    ref: int
    usage: str  # "auth" or "sign"
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def size(self) -> int:
        return (self.key.key_size + 7) // 8

    @property
    def key_id(self) -> bytes:
        """PKCS#15 iD (and so CKA_ID): the application's AID and the key reference."""
        return IAS_AID + bytes([self.ref])


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
    if not payload or len(payload) > size - 11:
        raise SwError(SW.WRONG_LENGTH)
    block = b"\x00\x01" + b"\xff" * (size - 3 - len(payload)) + b"\x00" + payload
    return raw_rsa(key, block)


def pkcs1_decipher(key: rsa.RSAPrivateKey, cryptogram: bytes) -> bytes:
    """Raw RSA, then PKCS#1 v1.5 block type 2 removed; a bad block is 6A80, as on cards."""
    block = raw_rsa(key, cryptogram)
    separator = block.find(b"\x00", 2)
    if block[:2] != b"\x00\x02" or separator < 10:
        raise SwError(SW.WRONG_DATA)
    return block[separator + 1 :]


def _access(amb: int, scbs: tuple[int, ...]) -> bytes:
    """DOCP access rules: ``A1 { 8C <AMB> <one SCB per bit set> }``."""
    return tlv.encode(0xA1, tlv.encode(0x8C, bytes([amb, *scbs])))


class CpsMockCard(Iso7816Card):
    """A CPS/CPE: the ISO engine plus IAS-ECC SDOs, security environments and signing."""

    keys: dict[int, CardKey]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.keys = {}
        super().__init__(*args, **kwargs)
        self.handlers[Ins.MANAGE_SECURITY_ENVIRONMENT] = self._mse
        self.handlers[Ins.PERFORM_SECURITY_OPERATION] = self._pso
        self.handlers[Ins.INTERNAL_AUTHENTICATE] = self._internal_authenticate
        self.handlers[Ins.GET_DATA_ODD] = self._get_sdo
        self.signatures = 0

    def on_reset(self) -> None:
        # template (A4 AT, B6 DST, B8 CT, AA HT) -> (key reference, algorithm reference)
        self.environment: dict[int, tuple[int, int | None]] = {}
        self.hash: tuple[str, bytes] | None = None

    def _key(self, ref: int) -> CardKey:
        key = self.keys.get(ref & ~LOCAL)
        if key is None:
            raise SwError(SW.REFERENCED_DATA_NOT_FOUND)
        return key

    def _require_pin(self) -> None:
        if not self.is_verified(PIN_REF):
            raise SwError(SW.SECURITY_STATUS_NOT_SATISFIED)

    # -- files --

    def _select(self, c: CommandAPDU) -> tuple[bytes, int]:
        # The CPx driver selects the MF by file identifier (P1 01/02 with 3F00): IAS-ECC
        # cards answer with the MF, where ISO 7816-4 would look for a child named 3F00.
        if c.p1 in (0x01, 0x02) and c.data == b"\x3f\x00":
            c = CommandAPDU(c.cla, c.ins, 0x00, c.p2, c.data, c.le)
        return super()._select(c)

    # -- security data objects (GET DATA 00 CB 3F FF 4D ...) --

    def _get_sdo(self, c: CommandAPDU) -> tuple[bytes, int]:
        """``4D { 70 { BF <class|80> <ref> { <tag> 80 } } }``: one data object of one SDO."""
        if (c.p1, c.p2) != (0x3F, 0xFF) or c.data[:1] != b"\x4d":
            return self._get_data_odd(c)
        try:
            header = tlv.parse_one(c.data)
            template = tlv.parse_one(header.value) if header.tag == 0x4D else None
            sdo = tlv.parse_one(template.value) if template and template.tag == 0x70 else None
        except tlv.TlvError:
            raise SwError(SW.WRONG_DATA) from None
        if sdo is None or sdo.tag >> 16 != 0xBF or len(sdo.value) not in (2, 3):
            raise SwError(SW.WRONG_DATA)
        if sdo.value[-1] != 0x80:
            raise SwError(SW.WRONG_DATA)
        sdo_class, ref = (sdo.tag >> 8) & 0x7F, sdo.tag & 0x3F
        wanted = int.from_bytes(sdo.value[:-1], "big")
        content = self._sdo_content(sdo_class, ref, wanted)
        return tlv.encode(0x70, tlv.encode(sdo.tag | 0x8000, content)), SW.OK

    def _sdo_content(self, sdo_class: int, ref: int, wanted: int) -> bytes:
        if sdo_class == SDO_CHV:
            reference = self.pins.get(ref)
            if reference is None or self.current_df is not self.mf:
                raise SwError(SW.REFERENCED_DATA_NOT_FOUND)
            secret = reference.pin
            if wanted == TAG_CHV:
                return tlv.encode(
                    TAG_CHV,
                    tlv.encode_all(
                        [(0x80, bytes([secret.max_length])), (0x81, bytes([secret.min_length]))]
                    ),
                )
            if wanted == TAG_DOCP:
                amb, scbs = CHV_ACCESS if reference.puk is not None else PUK_ACCESS
                return tlv.encode(
                    TAG_DOCP,
                    tlv.encode_all(
                        [
                            (0x9A, bytes([secret.max_tries])),
                            (0x9B, bytes([secret.tries_left])),
                        ]
                    )
                    + _access(amb, scbs),
                )
            raise SwError(SW.WRONG_DATA)
        if sdo_class == SDO_RSA_PRIVATE:
            key = self.keys.get(ref)
            if key is None or self.current_df.fid != KEY_DF:
                raise SwError(SW.REFERENCED_DATA_NOT_FOUND)
            if wanted == TAG_PRIVATE_KEY:
                raise SwError(SW.WRONG_DATA)  # a private key has no readable part
            if wanted == TAG_DOCP:
                amb, scbs = KEY_ACCESS[key.usage]
                size = tlv.encode(0x80, key.size.to_bytes(2, "big"))
                return tlv.encode(TAG_DOCP, size + _access(amb, scbs))
            raise SwError(SW.WRONG_DATA)
        raise SwError(SW.REFERENCED_DATA_NOT_FOUND)

    # -- security environment: 00 22 41 A4|B6|B8|AA { [84 01 ref] [80 01 algo] } --

    def _mse(self, c: CommandAPDU) -> tuple[bytes, int]:
        if c.p1 == 0xF3:  # RESTORE
            self.environment.clear()
            return b"", SW.OK
        if c.p1 != 0x41 or c.p2 not in (0xA4, 0xB6, 0xB8, 0xAA):
            raise SwError(SW.INCORRECT_P1P2)
        try:
            items = tlv.parse(c.data)
        except tlv.TlvError:
            raise SwError(SW.WRONG_DATA) from None
        ref_item, algo_item = tlv.find(items, 0x84), tlv.find(items, 0x80)
        if algo_item is not None and len(algo_item.value) != 1:
            raise SwError(SW.WRONG_DATA)
        algorithm = algo_item.value[0] if algo_item is not None else None
        if c.p2 == 0xAA:  # hash template: the algorithm only
            if algorithm not in HASHES:
                raise SwError(SW.WRONG_DATA)
            self.environment[0xAA] = (0, algorithm)
            return b"", SW.OK
        if ref_item is None or len(ref_item.value) != 1:
            raise SwError(SW.WRONG_DATA)
        key = self._key(ref_item.value[0])
        wants = "sign" if c.p2 == 0xB6 else "auth"
        if key.usage != wants:
            raise SwError(SW.CONDITIONS_NOT_SATISFIED)  # wrong template for this key
        allowed = {
            0xA4: (ALGO_RSA_PKCS,),
            0xB8: (ALGO_RSA_DECIPHER,),
            0xB6: (ALGO_RSA_PKCS | ALGO_SHA1, ALGO_RSA_PKCS | ALGO_SHA256),
        }[c.p2]
        if algorithm is not None and algorithm not in allowed:
            raise SwError(SW.WRONG_DATA)
        self.environment[c.p2] = (key.ref, algorithm)
        return b"", SW.OK

    def _environment_key(self, template: int) -> CardKey:
        chosen = self.environment.get(template)
        if chosen is None:
            raise SwError(SW.CONDITIONS_NOT_SATISFIED)
        return self._key(chosen[0])

    def _internal_authenticate(self, c: CommandAPDU) -> tuple[bytes, int]:
        if c.p1 or c.p2:
            raise SwError(SW.INCORRECT_P1P2)
        key = self._environment_key(0xA4)
        self._require_pin()
        self.signatures += 1
        return pkcs1_sign(key.key, c.data), SW.OK

    def _pso(self, c: CommandAPDU) -> tuple[bytes, int]:
        if (c.p1, c.p2) == (0x90, 0xA0):
            self.hash = self._pso_hash(c.data)
            return b"", SW.OK
        if (c.p1, c.p2) == (0x9E, 0x9A):  # COMPUTE DIGITAL SIGNATURE
            key = self._environment_key(0xB6)
            self._require_pin()
            if c.data:
                payload = c.data  # a DigestInfo given directly
            elif self.hash is not None:
                name, digest = self.hash
                payload = DIGEST_INFO[name] + digest
            else:
                raise SwError(SW.CONDITIONS_NOT_SATISFIED)
            self.hash = None
            self.signatures += 1
            return pkcs1_sign(key.key, payload), SW.OK
        if (c.p1, c.p2) == (0x80, 0x86):  # DECIPHER: 81 (PKCS#1 padding) || cryptogram
            key = self._environment_key(0xB8)
            self._require_pin()
            if c.data[:1] != b"\x81":
                raise SwError(SW.WRONG_DATA)
            return pkcs1_decipher(key.key, c.data[1:]), SW.OK
        raise SwError(SW.INCORRECT_P1P2)

    def _pso_hash(self, data: bytes) -> tuple[str, bytes]:
        """``90 <digest>`` (hashed outside), or ``90 00 80 <n> <message>`` (hashed here).

        IAS-ECC also allows ``90 28 <intermediate state> <counter> 80 <n> <last block>``, a
        hash begun outside and finished by the card; that form is refused (6A80).
        """
        algorithm = self.environment.get(0xAA, (0, ALGO_SHA256))[1]
        name = HASHES[algorithm or ALGO_SHA256]
        try:
            items = tlv.parse(data, skip_padding=False)
        except tlv.TlvError:
            raise SwError(SW.WRONG_DATA) from None
        first = items[0] if items else None
        if first is None or first.tag != 0x90:
            raise SwError(SW.WRONG_DATA)
        if len(items) == 1 and len(first.value) == hashlib.new(name).digest_size:
            return name, first.value
        if len(items) == 2 and not first.value and items[1].tag == 0x80:
            return name, hashlib.new(name, items[1].value).digest()
        raise SwError(SW.WRONG_DATA)


def cps_data(holder: dict[str, Any]) -> bytes:
    """EF.CPS_DATA content for a profile's holder section (cardkit mock encoding)."""
    items = [
        (tag, str(holder[field]).encode("utf-8"))
        for field, tag in CPS_DATA_TAGS.items()
        if holder.get(field)
    ]
    return tlv.encode(0xA0, tlv.encode_all(items))


def ef_atr() -> bytes:
    """EF.ATR as a CPS3 stores it: a leading category byte (80) that OpenSC skips for CPx,
    card service data, pre-issuing data (>= 4 bytes), card capabilities, the MF AID and the
    IAS-ECC I/O buffer sizes (send, send under SM, receive, receive under SM)."""
    sizes = b"".join(tlv.encode(0x02, size.to_bytes(2, "big")) for size in (255, 255, 256, 256))
    return b"\x80" + tlv.encode_all(
        [
            (0x43, b"\xb8"),
            (0x46, bytes.fromhex("04B0ECC1")),
            (0x47, bytes.fromhex("940180")),
            (0x4F, MF_AID),
            (0xE0, sizes),
        ]
    )


def token_label(holder: dict[str, Any]) -> str:
    """The token label middleware shows: the card type and the holder's name."""
    name = " ".join(str(holder[f]) for f in ("given_name", "surname") if holder.get(f))
    return f"{holder.get('card_type', 'CPS')} {name or holder.get('organization', '')}".strip()


def pkcs15_application(card: CpsMockCard, profile: Profile, app: DF) -> None:
    """The PKCS#15 files of the IAS-ECC application, from the card's keys, PIN and holder."""
    root = b"\x3f\x00" + app.fid.to_bytes(2, "big")
    pin = card.pins[PIN_REF].pin
    puk = card.pins[PUK_REF].pin if PUK_REF in card.pins else None
    auth_objects = [
        p15.Pin(
            PIN_LABEL,
            PIN_AUTH_ID,
            PIN_REF,
            pin.min_length,
            pin.max_length,
            pin.max_length,
            unblocked_by=PUK_AUTH_ID if puk else None,
        )
    ]
    if puk is not None:
        auth_objects.append(
            p15.Pin(
                PUK_LABEL,
                PUK_AUTH_ID,
                PUK_REF,
                puk.min_length,
                puk.max_length,
                puk.max_length,
                unblocking=True,
            )
        )
    keys, certificates = [], []
    for key in sorted(card.keys.values(), key=lambda k: k.usage):
        key_label, cert_label = LABELS[key.usage]
        usage = (
            (p15.USAGE_DECRYPT, p15.USAGE_SIGN)
            if key.usage == "auth"
            else (p15.USAGE_NON_REPUDIATION,)
        )
        where = b"\x3f\x00" + KEY_DF.to_bytes(2, "big")
        keys.append(
            p15.PrivateKey(
                key_label, key.key_id, usage, LOCAL | key.ref, key.key.key_size, PIN_AUTH_ID, where
            )
        )
        cert_path = root + CERT_FID[key.usage].to_bytes(2, "big")
        certificates.append(p15.Certificate(cert_label, key.key_id, cert_path))
    data_objects = [p15.DataObject("CPS_DATA", "CPS", b"\x3f\x00\x2f\x10")]
    holder = profile["holder"]
    sn = card.mf.child(0xD003)
    serial = tlv.parse_one(bytes(sn.data)).value if isinstance(sn, EF) and sn.data else b""

    def at(fid: int) -> bytes:
        return root + fid.to_bytes(2, "big")

    files = {
        ODF: p15.odf([(0xA0, at(PRKDF)), (0xA4, at(CDF)), (0xA7, at(DODF)), (0xA8, at(AODF))]),
        TOKEN_INFO: p15.token_info(serial, "ANS", token_label(holder)),
        AODF: b"".join(o.der() for o in auth_objects),
        PRKDF: b"".join(k.der() for k in keys),
        CDF: b"".join(c.der() for c in certificates),
        DODF: b"".join(d.der() for d in data_objects),
    }
    for fid, content in files.items():
        app.add(EF(fid, f"EF.{fid:04X}", data=bytearray(content)))


def build_cps_card(profile: Profile) -> CpsMockCard:
    card = build_iso_card(profile, CpsMockCard)
    name = profile["name"]
    for usage, ref in (("auth", AUTH_KEY_REF), ("sign", SIGN_KEY_REF)):
        key, cert = card_credentials(name, usage)
        card.keys[ref] = CardKey(ref, usage, key, cert)
    card.mf.aid = MF_AID
    card.mf.add(EF(0x2F01, "EF.ATR", data=bytearray(ef_atr())))
    card.mf.add(EF(0x2F10, "EF.CPS_DATA", data=bytearray(cps_data(profile["holder"]))))
    card.mf.add(DF(KEY_DF, "DF.KEYS"))
    app = next((c for c in card.mf.walk() if c.aid == IAS_AID), None)
    if app is None:
        app = card.mf.add(DF(0x1000, "DF.IAS-ECC", IAS_AID))  # type: ignore[assignment]
    assert isinstance(app, DF)
    for usage, fid in CERT_FID.items():
        holder_key = next(k for k in card.keys.values() if k.usage == usage)
        der = holder_key.certificate.public_bytes(serialization.Encoding.DER)
        app.add(EF(fid, f"EF.CERT.{usage.upper()}", data=bytearray(der)))
    pkcs15_application(card, profile, app)
    return card
