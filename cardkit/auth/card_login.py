"""A login token signed by the card in a reader, through PKCS#11: what the agent's signer
and ``cardkit token create`` do. Not imported by :mod:`cardkit.auth` itself: a portal, which
only validates tokens, never loads the card stack."""

from __future__ import annotations

from cryptography import x509

from cardkit.algorithms import Algorithm
from cardkit.auth.challenge import check_nonce
from cardkit.auth.origin import normalize_origin
from cardkit.auth.token import AuthToken, create_token
from cardkit.cps.pkcs11 import authentication_key
from cardkit.pkcs11 import Module


def create_login_token(  # noqa: PLR0917 - each argument is a distinct input of the login
    module: Module,
    reader: str,
    pin: str | None,
    origin: str,
    nonce: str,
    algorithm: Algorithm,
    expected: x509.Certificate | None = None,
) -> AuthToken:
    """A login token for ``origin``'s ``nonce``, signed by the card in ``reader``. The origin
    and the nonce are checked before any PIN is presented; one C_Login, never a retry."""
    origin = normalize_origin(origin)
    check_nonce(nonce)
    with authentication_key(module, reader, pin, expected) as (token, pair):
        return create_token(
            lambda data: token.sign(pair, data, algorithm),
            pair.certificate,
            origin,
            nonce,
            algorithm.value,
        )
