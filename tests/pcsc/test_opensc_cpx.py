"""Stock OpenSC against the mock CPS/CPE cards, with its default configuration.

OpenSC binds the CPS3 ATR to its IAS-ECC "CPx" driver and reads the card's PKCS#15
application: these tests run its own tools (``pkcs11-tool``, ``pkcs15-tool``) and
``opensc-pkcs11.so`` the way a CIS advisor or a portal developer would, and check what they
show and do against the card's own counters (``cardkit pin status``) and ``openssl``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cardkit.algorithms import sha256_digest_info
from cardkit.auth import Challenge, MemoryNonceStore, RevocationPolicy, TokenRejected
from cardkit.auth import create_token as make_token
from cardkit.cps import CpsCard
from cardkit.cps.pkcs11 import find_authentication_key
from cardkit.pkcs11 import Algorithm, Module
from cardkit.transport.pcsc import PcscConnection
from mocks.cards.cps import IAS_AID, LABELS, PIN_LABEL, CpsMockCard
from mocks.harness import CardProcess
from mocks.pki import card_credentials
from mocks.profiles import list_profiles, load_profile
from mocks.revocation import RevocationServer
from tests.auth.conftest import validator
from tests.conftest import require_tool
from tests.pcsc.conftest import Pcsc, ServeCard, shown_pin_status

pytestmark = pytest.mark.tools

CPS_PROFILES = [n for n in list_profiles() if load_profile(n).get("family") == "cps"]
CPS3_PROFILES = [n for n in CPS_PROFILES if load_profile(n)["atr"].startswith("3B AC")]
AUTH_ID = (IAS_AID + b"\x02").hex()
SIGN_ID = (IAS_AID + b"\x01").hex()
ORIGIN = "https://portal.example"


def pin_of(profile: str) -> str:
    return str(load_profile(profile)["pins"][0]["value"]["ascii"])


class Tools:
    """OpenSC's command-line tools on one reader, environment stripped to PATH."""

    def __init__(self, module: Path, reader: str) -> None:
        self.module = str(module)
        self.reader = reader
        self.pkcs11_tool = require_tool("pkcs11-tool")
        self.pkcs15_tool = require_tool("pkcs15-tool")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},  # no OPENSC_CONF: the distribution's configuration
            timeout=60,
            check=False,
        )

    def p11(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            self.pkcs11_tool, "--module", self.module, "--slot-description", self.reader, *args
        )

    def p15(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.pkcs15_tool, "--reader", self.reader, *args)


@pytest.fixture
def tools(pcsc: Pcsc, opensc: Module) -> Callable[[int], Tools]:
    return lambda slot: Tools(opensc.path, pcsc.reader_for(slot))


#: After a successful login: the counter is full, or the PIN is still verified (pkcs11-tool
#: leaves the card as it is when it exits, OpenSC's default ``disconnect_action``, and
#: whether the card was reset since depends on pcscd's timing).
LOGGED_IN = ((3, False), (None, False))


def slot_block(listing: str, reader: str) -> str:
    return listing.split(f"): {reader}")[1].split("\nSlot ", maxsplit=1)[0]


@pytest.mark.parametrize("profile", CPS3_PROFILES)
def test_every_card_is_a_token(
    serve_card: ServeCard, tools: Callable[[int], Tools], tmp_path: Path, profile: str
) -> None:
    vcard = serve_card(profile)
    tool = tools(vcard.slot)
    card = load_profile(profile)
    sn = next(c for c in card["filesystem"]["children"] if c["fid"] == "D003")
    serial = "".join(p["hex"] for p in sn["data"]["tlv"][0]["value"]["concat"]).replace(" ", "")

    listed = tool.run(tool.pkcs11_tool, "--module", tool.module, "-L")
    assert listed.returncode == 0, listed.stderr
    block = slot_block(listed.stdout, tool.reader)
    assert f"token label        : {PIN_LABEL}" in block
    assert "token manufacturer : ANS" in block
    assert f"serial num         : {serial[-16:]}" in block
    assert "login required" in block and "PIN initialized" in block

    public = tool.p11("-O")
    assert public.returncode == 0, public.stderr
    for _, cert_label in LABELS.values():
        assert f"label:      {cert_label}" in public.stdout
    assert f"ID:         {AUTH_ID}" in public.stdout and f"ID:         {SIGN_ID}" in public.stdout
    assert "Private Key Object" not in public.stdout  # private objects need the PIN
    assert "label:          'CPS_DATA'" in public.stdout

    dump = tool.p15("-D")
    assert dump.returncode == 0, dump.stderr
    holder = card["holder"]
    assert f"PKCS#15 Card [{holder['card_type']} " in dump.stdout
    assert f"PIN [{PIN_LABEL}]" in dump.stdout and "unblockingPin" in dump.stdout
    assert "Private RSA Key [CPS_PRIV_AUT]" in dump.stdout
    assert "Private RSA Key [CPS_PRIV_SIG]" in dump.stdout
    assert "Key ref        : 130 (0x82)" in dump.stdout
    assert "X.509 Certificate [Certificat d'Authentification CPS]" in dump.stdout
    assert "mechanism  : [0x01] CKM_RSA_PKCS" in dump.stdout

    # The certificate OpenSC reads is the card's.
    der = tmp_path / "auth.der"
    read = tool.p11("--read-object", "--type", "cert", "--id", AUTH_ID, "-o", str(der))
    assert read.returncode == 0, read.stderr
    _, expected = card_credentials(profile, "auth")
    assert x509.load_der_x509_certificate(der.read_bytes()) == expected

    if profile == "cps-pin-blocked":
        locked = tool.p11("--login", "--pin", pin_of(profile), "-O")
        assert "CKR_PIN_LOCKED" in locked.stderr
        assert shown_pin_status(tool.reader) == (0, True)
        return

    private = tool.p11("--login", "--pin", pin_of(profile), "-O")
    assert private.returncode == 0, private.stderr
    for key_label, _ in LABELS.values():
        assert f"label:      {key_label}" in private.stdout
    assert "Usage:      decrypt, sign" in private.stdout  # the authentication key

    # CKM_RSA_PKCS over a DigestInfo: INTERNAL AUTHENTICATE; openssl verifies it.
    message = tmp_path / "msg"
    message.write_bytes(b"signed by " + profile.encode() + b" through stock OpenSC")
    digest_info = tmp_path / "digest-info"
    digest_info.write_bytes(sha256_digest_info(message.read_bytes()))
    signature = tmp_path / "sig"
    signed = tool.p11(
        "--login", "--pin", pin_of(profile), "--sign", "-m", "RSA-PKCS", "--id", AUTH_ID,
        "-i", str(digest_info), "-o", str(signature),
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    pem = tmp_path / "pub.pem"
    pem.write_bytes(
        expected.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    verified = tool.run(
        require_tool("openssl"), "dgst", "-sha256", "-verify", str(pem),
        "-signature", str(signature), str(message),
    )  # fmt: skip
    assert verified.returncode == 0 and "Verified OK" in verified.stdout
    assert shown_pin_status(tool.reader) in LOGGED_IN


def test_opensc_does_not_claim_a_cps4(serve_card: ServeCard, tools: Callable[[int], Tools]) -> None:
    tool = tools(serve_card("cps4-pharmacist").slot)
    listed = tool.run(tool.pkcs11_tool, "--module", tool.module, "-L")
    assert "(token not recognized)" in slot_block(listed.stdout, tool.reader)
    with PcscConnection(tool.reader) as conn:  # cardkit's own path reads it
        card = CpsCard(conn)
        assert card.generation == "CPS4 (contact)"
        assert card.identity().surname == "ROUSSEAU"


def test_wrong_pin_through_opensc_costs_one_try(
    serve_card: ServeCard, tools: Callable[[int], Tools]
) -> None:
    tool = tools(serve_card("cps-nurse").slot)
    assert shown_pin_status(tool.reader) == (3, False)
    wrong = tool.p11("--login", "--pin", "0000", "-O")
    assert "CKR_PIN_INCORRECT" in wrong.stderr
    assert shown_pin_status(tool.reader) == (2, False)  # exactly one, as the card counts it
    short = tool.p11("--login", "--pin", "12", "-O")  # refused by OpenSC: no try spent
    assert short.returncode != 0
    assert shown_pin_status(tool.reader) == (2, False)
    right = tool.p11("--login", "--pin", pin_of("cps-nurse"), "-O")
    assert right.returncode == 0, right.stderr
    assert shown_pin_status(tool.reader) in LOGGED_IN
    assert tool.p11("--login", "--pin", "0000", "-O").returncode != 0
    assert shown_pin_status(tool.reader) == (2, False)


def test_block_then_unblock_with_the_puk_through_opensc(
    serve_card: ServeCard, tools: Callable[[int], Tools]
) -> None:
    vcard = serve_card("cpe-staff")
    tool = tools(vcard.slot)
    outcomes = [tool.p11("--login", "--pin", "0000", "-O").stderr for _ in range(3)]
    assert ["CKR_PIN_INCORRECT" in o for o in outcomes] == [True, True, False]
    assert "CKR_PIN_LOCKED" in outcomes[2]
    assert shown_pin_status(tool.reader) == (0, True)
    locked = tool.p11("--login", "--pin", pin_of("cpe-staff"), "-O")
    assert "CKR_PIN_LOCKED" in locked.stderr  # the right PIN too, and no try is counted

    wrong = tool.p15("--unblock-pin", "--puk", "00000000", "--new-pin", "1357")
    assert "tries left: 2" in wrong.stdout + wrong.stderr
    assert isinstance(vcard.card, CpsMockCard)
    puk = vcard.card.pins[0x02].pin
    assert puk.tries_left == 2 and shown_pin_status(tool.reader) == (0, True)
    done = tool.p15("--unblock-pin", "--puk", "11111111", "--new-pin", "1357")
    assert done.returncode == 0, done.stdout + done.stderr
    assert puk.tries_left == 3 and shown_pin_status(tool.reader) == (3, False)
    assert tool.p11("--login", "--pin", "1357", "-O").returncode == 0
    with PcscConnection(tool.reader) as conn:  # and cardkit's own path sees the new PIN
        CpsCard(conn).verify_pin("1357")


def signed_through_opensc(opensc: Module, reader: str, profile: str, nonce: str) -> str:
    with opensc.open(opensc.slot_for(reader).slot) as token:
        token.login(pin_of(profile))
        pair = find_authentication_key(token)
        made = make_token(
            lambda data: token.sign(pair, data, Algorithm.RS256),
            pair.certificate,
            ORIGIN,
            nonce,
            "RS256",
        )
    return made.to_json()


def signed_by_cardkit(reader: str, profile: str, nonce: str) -> str:
    with PcscConnection(reader) as conn:
        card = CpsCard(conn)
        card.verify_pin(pin_of(profile))
        made = make_token(card.sign, card.certificates().authentication, ORIGIN, nonce, "RS256")
    return made.to_json()


@pytest.mark.parametrize(
    ("profile", "reason"),
    [("cps-expired", "certificate_expired"), ("cps-revoked", "certificate_revoked")],
)
def test_expired_and_revoked_fail_alike_on_both_paths(
    card_process: Callable[[str], CardProcess],
    opensc: Module,
    revocation_server: RevocationServer,
    profile: str,
    reason: str,
) -> None:
    reader = card_process(profile).reader
    check = validator(RevocationPolicy.HARD_FAIL)
    reasons = []
    for path in ("opensc", "cardkit"):
        store = MemoryNonceStore()
        challenge = Challenge.new()
        store.issue(challenge)
        if path == "opensc":
            token = signed_through_opensc(opensc, reader, profile, challenge.nonce)
        else:
            token = signed_by_cardkit(reader, profile, challenge.nonce)
        with pytest.raises(TokenRejected) as rejected:
            check.validate(token, ORIGIN, challenge.nonce, store)
        reasons.append(rejected.value.reason)
    assert reasons == [reason, reason]
