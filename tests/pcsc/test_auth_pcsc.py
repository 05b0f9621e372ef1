"""CPS login end to end: the card signs a portal's challenge through OpenSC's PKCS#11 module,
the portal-side validator accepts it (and the CLI does the same as two processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cardkit.auth import (
    Challenge,
    RevocationPolicy,
    SqliteNonceStore,
    TokenRejected,
    Validator,
    ValidatorConfig,
    create_token,
)
from cardkit.cps import CardType
from cardkit.cps.pkcs11 import find_authentication_key
from cardkit.pkcs11 import Algorithm, Module
from mocks import pki
from mocks.harness import CardProcess
from mocks.profiles import load_profile
from tests.pcsc.conftest import Pcsc

StartCard = Callable[[str], CardProcess]
ORIGIN = "https://portal.example"


@pytest.mark.parametrize(
    ("profile", "card_type"),
    [("cps-doctor", CardType.CPS), ("cpe-transport", CardType.CPE_TRANSPORT)],
)
def test_login_through_pkcs11(
    pcsc: Pcsc,
    card_process: StartCard,
    opensc: Module,
    tmp_path: Path,
    profile: str,
    card_type: CardType,
) -> None:
    algorithm = Algorithm.RS256  # what a CPS3 signs (no PSS on the card)
    reader = card_process(profile).reader
    store = SqliteNonceStore(tmp_path / "nonces.db")
    challenge = Challenge.new()
    store.issue(challenge)
    with opensc.open(opensc.slot_for(reader).slot) as token:
        token.login(load_profile(profile)["pins"][0]["value"]["ascii"])
        pair = find_authentication_key(token)
        created = create_token(
            lambda data: token.sign(pair, data, algorithm),
            pair.certificate,
            ORIGIN,
            challenge.nonce,
            algorithm.value,
        )
    validator = Validator(
        ValidatorConfig(pki.trust_anchors(), pki.intermediates(), revocation=RevocationPolicy.OFF)
    )
    who = validator.validate(created.to_json(), ORIGIN, challenge.nonce, store)
    assert who.card_type is card_type
    assert who.national_id == load_profile(profile)["holder"]["cn"]
    with pytest.raises(TokenRejected) as info:  # and only once
        validator.validate(created.to_json(), ORIGIN, challenge.nonce, store)
    assert info.value.reason == "nonce_replayed"


@pytest.mark.tools
@pytest.mark.parametrize("wire_format", ["cardkit:1", "web-eid:1.0"])
def test_token_commands(
    pcsc: Pcsc, card_process: StartCard, opensc: Module, tmp_path: Path, wire_format: str
) -> None:
    """``token create`` then ``token verify``, in cardkit's format and in Web eID's (whose
    nonce is base64, as Web eID's generator makes it)."""
    import base64
    import secrets

    reader = card_process("cps-doctor").reader
    if wire_format == "cardkit:1":
        nonce = Challenge.new().nonce
    else:
        nonce = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {"PATH": "/usr/bin:/bin"}
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "cardkit",
            "token",
            "create",
            "--origin",
            ORIGIN,
            "--nonce",
            nonce,
            "--reader",
            reader,
            "--pin-stdin",
            "--module",
            str(opensc.path),
            "--format",
            wire_format,
        ],
        input="1234\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["format"] == wire_format
    token_file = tmp_path / "token.json"
    token_file.write_text(created.stdout)
    verify = [
        sys.executable,
        "-m",
        "cardkit",
        "token",
        "verify",
        str(token_file),
        "--nonce",
        nonce,
        "--revocation",
        "off",
        "--json",
    ]
    ok = subprocess.run([*verify, "--origin", ORIGIN], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and json.loads(ok.stdout)["professional"]["surname"] == "LEFEBVRE"
    bad = subprocess.run(
        [*verify, "--origin", "https://other.example"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1 and json.loads(bad.stdout)["reason"] == "signature_invalid"
