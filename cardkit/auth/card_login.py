"""A login token signed by the card in a reader, through PKCS#11: what the agent's signer
and ``cardkit token create`` do. Not imported by :mod:`cardkit.auth` itself: a portal, which
only validates tokens, never loads the card stack."""

from __future__ import annotations

from cryptography import x509

from cardkit.algorithms import Algorithm
from cardkit.auth import webeid
from cardkit.auth.origin import normalize_origin
from cardkit.auth.token import FORMAT, AuthToken, create_token
from cardkit.cps.pkcs11 import authentication_key
from cardkit.pkcs11 import Module


def create_login_token(  # noqa: PLR0917 - each is a distinct input of the login
    module: Module,
    reader: str,
    pin: str | None,
    origin: str,
    nonce: str,
    algorithm: Algorithm,
    expected: x509.Certificate | None = None,
    wire_format: str = FORMAT,
) -> dict[str, str]:
    """A login token for ``origin``'s ``nonce``, signed by the card in ``reader``, as JSON
    fields: ``cardkit:1`` (:class:`AuthToken`) or ``web-eid:1.0``
    (:mod:`cardkit.auth.webeid`), whose signed input is the same for RS256. The origin and
    the nonce are checked before any PIN is presented; one C_Login, never a retry."""
    origin = normalize_origin(origin)
    webeid.check_login_nonce(nonce, wire_format)
    with authentication_key(module, reader, pin, expected) as (token, pair):

        def sign(data: bytes) -> bytes:
            return token.sign(pair, data, algorithm)

        if wire_format == webeid.FORMAT:
            return webeid.create_token(sign, pair.certificate, origin, nonce, algorithm.value)
        created: AuthToken = create_token(sign, pair.certificate, origin, nonce, algorithm.value)
        return created.to_dict()
