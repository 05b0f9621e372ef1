"""cardkit.pkcs11 against SoftHSM2: login, key lookup, every algorithm, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from cardkit.cps.pkcs11 import find_authentication_key
from cardkit.errors import WrongPin
from cardkit.pkcs11 import Algorithm, KeyNotFound, MechanismNotSupported, Module, Token
from cardkit.pkcs11.discovery import ModuleNotFound, find_module, search_list
from cardkit.pkcs11.token import ecdsa_raw_to_der
from mocks.pki import card_credentials
from mocks.softhsm import EC_ID, SoftHsm, ec_credentials


def open_token(module: Module, label: str) -> Token:
    slot = next(s for s in module.slots() if s.token_label == label)
    return module.open(slot.slot)


def verify(public: object, signature: bytes, data: bytes, algorithm: Algorithm) -> None:
    if algorithm is Algorithm.ES256:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        return
    assert isinstance(public, rsa.RSAPublicKey)
    pad = (
        padding.PKCS1v15()
        if algorithm is Algorithm.RS256
        else padding.PSS(padding.MGF1(hashes.SHA256()), 32)
    )
    public.verify(signature, data, pad, hashes.SHA256())


def test_discovery(monkeypatch: pytest.MonkeyPatch, softhsm: SoftHsm) -> None:
    monkeypatch.setenv("CARDKIT_PKCS11_MODULE", str(softhsm.module))
    assert find_module().path == softhsm.module
    monkeypatch.setenv("CARDKIT_PKCS11_MODULE", "/nonexistent/module.so")
    with pytest.raises(ModuleNotFound):
        find_module()
    monkeypatch.delenv("CARDKIT_PKCS11_MODULE")
    assert find_module(prefer="softhsm2").kind == "softhsm2"
    windows = [c.path.name for c in search_list("win32")]
    assert "cps3_pkcs11_w64.dll" in windows and "cps3_pkcs11_w32.dll" in windows
    assert any(
        c.path == Path("/opt/santesocial/CPS/lib/libcps3_pkcs11_lux.so")
        for c in search_list("linux")
    )
    assert any(c.path.name == "libcps3_pkcs11_osx.dylib" for c in search_list("darwin"))


def test_login(module: Module) -> None:
    with open_token(module, "cps-doctor") as token:
        with pytest.raises(WrongPin):
            token.login("0000")
        token.login("1234")
        assert token.logged_in


def test_keys_are_hidden_before_login(module: Module) -> None:
    with open_token(module, "cps-doctor") as token, pytest.raises(KeyNotFound):
        find_authentication_key(token)


@pytest.mark.parametrize("profile", ["cps-doctor", "cpe-transport"])
def test_cps_labels_find_the_authentication_key(module: Module, profile: str) -> None:
    pin = {"cps-doctor": "1234", "cpe-transport": "2222"}[profile]
    _, auth_cert = card_credentials(profile, "auth")
    with open_token(module, profile) as token:
        token.login(pin)
        pair = find_authentication_key(token)
        assert pair.certificate == auth_cert  # never the signature certificate
        assert pair.label == "Certificat d'Authentification CPS"


@pytest.mark.parametrize("algorithm", [Algorithm.RS256, Algorithm.PS256])
def test_rsa_signatures_verify(module: Module, algorithm: Algorithm) -> None:
    with open_token(module, "cps-doctor") as token:
        token.login("1234")
        pair = find_authentication_key(token)
        signature = token.sign(pair, b"origin and nonce", algorithm)
        verify(pair.certificate.public_key(), signature, b"origin and nonce", algorithm)


def test_ecdsa_hashes_outside_and_converts_to_der(module: Module) -> None:
    _, ec_cert = ec_credentials("cps-doctor")
    with open_token(module, "cps-doctor") as token:
        token.login("1234")
        assert 0x1044 not in token.mechanisms  # CKM_ECDSA_SHA256: SoftHSM2 lacks it
        pair = token.key_for_certificate(ec_cert)
        assert pair.cka_id == EC_ID
        signature = token.sign(pair, b"data", Algorithm.ES256)
        assert signature[0] == 0x30  # DER SEQUENCE, not r || s
        verify(ec_cert.public_key(), signature, b"data", Algorithm.ES256)
        with pytest.raises(MechanismNotSupported):
            token.sign(pair, b"data", Algorithm.RS256)


def test_der_conversion() -> None:
    der = ecdsa_raw_to_der(bytes([1]) * 32 + bytes([2]) * 32)
    assert der.startswith(b"\x30")
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(der)
    assert r == int.from_bytes(bytes([1]) * 32, "big") and s == int.from_bytes(
        bytes([2]) * 32, "big"
    )


def test_one_session_many_threads(module: Module) -> None:
    with open_token(module, "cps-doctor") as token:
        token.login("1234")
        pair = find_authentication_key(token)
        public = pair.certificate.public_key()
        errors: list[BaseException] = []

        def work(index: int) -> None:
            try:
                for round_ in range(5):
                    data = f"{index}-{round_}".encode()
                    verify(public, token.sign(pair, data, Algorithm.RS256), data, Algorithm.RS256)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert not any(t.is_alive() for t in threads)


def test_lookup_without_cps_labels(module: Module) -> None:
    """A token naming nothing the CPS way: key usage decides, never the signature key."""
    _, auth_cert = card_credentials("cps-nurse", "auth")
    _, sign_cert = card_credentials("cps-nurse", "sign")
    with open_token(module, "plain") as token:
        token.login("4321")
        assert sign_cert in [c for c, _, _ in token.certificates()]
        pair = find_authentication_key(token)
        assert pair.certificate == auth_cert and pair.label == "certificate two"
        signature = token.sign(pair, b"x", Algorithm.RS256)
        verify(auth_cert.public_key(), signature, b"x", Algorithm.RS256)


def test_lookup_prefers_the_card_certificate(module: Module) -> None:
    _, ec_cert = ec_credentials("cps-nurse")
    with open_token(module, "plain") as token:
        token.login("4321")
        # The EC certificate is also fit for client authentication; naming it picks it.
        assert find_authentication_key(token, expected=ec_cert).certificate == ec_cert


def test_pinpad_login_needs_a_protected_path(module: Module) -> None:
    """login(None) is the PIN pad path; a token without one refuses before C_Login."""
    from cardkit.pkcs11 import Pkcs11Error

    with open_token(module, "cps-doctor") as token:
        assert not token.protected_authentication_path
        with pytest.raises(Pkcs11Error, match="PIN pad"):
            token.login(None)
