"""Web eID's authentication token (``web-eid:1.0``, and ``web-eid:1.1``'s extra field), made
and checked exactly as Web eID's own validators do, so that a CPS/CPE login through cardkit
passes a Java, .NET or PHP Web eID validator, and a genuine Web eID token passes cardkit's.

The token (JSON): ``unverifiedCertificate`` (standard base64 of the DER), ``algorithm`` (a JWA
name), ``signature`` (standard base64; for ECDSA the raw ``r || s``), ``format``,
``appVersion`` (a URL). What is signed is ``H(origin) || H(nonce)``, ``H`` being the hash of
the algorithm (SHA-256 for RS256, PS256, ES256; SHA-384 and SHA-512 for the 384 and 512
variants), the origin and the nonce hashed as the UTF-8 text they are (the nonce is not
decoded); that concatenation is then signed as any JWA signature is, hashed once more inside.

Facts from ``web-eid/web-eid-authtoken-validation-java`` (``AuthTokenSignatureValidator``,
``AuthTokenValidatorImpl``, ``SubjectCertificatePurposeValidator``,
``SubjectCertificatePolicyValidator``, ``AuthTokenValidationConfiguration``); the published
test tokens are checked in ``tests/auth/test_webeid.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from cardkit import __version__
from cardkit.auth.challenge import check_nonce as check_cardkit_nonce
from cardkit.auth.lenient import Certificate, asn1_of
from cardkit.auth.origin import OriginError, normalize_origin
from cardkit.auth.rejection import TokenRejected
from cardkit.auth.token import FORMAT as CARDKIT_FORMAT
from cardkit.errors import CardkitError
from cardkit.identity import fingerprint

FORMAT = "web-eid:1.0"
FORMAT_PREFIX = "web-eid:1"
#: Where cardkit's emitter says it comes from (Web eID's ``appVersion`` is a URL).
APP_VERSION = f"https://cardkit.invalid/releases/{__version__}"

#: Web eID's challenge nonces: 44 characters at least (32 random bytes in base64), 128 at most.
NONCE_MIN, NONCE_MAX = 44, 128
NONCE_PATTERN = r"[A-Za-z0-9+/=_-]+"

#: The certificate policies Web eID's validators refuse by default (Estonian Mobile-ID
#: certificates, which are not for authentication on the web through a card).
DEFAULT_DISALLOWED_POLICIES = frozenset(
    {
        "1.3.6.1.4.1.10015.1.3",
        "1.3.6.1.4.1.10015.1.3.1",
        "1.3.6.1.4.1.10015.1.3.2",
        "1.3.6.1.4.1.10015.1.3.3",
    }
)


class WebEidError(CardkitError, ValueError):
    """A Web eID token could not be made from these inputs (a nonce or an origin Web eID
    refuses)."""

    code = "nonce_invalid"
    http_status = 400


@dataclass(frozen=True)
class Scheme:
    hash: hashes.HashAlgorithm
    family: str  # "ES" | "PS" | "RS"

    @property
    def digest(self) -> Callable[[bytes], Any]:
        return {32: hashlib.sha256, 48: hashlib.sha384, 64: hashlib.sha512}[self.hash.digest_size]


#: The JWA algorithms Web eID's validators accept.
ALGORITHMS: dict[str, Scheme] = {
    f"{family}{bits}": Scheme(
        {256: hashes.SHA256(), 384: hashes.SHA384(), 512: hashes.SHA512()}[bits], family
    )
    for family in ("ES", "PS", "RS")
    for bits in (256, 384, 512)
}
#: The curve each ECDSA algorithm is defined on (RFC 7518 3.4).
CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}


def check_nonce(nonce: str) -> None:
    """A Web eID challenge nonce: 44 to 128 base64 characters (as Web eID's generator makes
    them and its validators accept them)."""
    if not NONCE_MIN <= len(nonce) <= NONCE_MAX or not re.fullmatch(NONCE_PATTERN, nonce):
        raise WebEidError(
            f"a Web eID nonce is {NONCE_MIN} to {NONCE_MAX} base64 characters, got {len(nonce)}"
        )


def check_login_nonce(nonce: str, wire_format: str) -> None:
    """The nonce as the token format asks it, checked before any PIN is asked: Web eID's (44
    to 128 base64 characters) or cardkit's (base64url, 32 random bytes or more)."""
    if wire_format == FORMAT:
        check_nonce(nonce)
    elif wire_format == CARDKIT_FORMAT:
        check_cardkit_nonce(nonce)
    else:
        raise WebEidError(f"token format is {CARDKIT_FORMAT} or {FORMAT}")


def signed_input(origin: str, nonce: str, algorithm: str) -> bytes:
    """``H(origin) || H(nonce)`` for ``algorithm``: what a Web eID token's signature covers
    (before the signature's own hashing). The origin is taken as given: Web eID's validator
    hashes the site origin it is configured with, ``https://host[:port]``."""
    digest = ALGORITHMS[algorithm].digest
    return bytes(digest(origin.encode("utf-8")).digest() + digest(nonce.encode("utf-8")).digest())


def verify(key: Any, algorithm: str, signature: bytes, data: bytes) -> None:
    """A JWA signature of ``data`` (``InvalidSignature`` if not); the key must be the one the
    algorithm is defined for. Raises ``ValueError`` for a key of the wrong kind."""
    scheme = ALGORITHMS[algorithm]
    if scheme.family == "ES":
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, CURVES[algorithm]
        ):
            raise ValueError(f"{algorithm} needs a key on {CURVES[algorithm].name}")
        size = (key.curve.key_size + 7) // 8
        if len(signature) != 2 * size:
            raise InvalidSignature
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(scheme.hash))
        return
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ValueError(f"{algorithm} needs an RSA key of 2048 bits at least")
    if scheme.family == "PS":
        pss = padding.PSS(padding.MGF1(scheme.hash), scheme.hash.digest_size)
        key.verify(signature, data, pss, scheme.hash)
    else:
        key.verify(signature, data, padding.PKCS1v15(), scheme.hash)


def raw_ecdsa(signature: bytes, key: ec.EllipticCurvePublicKey) -> bytes:
    """A DER ECDSA signature as JWA writes it: ``r || s``, each the curve's size."""
    r, s = decode_dss_signature(signature)
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def create_token(
    sign: Callable[[bytes], bytes],
    certificate: x509.Certificate,
    origin: str,
    nonce: str,
    algorithm: str = "RS256",
) -> dict[str, str]:
    """A ``web-eid:1.0`` token; ``sign(data)`` is the card's authentication key signing as
    ``algorithm`` says (for the CPS, RS256 through PKCS#11). Refuses a nonce or an origin
    Web eID would refuse before anything is signed."""
    check_nonce(nonce)
    if algorithm not in ALGORITHMS:
        raise WebEidError(f"algorithm must be one of {sorted(ALGORITHMS)}")
    signature = bytes(sign(signed_input(normalize_origin(origin), nonce, algorithm)))
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey) and signature[:1] == b"\x30":
        signature = raw_ecdsa(signature, key)
    return {
        "unverifiedCertificate": base64.b64encode(
            certificate.public_bytes(serialization.Encoding.DER)
        ).decode("ascii"),
        "algorithm": algorithm,
        "signature": base64.b64encode(signature).decode("ascii"),
        "format": FORMAT,
        "appVersion": APP_VERSION,
    }


def b64(text: str) -> bytes:
    """Standard base64, strictly (Web eID's fields)."""
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("not base64") from None


@dataclass(frozen=True, slots=True)
class WebEidHolder:
    """Who a Web eID token names, as its certificate's subject says (any country's card)."""

    common_name: str | None
    given_name: str | None
    surname: str | None
    serial_number: str | None  # the national identifier, e.g. PNOEE-38001085718
    country: str | None
    certificate_sha256: str

    @classmethod
    def from_certificate(cls, cert: Certificate) -> WebEidHolder:
        subject = asn1_of(cert).subject.native
        return cls(
            common_name=subject.get("common_name"),
            given_name=subject.get("given_name"),
            surname=subject.get("surname"),
            serial_number=subject.get("serial_number"),
            country=subject.get("country_name"),
            certificate_sha256=fingerprint(cert),
        )


def token_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A Web eID token's fields, checked, under the names the checks use."""
    for name in ("unverifiedCertificate", "algorithm", "signature"):
        if not isinstance(fields.get(name), str) or not fields[name]:
            raise TokenRejected("token_malformed", f"field {name!r} missing, empty or not a string")
    if "appVersion" in fields and not isinstance(fields["appVersion"], str):
        raise TokenRejected("token_malformed", "field 'appVersion' is not a string")
    signing = fields.get("unverifiedSigningCertificates")  # web-eid:1.1
    if signing is not None and not (
        isinstance(signing, list)
        and all(
            isinstance(item, dict)
            and isinstance(item.get("certificate"), str)
            and isinstance(item.get("supportedSignatureAlgorithms"), list)
            for item in signing
        )
    ):
        raise TokenRejected("token_malformed", "unverifiedSigningCertificates is malformed")
    return {
        "format": fields["format"],
        "certificate": fields["unverifiedCertificate"],
        "algorithm": fields["algorithm"],
        "signature": fields["signature"],
    }


def check_signature(
    cert: Certificate, algorithm: str, signature_b64: str, origin: str, nonce: str
) -> None:
    if algorithm not in ALGORITHMS:
        raise TokenRejected("algorithm_mismatch", f"unknown algorithm {algorithm!r}")
    try:
        signature = b64(signature_b64)
        data = signed_input(normalize_origin(origin), nonce, algorithm)
    except OriginError as exc:
        raise TokenRejected("origin_invalid", str(exc)) from None
    except ValueError:
        raise TokenRejected("token_malformed", "signature is not base64") from None
    try:
        verify(cert.public_key(), algorithm, signature, data)
    except ValueError as exc:
        raise TokenRejected("algorithm_mismatch", str(exc)) from None
    except InvalidSignature:
        raise TokenRejected("signature_invalid") from None
