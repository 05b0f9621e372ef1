"""PKCS#15 (ISO/IEC 7816-15) files of a mock CPx card, DER-encoded by hand.

Only what a CPS3 carries: ODF, TokenInfo with ``supportedAlgorithms`` (OpenSC's IAS-ECC binding
takes the card's algorithm references from there, the CPx PrKDF lacks them), one AODF with the
PIN and its PUK, a PrKDF with the two RSA keys, a CDF with their certificates and a DODF for
the holder data file. Labels are the CPS Cryptolib's, so middleware shows what it shows for a
real card.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cardkit import tlv

# PKCS#11 mechanisms named by AlgorithmInfo.algorithm
CKM_RSA_PKCS = 0x0001
CKM_SHA1_RSA_PKCS = 0x0006
CKM_SHA256_RSA_PKCS = 0x0040
CKM_SHA_1 = 0x0220
CKM_SHA256 = 0x0250

# AlgorithmInfo.supportedOperations bits
OP_COMPUTE_SIGNATURE = 1
OP_DECIPHER = 5
OP_HASH = 6

# KeyUsageFlags bits
USAGE_DECRYPT = 1
USAGE_SIGN = 2
USAGE_NON_REPUDIATION = 9

# PinFlags bits
PIN_CASE_SENSITIVE = 0
PIN_INITIALIZED = 4
PIN_UNBLOCKING = 6

ASCII_NUMERIC = 1


def integer(value: int) -> bytes:
    """DER INTEGER (non-negative): two's complement, minimal, with a 00 before a high bit."""
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return tlv.encode(0x02, body)


def bits(*positions: int) -> bytes:
    """DER BIT STRING with the named bits set (bit 0 is the first, most significant, bit)."""
    if not positions:
        return tlv.encode(0x03, b"\x00")
    size = max(positions) // 8 + 1
    value = bytearray(size)
    for bit in positions:
        value[bit // 8] |= 0x80 >> (bit % 8)
    unused = 7 - max(positions) % 8
    return tlv.encode(0x03, bytes([unused]) + bytes(value))


def utf8(text: str) -> bytes:
    return tlv.encode(0x0C, text.encode("utf-8"))


def octets(value: bytes) -> bytes:
    return tlv.encode(0x04, value)


def seq(*parts: bytes) -> bytes:
    return tlv.encode(0x30, b"".join(parts))


def path(value: bytes) -> bytes:
    """A PKCS#15 Path: SEQUENCE { path OCTET STRING }."""
    return seq(octets(value))


@dataclass(frozen=True)
class Algorithm:
    """One AlgorithmInfo: the card's own reference (``algRef``) for a PKCS#11 mechanism."""

    reference: int
    mechanism: int
    operations: tuple[int, ...]
    card_ref: int

    def der(self) -> bytes:
        return seq(
            integer(self.reference),
            integer(self.mechanism),
            tlv.encode(0x05, b""),  # parameters: NULL, as for RSA
            bits(*self.operations),
            integer(self.card_ref),
        )


#: The IAS-ECC algorithm references of a CPS3 (OpenSC's card-iasecc.c uses the same values).
CPX_ALGORITHMS = (
    Algorithm(1, CKM_RSA_PKCS, (OP_COMPUTE_SIGNATURE,), 0x02),
    Algorithm(2, CKM_RSA_PKCS, (OP_DECIPHER,), 0x0A),
    Algorithm(3, CKM_SHA1_RSA_PKCS, (OP_COMPUTE_SIGNATURE,), 0x12),
    Algorithm(4, CKM_SHA256_RSA_PKCS, (OP_COMPUTE_SIGNATURE,), 0x42),
    Algorithm(5, CKM_SHA_1, (OP_HASH,), 0x10),
    Algorithm(6, CKM_SHA256, (OP_HASH,), 0x40),
)


def token_info(serial: bytes, manufacturer: str, label: str) -> bytes:
    return seq(
        integer(0),
        octets(serial),
        utf8(manufacturer),
        tlv.encode(0x80, label.encode("utf-8")),  # label [0] IMPLICIT UTF8String
        bits(),  # tokenflags: none (not read-only in the PKCS#15 sense, no login required)
        tlv.encode(0xA2, b"".join(a.der() for a in CPX_ALGORITHMS)),
    )


def odf(entries: Iterable[tuple[int, bytes]]) -> bytes:
    """ODF: ``[tag] Path`` per directory file (A0 PrKDF, A4 CDF, A7 DODF, A8 AODF)."""
    return b"".join(tlv.encode(tag, path(where)) for tag, where in entries)


@dataclass(frozen=True)
class Pin:
    label: str
    auth_id: bytes
    reference: int
    min_length: int
    stored_length: int
    max_length: int
    unblocking: bool = False
    #: The authId of the object that unblocks this one (the PUK), as OpenSC links them.
    unblocked_by: bytes | None = None

    def der(self) -> bytes:
        common = [utf8(self.label), bits()]  # flags: neither private nor modifiable
        if self.unblocked_by is not None:
            common.append(octets(self.unblocked_by))
        flags = [PIN_CASE_SENSITIVE, PIN_INITIALIZED]
        if self.unblocking:
            flags.append(PIN_UNBLOCKING)
        attributes = seq(
            bits(*flags),
            tlv.encode(0x0A, bytes([ASCII_NUMERIC])),
            integer(self.min_length),
            integer(self.stored_length),
            integer(self.max_length),
            tlv.encode(0x80, self.reference.to_bytes(1, "big")),  # pinReference [0]
            tlv.encode(0x04, b"\xff"),  # padChar
        )
        return seq(seq(*common), seq(octets(self.auth_id)), tlv.encode(0xA1, attributes))


@dataclass(frozen=True)
class PrivateKey:
    label: str
    key_id: bytes
    usage: tuple[int, ...]
    reference: int
    modulus_bits: int
    auth_id: bytes
    where: bytes  # the DF holding the key's SDO

    def der(self) -> bytes:
        common = seq(utf8(self.label), bits(0), octets(self.auth_id))  # private object
        # accessFlags: sensitive, alwaysSensitive, neverExtractable, local
        key = seq(octets(self.key_id), bits(*self.usage), bits(0, 2, 3, 4), integer(self.reference))
        rsa = seq(path(self.where), integer(self.modulus_bits))
        return seq(common, key, tlv.encode(0xA1, rsa))


@dataclass(frozen=True)
class Certificate:
    label: str
    cert_id: bytes
    where: bytes

    def der(self) -> bytes:
        return seq(
            seq(utf8(self.label)),
            seq(octets(self.cert_id)),
            tlv.encode(0xA1, seq(path(self.where))),
        )


@dataclass(frozen=True)
class DataObject:
    label: str
    application: str
    where: bytes

    def der(self) -> bytes:
        return seq(
            seq(utf8(self.label)),
            seq(utf8(self.application)),
            tlv.encode(0xA1, path(self.where)),
        )
