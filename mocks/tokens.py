"""Tokens signed with the TEST PKI's keys in software: what a mock card would return, without
a card, for validator tests and benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardkit.auth import Challenge, MemoryNonceStore, create_token

ORIGIN = "https://portal.example"


@dataclass
class IssuedLogin:
    """A login token signed over a challenge, with the nonce store that issued it."""

    token: str
    nonce: str
    store: MemoryNonceStore


def rsa_signer(key: rsa.RSAPrivateKey, algorithm: str = "RS256") -> Callable[[bytes], bytes]:
    pad: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if algorithm == "RS256"
        else padding.PSS(padding.MGF1(hashes.SHA256()), 32)
    )
    return lambda data: key.sign(data, pad, hashes.SHA256())


def issue(
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    *,
    origin: str = ORIGIN,
    algorithm: str = "RS256",
) -> IssuedLogin:
    """A challenge issued by a portal, and the token a card holder would return for it."""
    challenge = Challenge.new()
    store = MemoryNonceStore()
    store.issue(challenge)
    token = create_token(rsa_signer(key, algorithm), cert, origin, challenge.nonce, algorithm)
    return IssuedLogin(token.to_json(), challenge.nonce, store)
