"""Web eID tokens: the genuine test tokens published with Web eID's Java validator
(``tests/auth/webeid/vectors.json`` names the repository, commit and file of each, and the
CA certificates beside it come from its ``src/test/resources/``), validated by cardkit at
their recorded dates with OCSP off, and refused once mutated."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from cardkit.auth import (
    Challenge,
    MemoryNonceStore,
    RevocationPolicy,
    TokenRejected,
    Validator,
    ValidatorConfig,
    WebEidHolder,
    webeid,
)
from cardkit.auth.lenient import LenientCertificate, load_certificate

HERE = Path(__file__).with_name("webeid")
VECTORS = json.loads((HERE / "vectors.json").read_text(encoding="utf-8"))
VALID = {v["name"]: v for v in VECTORS["valid"]}


def certificate(name: str) -> x509.Certificate:
    data = (HERE / name).read_bytes()
    if data.startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def validator(vector: dict[str, Any]) -> Validator:
    anchors = [certificate(name) for name in vector["trusted"]]
    return Validator(ValidatorConfig(anchors, revocation=RevocationPolicy.OFF))


def at(vector: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(vector["date"]).replace(tzinfo=dt.UTC)


def store_with(nonce: str) -> MemoryNonceStore:
    store = MemoryNonceStore()
    store.issue(Challenge(nonce, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)))
    return store


def check(vector: dict[str, Any], token: str | None = None, **changes: Any) -> WebEidHolder:
    origin = changes.get("origin", vector["origin"])
    nonce = changes.get("nonce", vector["nonce"])
    when = changes.get("now", at(vector))
    return validator(vector).validate_web_eid(
        token or vector["token"], origin, nonce, store_with(nonce), now=when
    )


@pytest.mark.parametrize("name", sorted(VALID))
def test_genuine_tokens_are_accepted(name: str) -> None:
    vector = VALID[name]
    holder = check(vector)
    assert holder.country in {"EE", "BE", "FI"}
    assert holder.certificate_sha256
    fields = json.loads(vector["token"])
    assert fields["format"] == webeid.FORMAT


def test_the_holder_is_who_the_certificate_names() -> None:
    holder = check(VALID["estonian-es384"])
    assert holder.surname == "JÕEORG" and holder.given_name == "JAAK-KRISTJAN"
    assert holder.serial_number == "PNOEE-38001085718" and holder.country == "EE"


def mutate(token: str, field: str, value: str) -> str:
    fields = json.loads(token)
    fields[field] = value
    return json.dumps(fields)


def flipped(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("name", sorted(VALID))
def test_mutated_tokens_are_refused(name: str) -> None:
    vector = VALID[name]
    fields = json.loads(vector["token"])

    def reason(**changes: Any) -> str:
        with pytest.raises(TokenRejected) as caught:
            check(vector, **changes)
        return caught.value.reason

    signature = mutate(vector["token"], "signature", flipped(fields["signature"]))
    assert reason(token=signature) == "signature_invalid"
    assert reason(origin="https://ria.ee.evil.example") == "signature_invalid"
    other_nonce = vector["nonce"][:-2] + ("AA" if vector["nonce"][-2:] != "AA" else "BB")
    assert reason(nonce=other_nonce) == "signature_invalid"
    expired = load_certificate(
        base64.b64decode(fields["unverifiedCertificate"])
    ).not_valid_after_utc + dt.timedelta(days=1)
    assert reason(now=expired) == "certificate_expired"
    # Another card's certificate: not the key that signed (or not a trusted one).
    others = [v for v in VALID.values() if v["name"] != name]
    swapped = mutate(
        vector["token"],
        "unverifiedCertificate",
        json.loads(others[0]["token"])["unverifiedCertificate"],
    )
    assert reason(token=swapped) in {
        "signature_invalid",
        "certificate_untrusted",
        "algorithm_mismatch",
    }
    # Another algorithm of the same family signs differently; another family is refused.
    family, bits = fields["algorithm"][:2], fields["algorithm"][2:]
    same_family = f"{family}{'512' if bits != '512' else '256'}"
    assert reason(token=mutate(vector["token"], "algorithm", same_family)) in {
        "signature_invalid",
        "algorithm_mismatch",
    }
    assert reason(token=mutate(vector["token"], "algorithm", "HS256")) == "algorithm_mismatch"
    assert reason(token=mutate(vector["token"], "format", "web-eid:2")) == "token_format"


def test_the_wrong_certificate_vector_is_refused() -> None:
    (vector,) = VECTORS["refused"]
    with pytest.raises(TokenRejected) as caught:
        check(vector)
    assert caught.value.reason == vector["reason"]


def test_latvian_rs256_signature() -> None:
    """Published with no CA: its signature alone, through the same function as the rest."""
    (vector,) = VECTORS["signature_only"]
    fields = json.loads(vector["token"])
    cert = x509.load_der_x509_certificate(base64.b64decode(fields["unverifiedCertificate"]))
    webeid.check_signature(cert, "RS256", fields["signature"], vector["origin"], vector["nonce"])
    with pytest.raises(TokenRejected, match="signature_invalid"):
        webeid.check_signature(cert, "RS256", fields["signature"], "https://ria.ee", "x" * 44)


def test_signed_input_is_the_hash_of_origin_then_nonce() -> None:
    """Byte for byte what the genuine tokens sign (the same function verifies them above)."""
    import hashlib

    origin, nonce = "https://ria.ee", VALID["estonian-es384"]["nonce"]
    assert webeid.signed_input(origin, nonce, "ES384") == (
        hashlib.sha384(origin.encode()).digest() + hashlib.sha384(nonce.encode()).digest()
    )
    assert webeid.signed_input(origin, nonce, "RS256") == (
        hashlib.sha256(origin.encode()).digest() + hashlib.sha256(nonce.encode()).digest()
    )


def test_structure_is_checked() -> None:
    vector = VALID["belgian-es384"]
    for field in ("unverifiedCertificate", "algorithm", "signature"):
        fields = json.loads(vector["token"])
        fields[field] = ""
        with pytest.raises(TokenRejected, match="token_malformed"):
            check(vector, token=json.dumps(fields))
    fields = json.loads(vector["token"])
    fields["unverifiedSigningCertificates"] = [{"certificate": 1}]
    with pytest.raises(TokenRejected, match="token_malformed"):
        check(vector, token=json.dumps(fields))
    # web-eid:1.1's extra field, well formed, changes nothing to the authentication.
    fields["format"] = "web-eid:1.1"
    fields["unverifiedSigningCertificates"] = [
        {
            "certificate": fields["unverifiedCertificate"],
            "supportedSignatureAlgorithms": [
                {"cryptoAlgorithm": "ECC", "hashFunction": "SHA-384", "paddingScheme": "NONE"}
            ],
        }
    ]
    assert check(vector, token=json.dumps(fields)).country == "BE"


def test_a_refused_policy_and_a_missing_one() -> None:
    vector = VALID["estonian-es384"]
    anchors = [certificate(name) for name in vector["trusted"]]
    config = ValidatorConfig(
        anchors,
        revocation=RevocationPolicy.OFF,
        disallowed_policies=frozenset({"1.3.6.1.4.1.51361.1.2.1"}),  # the card's own policy
    )
    with pytest.raises(TokenRejected, match="certificate_policy"):
        Validator(config).validate_web_eid(
            vector["token"],
            vector["origin"],
            vector["nonce"],
            store_with(vector["nonce"]),
            now=at(vector),
        )


def test_a_certificate_only_strict_parsers_refuse() -> None:
    """The Finnish test card's certificate has NULL parameters in its ECDSA signature
    algorithm: ``cryptography`` refuses it, Web eID's validators take it, and so does
    cardkit for Web eID tokens, still checking its signature through the path validation;
    cardkit's own tokens (from CPS cards) stay strict."""
    vector = VALID["finnish-es384"]
    der = base64.b64decode(json.loads(vector["token"])["unverifiedCertificate"])
    with pytest.raises(ValueError, match="ExtraData"):
        x509.load_der_x509_certificate(der)
    assert isinstance(load_certificate(der), LenientCertificate)

    def with_(anchor: str, revocation: RevocationPolicy) -> None:
        config = ValidatorConfig([certificate(anchor)], revocation=revocation)
        nonce = vector["nonce"]
        Validator(config).validate_web_eid(
            vector["token"], vector["origin"], nonce, store_with(nonce), now=at(vector)
        )

    with pytest.raises(TokenRejected, match="certificate_untrusted"):  # its signature counts
        with_("TEST_of_ESTEID2018.cer", RevocationPolicy.OFF)
    with pytest.raises(TokenRejected, match="revocation_unavailable"):  # fails closed
        with_(vector["trusted"][0], RevocationPolicy.HARD_FAIL)


CARD_PROFILES = [
    "cps-doctor",
    "cps-nurse",
    "cps-midwife",
    "cps4-pharmacist",
    "cpe-staff",
    "cpe-transport",
]


@pytest.mark.parametrize("profile", CARD_PROFILES)
def test_every_test_igc_sante_card_passes_web_eid_checks(profile: str) -> None:
    """What a Web eID validator requires of an authentication certificate (digitalSignature,
    clientAuth when an EKU is present, a certificatePolicies extension none of whose
    policies it refuses, a path to the CAs it is given): the TEST IGC-Santé cards meet it,
    with the TEST CAs as the only configuration."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from mocks import pki

    key, cert = pki.card_credentials(profile, "auth")
    nonce = base64.b64encode(b"\x01" * 32).decode()
    origin = "https://portal.example"
    token = webeid.create_token(
        lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()), cert, origin, nonce
    )
    config = ValidatorConfig(
        pki.trust_anchors(), pki.intermediates(), revocation=RevocationPolicy.OFF
    )
    holder = Validator(config).validate_web_eid(json.dumps(token), origin, nonce, store_with(nonce))
    assert holder.country == "FR"
