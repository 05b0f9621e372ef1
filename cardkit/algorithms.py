"""Signature algorithms, named as in JOSE and in cardkit's token format.

The bottom of the stack: the token format and its validator (portal side, no card stack),
the PKCS#11 layer, the card application and the mock cards all speak of the same three
algorithms and the same DigestInfo, so they are defined once, here.
"""

from __future__ import annotations

import hashlib
from enum import Enum


class Algorithm(Enum):
    """What a login token may be signed with."""

    RS256 = "RS256"  # RSA PKCS#1 v1.5, SHA-256
    PS256 = "PS256"  # RSA-PSS, SHA-256, MGF1-SHA-256, salt 32
    ES256 = "ES256"  # ECDSA P-256, SHA-256, DER-encoded signature


#: DER of ``DigestInfo { sha256, NULL }`` up to the digest (PKCS#1 v1.5 / RFC 8017 9.2).
SHA256_DIGESTINFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def sha256_digest_info(data: bytes) -> bytes:
    """What a card that pads but does not hash (CKM_RSA_PKCS, INTERNAL AUTHENTICATE) signs."""
    return SHA256_DIGESTINFO_PREFIX + hashlib.sha256(data).digest()
