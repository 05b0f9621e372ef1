"""The CPS/CPE card application on in-process mock cards, for every card profile."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardkit import tlv
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
        "cps4-pharmacist",
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


def apdu(mock: CpsMockCard, hex_command: str, data: bytes = b"") -> tuple[bytes, int]:
    """Send ``hex_command`` (+ data, with Lc) to the mock; (response data, SW)."""
    command = bytes.fromhex(hex_command)
    if data:
        command += bytes([len(data)]) + data
    answer = mock.execute(command)
    return answer[:-2], int.from_bytes(answer[-2:], "big")


def sdo(mock: CpsMockCard, sdo_class: int, ref: int, tag: bytes) -> tuple[bytes, int]:
    """IAS-ECC GET DATA of one data object of an SDO, as OpenSC's CPx driver asks it."""
    header = bytes([0xBF, sdo_class | 0x80, ref, len(tag) + 1]) + tag + b"\x80"
    request = bytes([0x4D, len(header) + 2, 0x70, len(header)]) + header
    return apdu(mock, "00CB3FFF", request)


def test_ef_atr_as_opensc_parses_it() -> None:
    _, mock, _ = open_card("cps-doctor")
    fcp, sw = apdu(mock, "00A40904", bytes.fromhex("3F002F01"))
    assert sw == 0x9000 and fcp[0] == 0x62 and b"\x8c\x08\x7f" in fcp  # access rules
    data, sw = apdu(mock, "00B0000000")
    assert sw == 0x9000 and data[0] == 0x80  # the category byte OpenSC skips for CPx
    items = {item.tag: item.value for item in tlv.parse(data[1:])}
    assert len(items[0x46]) >= 4 and len(items[0xE0]) >= 16
    sizes = items[0xE0]
    assert (int.from_bytes(sizes[2:4], "big"), int.from_bytes(sizes[10:12], "big")) == (255, 256)
    assert apdu(mock, "00A40404", items[0x4F])[1] == 0x9000  # the MF's AID
    serial, sw = apdu(mock, "00B09C00C0")  # EF.SN.ICC by SFI, Le beyond its end
    assert sw == 0x6282 and serial.startswith(bytes.fromhex("5A0A8025000001"))


def test_pin_and_puk_policies_as_sdos() -> None:
    _, mock, _ = open_card("cps-doctor")
    assert apdu(mock, "00A40204", b"\x3f\x00")[1] == 0x9000  # the MF by file id, as CPx asks
    data, sw = sdo(mock, 0x01, 0x01, b"\x7f\x41")
    assert sw == 0x9000
    assert data == bytes.fromhex("700DBF8101097F4106800104810104")  # max 4, min 4: padded
    data, sw = sdo(mock, 0x01, 0x01, b"\xa0")
    assert sw == 0x9000 and bytes.fromhex("9A01039B0103") in data  # 3 tries of 3
    assert bytes.fromhex("8C067300001200FF00")[:3] in data
    apdu(mock, "00200001", b"0000")
    assert bytes.fromhex("9A01039B0102") in sdo(mock, 0x01, 0x01, b"\xa0")[0]
    assert bytes.fromhex("9A01039B0103") in sdo(mock, 0x01, 0x02, b"\xa0")[0]  # the PUK
    assert sdo(mock, 0x01, 0x05, b"\xa0")[1] == 0x6A88


def test_key_sdos_live_in_df_0001() -> None:
    _, mock, _ = open_card("cpe-transport")
    assert sdo(mock, 0x10, 0x02, b"\xa0")[1] == 0x6A88  # not from the MF
    assert apdu(mock, "00A40904", bytes.fromhex("3F000001"))[1] == 0x9000
    assert sdo(mock, 0x10, 0x02, b"\x7f\x48")[1] == 0x6A80  # no readable part
    auth, sw = sdo(mock, 0x10, 0x02, b"\xa0")
    assert sw == 0x9000 and bytes.fromhex("80020100") in auth  # 2048 bits
    assert bytes.fromhex("8C077BFF11") in auth  # no PSO signature; internal auth. after PIN
    sign, _ = sdo(mock, 0x10, 0x01, b"\xa0")
    assert bytes.fromhex("8C077B11FF") in sign  # PSO signature after PIN; no internal auth.


def test_signing_as_opensc_does_it() -> None:
    """MSE SET AT with the local bit and the algorithm reference, INTERNAL AUTHENTICATE."""
    _, mock, _ = open_card("cps-doctor")
    digest_info = (
        bytes.fromhex("3031300d060960864801650304020105000420")
        + hashlib.sha256(b"challenge").digest()
    )
    assert apdu(mock, "002241A4", bytes.fromhex("840182800102"))[1] == 0x9000
    assert apdu(mock, "00880000", digest_info)[1] == 0x6982  # PIN first
    assert apdu(mock, "00200001", b"1234")[1] == 0x9000
    signature, sw = apdu(mock, "00880000", digest_info)
    assert sw == 0x9000
    verify(card_credentials("cps-doctor", "auth")[1].public_key(), signature, b"challenge")
    assert apdu(mock, "002241A4", bytes.fromhex("840182800142"))[1] == 0x6A80  # not for AT
    assert apdu(mock, "002241B6", bytes.fromhex("840182800142"))[1] == 0x6985  # wrong key


def test_pso_hash_of_a_short_message() -> None:
    """IAS-ECC's PSO HASH may carry the message's last block for the card to hash."""
    _, mock, _ = open_card("cps-doctor")
    apdu(mock, "00200001", b"1234")
    assert apdu(mock, "002241AA", bytes.fromhex("800140"))[1] == 0x9000
    assert apdu(mock, "002241B6", bytes.fromhex("840181800142"))[1] == 0x9000
    assert apdu(mock, "002A90A0", bytes.fromhex("90008009") + b"challenge")[1] == 0x9000
    signature, sw = apdu(mock, "002A9E9A00")
    assert sw == 0x9000
    verify(card_credentials("cps-doctor", "sign")[1].public_key(), signature, b"challenge")
    assert apdu(mock, "002A90A0", bytes.fromhex("9028") + bytes(40) + b"\x80\x00")[1] == 0x6A80


def test_decipher_with_the_authentication_key() -> None:
    _, mock, _ = open_card("cps-doctor")
    public = card_credentials("cps-doctor", "auth")[1].public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    cryptogram = public.encrypt(b"session key", padding.PKCS1v15())
    apdu(mock, "00200001", b"1234")
    assert apdu(mock, "002241B8", bytes.fromhex("84018280010A"))[1] == 0x9000
    whole = b"\x81" + cryptogram  # 257 bytes: two chained commands
    assert mock.execute(bytes.fromhex("102A808680") + whole[:128]) == b"\x90\x00"
    rest = whole[128:]
    assert mock.execute(bytes.fromhex("002A8086") + bytes([len(rest)]) + rest + b"\x00") == (
        b"session key\x90\x00"
    )


def test_puk_verified_on_its_own_reference_then_new_pin() -> None:
    """How IAS-ECC middleware unblocks: VERIFY the PUK (02), RESET RETRY COUNTER P1=02."""
    card, mock, _ = open_card("cps-pin-blocked")
    assert apdu(mock, "002C0201", b"5678")[1] == 0x6982  # PUK not verified yet
    assert apdu(mock, "00200002", b"00000000")[1] == 0x63C2
    assert apdu(mock, "00200002", b"12345678")[1] == 0x9000
    assert apdu(mock, "002C0201", b"56")[1] == 0x6A80  # too short: nothing spent
    assert apdu(mock, "002C0201", b"5678")[1] == 0x9000
    assert apdu(mock, "002C0201", b"5678")[1] == 0x6982  # the PUK status is consumed
    assert card.pin_status().tries_left == 3
    card.verify_pin("5678")


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


def test_cli_info_names_the_middleware_a_cps4_needs() -> None:
    _, _, backend = open_card("cps4-pharmacist")
    code, out = run(backend, "info", "--json")
    data = json.loads(out)
    assert code == 0 and data["card"]["name"] == "CPS4 (contact)"
    assert data["card"]["middleware"] == ["cryptolib"]
    assert data["cps"]["identity"]["surname"] == "ROUSSEAU"
    code, out = run(backend, "info")
    assert "CPS Cryptolib (ANS)" in out and "OpenSC" not in out


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
