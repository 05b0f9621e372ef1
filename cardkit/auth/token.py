"""The authentication token: what the agent returns and the portal validates.

Signed data: ``SHA-256(origin) || SHA-256(nonce)`` (as Web eID does), with the origin in its
normalised form and the nonce as the base64url text the portal issued. The token carries
neither: the validator rebuilds both from its own state, so a valid signature proves the
card holder answered *this* portal's *this* challenge.

JSON: ``{"format": "cardkit:1", "certificate": <base64 DER>, "algorithm": "RS256" | "PS256" |
"ES256", "signature": <base64>, "issued_at": <ISO 8601 UTC>, "app_version": <str>}``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cardkit import __version__
from cardkit.algorithms import Algorithm
from cardkit.auth.challenge import check_nonce
from cardkit.auth.origin import normalize_origin

FORMAT = "cardkit:1"


def signed_data(origin: str, nonce: str) -> bytes:
    """The 64 bytes a token signs; ``origin`` is normalised here, on both sides."""
    return (
        hashlib.sha256(normalize_origin(origin).encode("utf-8")).digest()
        + hashlib.sha256(nonce.encode("ascii")).digest()
    )


@dataclass(frozen=True, slots=True)
class AuthToken:
    certificate: bytes  # DER
    algorithm: str
    signature: bytes
    issued_at: str
    app_version: str = __version__
    format: str = FORMAT

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "certificate": base64.b64encode(self.certificate).decode("ascii"),
            "algorithm": self.algorithm,
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "issued_at": self.issued_at,
            "app_version": self.app_version,
        }


def create_token(
    sign: Any, certificate: x509.Certificate, origin: str, nonce: str, algorithm: str = "RS256"
) -> AuthToken:
    """Build a token; ``sign(data) -> signature`` is the card's authentication key (through
    PKCS#11 in the agent). Refuses short nonces and non-https origins before signing."""
    check_nonce(nonce)
    if algorithm not in Algorithm._value2member_map_:
        raise ValueError(f"algorithm must be one of {[a.value for a in Algorithm]}")
    signature = sign(signed_data(origin, nonce))
    return AuthToken(
        certificate=certificate.public_bytes(serialization.Encoding.DER),
        algorithm=algorithm,
        signature=bytes(signature),
        issued_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    )
