"""CPS/CPE mock cards through real pcscd: cardkit's own path to the card (cardkit.cps over
pyscard) and OpenSC's PKCS#11 module (its IAS-ECC "CPx" driver), with one key and one PIN
counter behind both."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardkit.apdu import CommandAPDU, SecurityStatusNotSatisfied
from cardkit.cps import CardType, CpsCard, KeyUsage
from cardkit.cps.pkcs11 import find_authentication_key
from cardkit.errors import PinBlocked, WrongPin
from cardkit.pkcs11 import Algorithm, MechanismNotSupported, Module
from cardkit.transport import CardRemoved
from cardkit.transport.pcsc import PcscConnection
from mocks.cards import build_card
from mocks.cards.cps import CpsMockCard
from mocks.harness import CardProcess
from mocks.pki import card_credentials
from mocks.profiles import list_profiles, load_profile
from tests.pcsc.conftest import Pcsc, ServeCard, shown_pin_status

StartCard = Callable[[str], CardProcess]

CPS_PROFILES = [n for n in list_profiles() if load_profile(n).get("family") == "cps"]


def verify(public: object, signature: bytes, data: bytes, algorithm: Algorithm) -> None:
    assert isinstance(public, rsa.RSAPublicKey)
    pad = (
        padding.PKCS1v15()
        if algorithm is Algorithm.RS256
        else padding.PSS(padding.MGF1(hashes.SHA256()), 32)
    )
    public.verify(signature, data, pad, hashes.SHA256())


def status(reader: str) -> tuple[int | None, bool]:
    with PcscConnection(reader) as conn:
        s = CpsCard(conn).pin_status()
    return s.tries_left, s.blocked


@pytest.mark.parametrize("profile", CPS_PROFILES)
def test_every_profile_over_pcscd(pcsc: Pcsc, serve_card: ServeCard, profile: str) -> None:
    vcard = serve_card(profile)
    reader = pcsc.reader_for(vcard.slot)
    holder = load_profile(profile)["holder"]
    with PcscConnection(reader) as conn:
        card = CpsCard(conn)
        identity = card.identity()
        assert identity.national_id == holder["cn"]
        assert identity.card_type is CardType(holder["card_type"])
        assert card.certificates().authentication == card_credentials(profile, "auth")[1]
        expected = (0, True) if profile == "cps-pin-blocked" else (3, False)
        s = card.pin_status()
        assert (s.tries_left, s.blocked) == expected


def test_pin_lifecycle_over_pcscd(pcsc: Pcsc, serve_card: ServeCard) -> None:
    vcard = serve_card("cps-nurse")
    with PcscConnection(pcsc.reader_for(vcard.slot)) as conn:
        card = CpsCard(conn)
        with pytest.raises(SecurityStatusNotSatisfied):
            card.sign(b"x")
        for left in (2, 1):
            with pytest.raises(WrongPin) as info:
                card.verify_pin("0000")
            assert info.value.tries_left == left
        with pytest.raises(PinBlocked):
            card.verify_pin("0000")
        card.unblock_pin("87654321", "1357")
        card.change_pin("1357", "2468")
        card.verify_pin("2468")
        signature = card.sign(b"x", KeyUsage.SIGNATURE)
        verify(
            card_credentials("cps-nurse", "sign")[1].public_key(), signature, b"x", Algorithm.RS256
        )


def test_removed_mid_signature(pcsc: Pcsc, serve_card: ServeCard) -> None:
    card = build_card("cps-doctor")
    assert isinstance(card, CpsMockCard)
    entered, release = threading.Event(), threading.Event()
    internal_authenticate = card.handlers[0x88]

    def slow(command: CommandAPDU) -> tuple[bytes, int]:
        entered.set()
        release.wait(10)
        return internal_authenticate(command)

    card.handlers[0x88] = slow
    vcard = serve_card(card)
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            with PcscConnection(pcsc.reader_for(vcard.slot)) as conn:
                cps = CpsCard(conn)
                cps.verify_pin("1234")
                cps.sign_digest(hashlib.sha256(b"x").digest())
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    assert entered.wait(15)
    vcard.remove(timeout=0.1)
    release.set()
    thread.join(30)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], CardRemoved)


# --- OpenSC's PKCS#11 module ---------------------------------------------------------------
# PyKCS11 keeps the GIL inside the module: these cards are served by another process.


@pytest.mark.parametrize("profile", ["cps-doctor", "cpe-transport"])
def test_pkcs11_signs_through_opensc(
    pcsc: Pcsc, card_process: StartCard, opensc: Module, profile: str
) -> None:
    reader = card_process(profile).reader
    _, auth_cert = card_credentials(profile, "auth")
    pin = load_profile(profile)["pins"][0]["value"]["ascii"]
    with opensc.open(opensc.slot_for(reader).slot) as token:
        token.login(pin)
        pair = find_authentication_key(token, expected=auth_cert)
        assert pair.certificate == auth_cert and pair.label == "Certificat d'Authentification CPS"
        data = b"https://portal.example" + b"nonce"
        verify(auth_cert.public_key(), token.sign(pair, data), data, Algorithm.RS256)
        # A CPS3 signs PKCS#1 v1.5 only: no PSS mechanism, a clear refusal.
        with pytest.raises(MechanismNotSupported):
            token.sign(pair, data, Algorithm.PS256)


def test_wrong_pin_through_pkcs11_costs_one_try(
    pcsc: Pcsc, card_process: StartCard, opensc: Module
) -> None:
    reader = card_process("cps-doctor").reader
    assert status(reader) == (3, False)
    with opensc.open(opensc.slot_for(reader).slot) as token, pytest.raises(WrongPin):
        token.login("0000")
    assert status(reader) == (2, False)  # exactly one, as the card counts it
    assert shown_pin_status(reader) == (2, False)  # and as `cardkit pin status` shows


def test_blocked_is_blocked_on_both_paths(
    pcsc: Pcsc, card_process: StartCard, opensc: Module
) -> None:
    reader = card_process("cps-doctor").reader
    with PcscConnection(reader) as conn:
        card = CpsCard(conn)
        for _ in range(2):
            with pytest.raises(WrongPin):
                card.verify_pin("0000")
    with opensc.open(opensc.slot_for(reader).slot) as token:
        with pytest.raises((PinBlocked, WrongPin)):
            token.login("0000")  # the last try, spent through PKCS#11
        with pytest.raises(PinBlocked):
            token.login("1234")  # even the right PIN: blocked
    assert status(reader) == (0, True)
    with PcscConnection(reader) as conn:
        CpsCard(conn).unblock_pin("12345678", "1234")
    with opensc.open(opensc.slot_for(reader).slot) as token:
        token.login("1234")


# --- tools nobody here wrote ----------------------------------------------------------------


@pytest.mark.tools
def test_cardkit_sign_command(
    pcsc: Pcsc, card_process: StartCard, opensc: Module, tmp_path: Path
) -> None:
    reader = card_process("cps-doctor").reader
    message = tmp_path / "msg"
    message.write_bytes(b"hello")
    out = tmp_path / "sig"
    env = {"PATH": "/usr/bin:/bin"}
    command = [
        sys.executable,
        "-m",
        "cardkit",
        "sign",
        str(message),
        "--reader",
        reader,
        "--pin-stdin",
        "--out",
        str(out),
        "--module",
        str(opensc.path),
    ]
    done = subprocess.run(
        command, input="1234\n", capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    verify(
        card_credentials("cps-doctor", "auth")[1].public_key(),
        out.read_bytes(),
        b"hello",
        Algorithm.RS256,
    )
    wrong = subprocess.run(
        command, input="0000\n", capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert wrong.returncode == 6
    assert "2 tries left" in wrong.stderr
