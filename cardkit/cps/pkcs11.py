"""The CPS/CPE card through PKCS#11: which objects are its authentication key and
certificate, and the key logged in for a login token.

Key lookup does not depend on one middleware's labels: the CPS Cryptolib's labels and CKA_ID
conventions first, then the certificate read from the card itself when the caller has it,
then any certificate fit for client authentication (digitalSignature, and clientAuth when an
extended key usage is present) that has a private key with the same CKA_ID, a health
professional's before any other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from cardkit.cps.card import check_pin_format
from cardkit.pkcs11 import KeyNotFound, KeyPair, Module, Token

CPS_AUTH_CERT_LABEL = "Certificat d'Authentification CPS"
CPS_SIGN_CERT_LABEL = "Certificat de Signature CPS"
CPS_AUTH_KEY_LABEL = "CPS_PRIV_AUT"
CPS_SIGN_KEY_LABEL = "CPS_PRIV_SIG"
#: CKA_ID suffixes of the authentication key: CPS3 (AID + 02) and CPS4 (+ 20).
CPS_AUTH_ID_SUFFIXES = (b"\x02", b"\x20")


def find_authentication_key(token: Token, expected: x509.Certificate | None = None) -> KeyPair:
    """The authentication key pair (never the signature/non-repudiation one).

    Private keys are only visible after login on most tokens: log in first.
    """
    certs = token.certificates()
    keys = token.private_keys()
    if not keys:
        raise KeyNotFound("no private key visible (log in first?)")

    def key_for(cka_id: bytes, label: str | None = None) -> Any | None:
        for handle, kid, klabel in keys:
            if (label is not None and klabel == label) or (cka_id and kid == cka_id):
                return handle
        return None

    # 1. CPS Cryptolib conventions.
    for cert, cka_id, label in certs:
        if _cps_authentication_object(label, cka_id) and _fit_for_authentication(cert):
            handle = key_for(cka_id, CPS_AUTH_KEY_LABEL)
            if handle is not None:
                return KeyPair(handle, cert, cka_id, label)
    # 2. The certificate the card itself carries.
    if expected is not None:
        for cert, cka_id, label in certs:
            if cert == expected:
                handle = key_for(cka_id)
                if handle is not None:
                    return KeyPair(handle, cert, cka_id, label)
    # 3. Any certificate fit for client authentication, with its key; a health
    #    professional's (CN = identifier type + number) before any other.
    ranked = sorted(certs, key=lambda item: not _health_card_subject(item[0]))
    for cert, cka_id, label in ranked:
        if _fit_for_authentication(cert):
            handle = key_for(cka_id)
            if handle is not None:
                return KeyPair(handle, cert, cka_id, label)
    raise KeyNotFound("no authentication certificate with a private key on the token")


@contextmanager
def authentication_key(
    module: Module, reader: str, pin: str | None, expected: x509.Certificate | None = None
) -> Iterator[tuple[Token, KeyPair]]:
    """The card's authentication key, logged in with ``pin`` (``None``: the reader's PIN
    pad). The PIN's format is checked first: a malformed PIN never reaches the middleware
    (some count it as a wrong try). One C_Login; a wrong PIN is raised, never retried."""
    if pin is not None:
        check_pin_format(pin)
    with module.open(module.slot_for(reader).slot) as token:
        token.login(pin)
        yield token, find_authentication_key(token, expected)


def _cps_authentication_object(label: str, cka_id: bytes) -> bool:
    """The Cryptolib's label, or its CKA_ID convention (application id + 02 / 20)."""
    return label == CPS_AUTH_CERT_LABEL or (
        len(cka_id) > 1 and cka_id.endswith(CPS_AUTH_ID_SUFFIXES)
    )


def _health_card_subject(cert: x509.Certificate) -> bool:
    """CN laid out as on IGC-Santé end-entity certificates: 8/0/3 then the identifier."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(names[0].value) if names else ""
    return len(cn) > 8 and cn[0] in "803" and cn[1:3].isalnum()


def _fit_for_authentication(cert: x509.Certificate) -> bool:
    """digitalSignature set, and clientAuth among the extended key usages when there are any."""
    try:
        ku = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
        assert isinstance(ku, x509.KeyUsage)
        if not ku.digital_signature:
            return False
    except x509.ExtensionNotFound:
        pass
    try:
        eku = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
        assert isinstance(eku, x509.ExtendedKeyUsage)
        return ExtendedKeyUsageOID.CLIENT_AUTH in eku
    except x509.ExtensionNotFound:
        return True
