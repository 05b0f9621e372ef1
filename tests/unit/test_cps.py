"""The CPS/CPE card application on in-process mock cards, for every card profile."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardkit.apdu import CommandAPDU, SecurityStatusNotSatisfied
from cardkit.cli import State, cli
from cardkit.cps import CardType, CpsCard, IdentifierType, KeyUsage, NotACpsCard
from cardkit.errors import ExitCode, InvalidPinFormat, PinBlocked, PukBlocked, WrongPin, WrongPuk
from cardkit.transport import CardRemoved
from cardkit.transport.inprocess import InProcessBackend
from mocks.cards import build_card
from mocks.cards.cps import CpsMockCard
from mocks.pki import card_credentials
from mocks.profiles import list_profiles, load_profile

CPS_PROFILES = [n for n in list_profiles() if load_profile(n).get("family") == "cps"]
PINS = {n: load_profile(n)["pins"][0]["value"]["ascii"] for n in CPS_PROFILES}
PUKS = {n: load_profile(n)["pins"][0]["puk"]["value"]["ascii"] for n in CPS_PROFILES}


def open_card(profile: str) -> tuple[CpsCard, CpsMockCard, InProcessBackend]:
    backend = InProcessBackend()
    mock = build_card(profile)
    assert isinstance(mock, CpsMockCard)
    backend.insert("r", mock)
    return CpsCard(backend.connect("r")), mock, backend


def verify(cert_key: object, signature: bytes, data: bytes) -> None:
    assert isinstance(cert_key, rsa.RSAPublicKey)
    cert_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def test_all_profiles_present() -> None:
    assert set(CPS_PROFILES) == {
        "cps-doctor",
        "cps-nurse",
        "cps-midwife",
        "cpe-staff",
        "cpe-transport",
        "cps-expired",
        "cps-revoked",
        "cps-pin-blocked",
    }


@pytest.mark.parametrize("profile", CPS_PROFILES)
def test_identity_matches_certificate_and_profile(profile: str) -> None:
    card, _, _ = open_card(profile)
    holder = load_profile(profile)["holder"]
    identity = card.identity()
    _, cert = card_credentials(profile, "auth")
    assert card.certificates().authentication == cert
    assert identity.national_id == holder["cn"]
    assert identity.card_type is CardType(holder["card_type"])
    assert identity.identifier_type is IdentifierType(holder["identifier_type"])
    assert identity.identifier == holder["identifier"]
    assert identity.surname == holder.get("surname")
    assert identity.given_name == holder.get("given_name")
    assert identity.profession == holder["title"]
    assert identity.structure == holder.get("organization")
    assert card.serial().startswith("8025000001")


def test_card_types() -> None:
    assert open_card("cps-doctor")[0].card_type() is CardType.CPS
    assert open_card("cpe-staff")[0].card_type() is CardType.CPE
    assert open_card("cpe-transport")[0].card_type() is CardType.CPE_TRANSPORT
    assert CardType.CPE_TRANSPORT.label == "CPE transporteur"


@pytest.mark.parametrize("profile", [p for p in CPS_PROFILES if p != "cps-pin-blocked"])
def test_pin_lifecycle(profile: str) -> None:
    card, mock, _ = open_card(profile)
    pin, puk = PINS[profile], PUKS[profile]
    wrong = "0000" if pin != "0000" else "9999"
    assert card.pin_status().tries_left == 3
    with pytest.raises(WrongPin) as info:
        card.verify_pin(wrong)
    assert info.value.tries_left == 2
    assert card.pin_status().tries_left == 2  # exactly one try spent
    card.verify_pin(pin)
    assert card.pin_status().verified
    mock.reset()
    assert card.pin_status().tries_left == 3  # a right PIN restores the tries
    for left in (2, 1):
        with pytest.raises(WrongPin) as info:
            card.verify_pin(wrong)
        assert info.value.tries_left == left
    with pytest.raises(PinBlocked):
        card.verify_pin(wrong)
    assert card.pin_status().blocked
    with pytest.raises(PinBlocked):
        card.verify_pin(pin)  # blocked means blocked, even with the right PIN
    card.unblock_pin(puk, "5678")
    assert card.pin_status().tries_left == 3
    card.change_pin("5678", "8765")
    with pytest.raises(WrongPin):
        card.verify_pin("5678")
    card.verify_pin("8765")


def test_blocked_profile() -> None:
    card, _, _ = open_card("cps-pin-blocked")
    status = card.pin_status()
    assert status.blocked and status.tries_left == 0
    with pytest.raises(PinBlocked):
        card.verify_pin("1234")
    card.unblock_pin("12345678", "2468")
    card.verify_pin("2468")


def test_wrong_puk_then_blocked_puk() -> None:
    card, _, _ = open_card("cps-pin-blocked")
    for left in (2, 1):
        with pytest.raises(WrongPuk) as info:
            card.unblock_pin("00000000", "2468")
        assert info.value.tries_left == left and info.value.code == "puk_wrong"
    with pytest.raises(PukBlocked):
        card.unblock_pin("00000000", "2468")
    with pytest.raises(PukBlocked):
        card.unblock_pin("12345678", "2468")


@pytest.mark.parametrize("bad", ["123", "12345", "12a4", "١٢٣٤", ""])
def test_malformed_pin_sends_nothing(bad: str) -> None:
    card, mock, _ = open_card("cps-doctor")
    before = mock.commands_seen
    with pytest.raises(InvalidPinFormat):
        card.verify_pin(bad)
    with pytest.raises(InvalidPinFormat):
        card.change_pin("1234", bad)
    with pytest.raises(InvalidPinFormat):
        card.unblock_pin("1234567", "1234")
    assert mock.commands_seen == before
    assert card.pin_status().tries_left == 3


@pytest.mark.parametrize("usage", [KeyUsage.AUTHENTICATION, KeyUsage.SIGNATURE])
@pytest.mark.parametrize("profile", [p for p in CPS_PROFILES if p != "cps-pin-blocked"])
def test_signing_needs_pin_and_verifies(profile: str, usage: KeyUsage) -> None:
    card, mock, _ = open_card(profile)
    with pytest.raises(SecurityStatusNotSatisfied):
        card.sign(b"challenge", usage)
    assert mock.signatures == 0
    card.verify_pin(PINS[profile])
    signature = card.sign(b"challenge", usage)
    certs = card.certificates()
    cert = certs.authentication if usage is KeyUsage.AUTHENTICATION else certs.signature
    assert cert is not None
    verify(cert.public_key(), signature, b"challenge")


def test_keys_are_not_interchangeable() -> None:
    """MSE SET with the signature key for INTERNAL AUTHENTICATE is refused."""
    _, mock, _ = open_card("cps-doctor")
    assert mock.execute(bytes.fromhex("002241A4038401 01".replace(" ", ""))) == b"\x69\x85"
    assert mock.execute(bytes.fromhex("002241B6038401 02".replace(" ", ""))) == b"\x69\x85"


def test_removed_mid_signature() -> None:
    card, mock, backend = open_card("cps-doctor")
    card.verify_pin("1234")
    original = mock.handlers[0x88]

    def pulled(command: CommandAPDU) -> tuple[bytes, int]:
        backend.remove("r")
        return original(command)

    mock.handlers[0x88] = pulled
    with pytest.raises(CardRemoved):
        card.sign_digest(hashlib.sha256(b"x").digest())


def test_not_a_cps() -> None:
    backend = InProcessBackend()
    backend.insert("r", build_card("vitale-family"))
    with pytest.raises(NotACpsCard):
        CpsCard(backend.connect("r"))


def test_piv_face_shares_key_and_pin() -> None:
    _, mock, _ = open_card("cps-doctor")
    assert mock.execute(bytes.fromhex("00A4040009A00000030800001000"))[-2:] == b"\x90\x00"
    assert mock.execute(bytes.fromhex("00200080")) == b"\x63\xc3"
    assert mock.execute(bytes.fromhex("0020000104") + b"0000") == b"\x63\xc2"
    assert mock.execute(bytes.fromhex("00200080")) == b"\x63\xc2"  # one counter, two faces
    padded = b"1234" + b"\xff" * 4
    assert mock.execute(bytes.fromhex("0020008008") + padded) == b"\x90\x00"
    assert mock.execute(bytes.fromhex("00200001")) == b"\x90\x00"


def test_no_pin_or_puk_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    """PIN and PUK never reach a log, at any level, through any path."""
    secrets = ["1234", "9753", "8642", "12345678", "00000000", "0000"]
    with caplog.at_level(logging.DEBUG):
        card, _, _ = open_card("cps-doctor")
        with pytest.raises(WrongPin):
            card.verify_pin("0000")
        card.verify_pin("1234")
        card.change_pin("1234", "9753")
        with pytest.raises(WrongPuk):
            card.unblock_pin("00000000", "8642")
        card.unblock_pin("12345678", "8642")
    assert "DEBUG" in caplog.text and "redacted" in caplog.text
    for secret in secrets:
        encoded = secret.encode().hex(" ").upper()
        assert encoded not in caplog.text, secret
        assert f"'{secret}'" not in caplog.text


# --- CLI -------------------------------------------------------------------------------------


def run(backend: InProcessBackend, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), obj=State(lambda: backend), input=stdin)
    return result.exit_code, result.output


def test_cli_info_shows_holder() -> None:
    _, _, backend = open_card("cpe-transport")
    code, out = run(backend, "info", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["cps"]["identity"]["card_type"] == "CPE-TRANSPORT"
    assert data["cps"]["identity"]["structure"] == "AMBULANCES DU TEST"
    assert data["cps"]["pin"]["tries_left"] == 3
    assert data["cps"]["certificates"]["authentication"]["issuer"].startswith(
        "CN=TEST AC IGC-SANTE FORT ORGANISATIONS"
    )
    code, out = run(backend, "info")
    assert "CPE transporteur" in out and "AMBULANCES DU TEST" in out


def test_cli_pin_commands() -> None:
    _, _, backend = open_card("cps-doctor")
    assert json.loads(run(backend, "pin", "status", "--json")[1])["tries_left"] == 3
    code, out = run(backend, "pin", "change", "--pin-stdin", stdin="0000\n4321\n")
    assert code == ExitCode.PIN and "1 tries" not in out and "2 tries left" in out
    code, out = run(backend, "pin", "change", "--pin-stdin", stdin="1234\n4321\n")
    assert code == 0 and "PIN changed" in out
    code, out = run(backend, "pin", "unblock", "--pin-stdin", "--json", stdin="12345678\n1357\n")
    assert code == 0 and json.loads(out) == {"unblocked": True}
    code, out = run(backend, "pin", "status")
    assert "3 tries left" in out
    code, out = run(backend, "pin", "change", "--pin-stdin", stdin="")
    assert code == 2 and "no line" in out


def test_cli_pin_is_never_an_argument() -> None:
    _, _, backend = open_card("cps-doctor")
    code, _out = run(backend, "pin", "change", "1234")
    assert code == 2


def test_cli_certs() -> None:
    _, _, backend = open_card("cps-nurse")
    code, out = run(backend, "certs", "--json")
    data = json.loads(out)
    assert code == 0 and "CN=0759012345" in data["authentication"]["subject"]
    code, out = run(backend, "certs", "--pem", "--which", "signature")
    assert out.count("BEGIN CERTIFICATE") == 1
