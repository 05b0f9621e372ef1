"""Certificates as national eID cards really carry them.

Some cards' certificates break a DER rule that does not matter to their meaning: a Finnish
test card's says NULL parameters for its ECDSA signature algorithm (RFC 5758 says absent), a
Belgian one encodes a default value. ``cryptography`` refuses to load such a certificate at
all; Web eID's Java validator (BouncyCastle) and asn1crypto (which the path validation
uses) read it. :class:`LenientCertificate` is such a certificate read by asn1crypto, with the
few things a Web eID validation needs of it: its DER, its validity, its public key. Its
signature is checked by the path validation as any certificate's is, so nothing is trusted
for being lenient; only where the validator needs ``cryptography`` itself (building an OCSP
request) is it refused.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization


class LenientCertificate:
    def __init__(self, der: bytes) -> None:
        try:
            parsed = asn1_x509.Certificate.load(der, strict=True)
            validity = parsed["tbs_certificate"]["validity"]
            self._not_before: dt.datetime = validity["not_before"].native
            self._not_after: dt.datetime = validity["not_after"].native
            self._key = serialization.load_der_public_key(parsed.public_key.dump())
            parsed.subject.native  # noqa: B018 - parsed now: a broken subject fails here
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not an X.509 certificate: {exc}") from None
        self._der = der

    def public_bytes(self, encoding: serialization.Encoding) -> bytes:
        if encoding is not serialization.Encoding.DER:
            raise ValueError("only DER")
        return self._der

    @property
    def not_valid_before_utc(self) -> dt.datetime:
        return self._not_before

    @property
    def not_valid_after_utc(self) -> dt.datetime:
        return self._not_after

    def public_key(self) -> Any:
        return self._key


Certificate = x509.Certificate | LenientCertificate


def load_certificate(der: bytes) -> Certificate:
    """``cryptography``'s certificate, or a :class:`LenientCertificate` when only its strict
    parser refuses it; ``ValueError`` when nothing can read it."""
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return LenientCertificate(der)


@functools.lru_cache(maxsize=256)
def asn1_of(cert: Certificate) -> asn1_x509.Certificate:
    """The same certificate for asn1crypto and pyhanko; parsed once per certificate (a
    portal sees the same few cards again and again)."""
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
