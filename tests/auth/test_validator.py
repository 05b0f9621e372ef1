"""The rejection matrix: one case per reason, each with its stable code; and the accepting
path on every kind of card."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging

import pytest

from cardkit.auth import (
    Challenge,
    MemoryNonceStore,
    RevocationPolicy,
    TokenRejected,
    Validator,
    signed_data,
)
from cardkit.cps import CardType, IdentifierType
from mocks import pki
from mocks.revocation import RevocationServer
from tests.auth.conftest import ORIGIN, card, issue, validator


def rejected(
    v: Validator, token: str, nonce: str, store: MemoryNonceStore, origin: str = ORIGIN
) -> str:
    with pytest.raises(TokenRejected) as info:
        v.validate(token, origin, nonce, store)
    return info.value.reason


def test_accepts_doctor() -> None:
    t = issue(*card("cps-doctor"))
    who = validator().validate(t.token, ORIGIN, t.nonce, t.store)
    assert (who.card_type, who.identifier_type, who.identifier) == (
        CardType.CPS,
        IdentifierType.RPPS,
        "99700075122",
    )
    assert (who.surname, who.given_name, who.profession) == ("LEFEBVRE", "CLAIRE", "Médecin")
    assert (
        who.certificate_sha256
        == pki.card_credentials("cps-doctor", "auth")[1]
        .fingerprint(
            __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()
        )
        .hex()
    )


@pytest.mark.parametrize(
    ("profile", "card_type", "id_type"),
    [
        ("cps-nurse", CardType.CPS, IdentifierType.ADELI),
        ("cpe-staff", CardType.CPE, IdentifierType.FINESS),
        ("cpe-transport", CardType.CPE_TRANSPORT, IdentifierType.FINESS),
    ],
)
def test_accepts_every_card_kind(
    profile: str, card_type: CardType, id_type: IdentifierType
) -> None:
    t = issue(*card(profile))
    who = validator().validate(t.token, ORIGIN, t.nonce, t.store)
    assert (who.card_type, who.identifier_type) == (card_type, id_type)


def test_pss_accepted() -> None:
    t = issue(*card("cps-doctor"), algorithm="PS256")
    assert validator().validate(t.token, ORIGIN, t.nonce, t.store).surname == "LEFEBVRE"


def test_origin_is_normalised_on_both_sides() -> None:
    t = issue(*card("cps-doctor"), origin="HTTPS://Portal.Example:443/")
    assert validator().validate(t.token, "https://portal.example", t.nonce, t.store)


# --- the matrix ------------------------------------------------------------------------------


def test_tampered_signature() -> None:
    t = issue(*card("cps-doctor"))
    fields = json.loads(t.token)
    sig = bytearray(base64.b64decode(fields["signature"]))
    sig[10] ^= 0x01
    fields["signature"] = base64.b64encode(bytes(sig)).decode()
    assert rejected(validator(), json.dumps(fields), t.nonce, t.store) == "signature_invalid"


def test_signature_by_another_key() -> None:
    other_key, _ = card("cps-nurse")
    _, doctor_cert = card("cps-doctor")
    t = issue(other_key, doctor_cert)
    assert rejected(validator(), t.token, t.nonce, t.store) == "signature_invalid"


def test_token_for_another_origin() -> None:
    t = issue(*card("cps-doctor"), origin="https://evil.example")
    assert rejected(validator(), t.token, t.nonce, t.store) == "signature_invalid"


def test_replayed_nonce() -> None:
    v = validator()
    t = issue(*card("cps-doctor"))
    v.validate(t.token, ORIGIN, t.nonce, t.store)
    assert rejected(v, t.token, t.nonce, t.store) == "nonce_replayed"


def test_expired_nonce() -> None:
    t = issue(*card("cps-doctor"))
    store = MemoryNonceStore()
    store.issue(Challenge(t.nonce, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert rejected(validator(), t.token, t.nonce, store) == "nonce_expired"


def test_unknown_nonce() -> None:
    t = issue(*card("cps-doctor"))
    assert rejected(validator(), t.token, t.nonce, MemoryNonceStore()) == "nonce_unknown"


def test_bad_token_does_not_burn_the_nonce() -> None:
    v = validator()
    good = issue(*card("cps-doctor"))
    forged = issue(*card("cps-doctor"), origin="https://evil.example")
    assert rejected(v, forged.token, good.nonce, good.store) == "signature_invalid"
    assert v.validate(good.token, ORIGIN, good.nonce, good.store).surname == "LEFEBVRE"


def test_revoked_by_ocsp(responders: RevocationServer) -> None:
    t = issue(*card("cps-revoked"))
    assert rejected(validator(RevocationPolicy.SOFT_FAIL), t.token, t.nonce, t.store) == (
        "certificate_revoked"
    )
    assert responders.ocsp_requests >= 1


def test_revoked_by_crl(responders: RevocationServer) -> None:
    responders.ocsp_enabled = False
    t = issue(*card("cps-revoked"))
    assert rejected(validator(RevocationPolicy.HARD_FAIL), t.token, t.nonce, t.store) == (
        "certificate_revoked"
    )
    assert responders.crl_requests >= 1


def test_revocation_off_accepts_revoked() -> None:
    t = issue(*card("cps-revoked"))
    assert validator(RevocationPolicy.OFF).validate(t.token, ORIGIN, t.nonce, t.store)


def test_hard_fail_without_responders(responders: RevocationServer) -> None:
    responders.ocsp_enabled = responders.crl_enabled = False
    t = issue(*card("cps-doctor"))
    assert rejected(validator(RevocationPolicy.HARD_FAIL), t.token, t.nonce, t.store) == (
        "revocation_unavailable"
    )


def test_soft_fail_without_responders(responders: RevocationServer) -> None:
    responders.ocsp_enabled = responders.crl_enabled = False
    t = issue(*card("cps-doctor"))
    assert validator(RevocationPolicy.SOFT_FAIL).validate(t.token, ORIGIN, t.nonce, t.store)


def test_revocation_answers_are_cached(responders: RevocationServer) -> None:
    v = validator(RevocationPolicy.HARD_FAIL)
    for _ in range(3):
        t = issue(*card("cps-doctor"))
        v.validate(t.token, ORIGIN, t.nonce, t.store)
    assert responders.ocsp_requests == 1  # the leaf, once: its answer is valid for an hour
    assert responders.crl_requests == 1  # the intermediate, through the root's CRL


def test_expired_certificate() -> None:
    t = issue(*card("cps-expired"))
    assert rejected(validator(), t.token, t.nonce, t.store) == "certificate_expired"


def test_clock_skew_allowance() -> None:
    """A card whose certificate starts in a minute, seen by a portal clock two minutes late."""
    t = issue(*pki.token_test_credentials("token-not-yet-valid"))
    start = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
    v = validator()  # default allowance: 2 minutes
    assert v.validate(t.token, ORIGIN, t.nonce, t.store, now=start - dt.timedelta(minutes=1))
    t = issue(*pki.token_test_credentials("token-not-yet-valid"))
    strict = validator(clock_skew=dt.timedelta(seconds=0))
    with pytest.raises(TokenRejected) as info:
        strict.validate(t.token, ORIGIN, t.nonce, t.store, now=start - dt.timedelta(minutes=1))
    assert info.value.reason == "certificate_not_yet_valid"


def test_not_yet_valid_certificate() -> None:
    t = issue(*pki.token_test_credentials("token-not-yet-valid"))
    assert rejected(validator(), t.token, t.nonce, t.store) == "certificate_not_yet_valid"


def test_wrong_key_usage() -> None:
    t = issue(*pki.token_test_credentials("token-wrong-key-usage"))
    assert rejected(validator(), t.token, t.nonce, t.store) == "certificate_key_usage"


def test_signature_certificate_is_refused() -> None:
    """The non-repudiation certificate never logs anyone in."""
    t = issue(*pki.card_credentials("cps-doctor", "sign"))
    assert rejected(validator(), t.token, t.nonce, t.store) == "certificate_key_usage"


def test_untrusted_ca() -> None:
    t = issue(*pki.token_test_credentials("token-untrusted"))
    assert rejected(validator(), t.token, t.nonce, t.store) == "certificate_untrusted"


def test_policy_not_accepted() -> None:
    t = issue(*card("cps-doctor"))
    v = validator(accepted_policies=frozenset({"1.2.250.1.71.0.0"}))
    assert rejected(v, t.token, t.nonce, t.store) == "certificate_policy"


@pytest.mark.parametrize("announced", ["ES256", "HS256", "none"])
def test_algorithm_mismatch(announced: str) -> None:
    t = issue(*card("cps-doctor"))
    fields = json.loads(t.token)
    fields["algorithm"] = announced
    assert rejected(validator(), json.dumps(fields), t.nonce, t.store) == "algorithm_mismatch"


def test_pss_signature_announced_as_pkcs1() -> None:
    t = issue(*card("cps-doctor"), algorithm="PS256")
    fields = json.loads(t.token)
    fields["algorithm"] = "RS256"
    assert rejected(validator(), json.dumps(fields), t.nonce, t.store) == "signature_invalid"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("x" * 99, "token_size"),
        ("x" * 10_001, "token_size"),
        ("{" + " " * 200, "token_malformed"),
        ("[" + "1," * 60 + "1]", "token_malformed"),
        (json.dumps({"format": "cardkit:1", "pad": "x" * 200}), "token_malformed"),
        (
            json.dumps(
                {
                    "format": "other:9",
                    "certificate": "",
                    "algorithm": "RS256",
                    "signature": "",
                    "issued_at": "",
                    "pad": "x" * 100,
                }
            ),
            "token_format",
        ),
        (
            json.dumps(
                {
                    "format": "cardkit:1",
                    "certificate": "not base64!",
                    "algorithm": "RS256",
                    "signature": "",
                    "issued_at": "",
                    "pad": "x" * 100,
                }
            ),
            "certificate_malformed",
        ),
        (
            json.dumps(
                {
                    "format": "cardkit:1",
                    "certificate": "AAAA",
                    "algorithm": "RS256",
                    "signature": "",
                    "issued_at": "",
                    "pad": "x" * 100,
                }
            ),
            "certificate_malformed",
        ),
    ],
)
def test_oversized_or_malformed(token: str, reason: str) -> None:
    assert rejected(validator(), token, "n" * 43, MemoryNonceStore()) == reason


def test_bytes_that_are_not_utf8() -> None:
    with pytest.raises(TokenRejected) as info:
        validator().validate(b"\xff" * 200, ORIGIN, "n" * 43, MemoryNonceStore())
    assert info.value.reason == "token_malformed"


def test_signed_data_layout() -> None:
    import hashlib

    data = signed_data("https://Portal.example/", "abc")
    assert (
        data == hashlib.sha256(b"https://portal.example").digest() + hashlib.sha256(b"abc").digest()
    )


def test_validate_from_async_code() -> None:
    """An async portal calling validate() from inside its event loop."""
    import asyncio

    async def portal() -> str | None:
        t = issue(*card("cps-doctor"))
        return validator().validate(t.token, ORIGIN, t.nonce, t.store).surname

    assert asyncio.run(portal()) == "LEFEBVRE"


def test_soft_fail_is_logged(
    responders: RevocationServer, caplog: pytest.LogCaptureFixture
) -> None:
    responders.ocsp_enabled = responders.crl_enabled = False
    t = issue(*card("cps-doctor"))
    with caplog.at_level(logging.WARNING, logger="cardkit.auth.validator"):
        v = validator(RevocationPolicy.SOFT_FAIL)
        assert v.validate(t.token, ORIGIN, t.nonce, t.store)
    text = caplog.text
    assert "revocation is soft-fail" in text and "no revocation status" in text
