"""The TEST PKI: reproducible, and shaped like IGC-Santé's."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from mocks import pki
from mocks.profiles import list_profiles, load_profile

CPS_PROFILES = [n for n in list_profiles() if "holder" in load_profile(n)]


def test_deterministic_keys() -> None:
    a = pki.deterministic_rsa_key("unit test", 1024)
    b = pki.deterministic_rsa_key("unit test", 1024)
    c = pki.deterministic_rsa_key("other label", 1024)
    assert a.private_numbers() == b.private_numbers()
    assert a.private_numbers() != c.private_numbers()
    assert a.key_size == 1024


def test_committed_end_entity_matches_generation() -> None:
    """One committed key, regenerated from its label: the files are what the command makes."""
    key, _ = pki.card_credentials("cps-doctor", "auth")
    assert key.private_numbers() == pki.deterministic_rsa_key("cps-doctor auth").private_numbers()


def _check_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    public = issuer.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert cert.signature_hash_algorithm is not None
    public.verify(
        cert.signature,
        cert.tbs_certificate_bytes,
        padding.PKCS1v15(),
        cert.signature_hash_algorithm,
    )
    assert cert.issuer == issuer.subject


def test_hierarchy() -> None:
    (root,) = pki.trust_anchors()
    personnes, organisations = pki.intermediates()
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == pki.ROOT
    ous = [a.value for a in root.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert ous == ["0002 187512751", "IGC-SANTE"]
    _check_signed_by(root, root)
    for ca in (personnes, organisations):
        _check_signed_by(ca, root)
        bc = ca.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
        assert isinstance(bc, x509.BasicConstraints) and bc.ca and bc.path_length == 0
        assert ca.public_key().key_size == 4096  # type: ignore[union-attr]


@pytest.mark.parametrize("profile", CPS_PROFILES)
def test_end_entities(profile: str) -> None:
    holder = load_profile(profile)["holder"]
    issuer = {"personnes": pki.intermediates()[0], "organisations": pki.intermediates()[1]}[
        holder["issuer"]
    ]
    for usage in ("auth", "sign"):
        key, cert = pki.card_credentials(profile, usage)
        _check_signed_by(cert, issuer)
        assert cert.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn == holder["cn"]
        ku = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
        assert isinstance(ku, x509.KeyUsage)
        assert ku.digital_signature is (usage == "auth")
        assert ku.content_commitment is (usage == "sign")
        aia = cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
        assert pki.OCSP_URL in str(aia.value)
        crl = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS)
        assert "http://127.0.0.1:" in str(crl.value)
        if usage == "auth":
            eku = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
            assert isinstance(eku, x509.ExtendedKeyUsage)
            assert ExtendedKeyUsageOID.CLIENT_AUTH in eku


def test_cps_subject_is_multivalued() -> None:
    _, cert = pki.card_credentials("cps-doctor", "auth")
    rdn = next(r for r in cert.subject.rdns if len(r) > 1)
    oids = {a.oid for a in rdn}
    assert oids == {NameOID.COMMON_NAME, NameOID.SURNAME, NameOID.GIVEN_NAME}
    title = cert.subject.get_attributes_for_oid(NameOID.TITLE)[0].value
    assert title == "Médecin"


def test_keys_are_marked_as_test_material() -> None:
    text = (pki.PKI_DIR / "cards" / "cps-doctor" / "auth.key.pem").read_text()
    assert text.startswith(pki.KEY_BANNER)
