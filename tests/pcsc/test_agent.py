"""The agent as a user runs it (``cardkit agent run``), its bridge on loopback, mock cards
served through pcscd, signing through OpenSC's PKCS#11 module in the agent's worker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from cardkit.auth import Challenge, MemoryNonceStore, RevocationPolicy, Validator, ValidatorConfig
from cardkit.cps import CpsCard
from cardkit.pcsc_bridge.client import BridgeCallError
from cardkit.transport.pcsc import PcscConnection
from mocks import pki
from mocks.harness import AgentProcess, CardProcess, free_port
from tests.conftest import missing_component
from tests.pcsc.conftest import Pcsc

StartCard = Callable[[str], CardProcess]
ORIGIN = "https://portal.example"


Agent = AgentProcess


def tries_left(reader: str) -> int | None:
    with PcscConnection(reader) as conn:
        return CpsCard(conn).pin_status().tries_left


def validator() -> Validator:
    return Validator(
        ValidatorConfig(pki.trust_anchors(), pki.intermediates(), revocation=RevocationPolicy.OFF)
    )


def test_endpoints(card_process: StartCard, agent: Callable[..., Agent]) -> None:
    cps = card_process("cps-doctor")
    vitale = card_process("vitale-family")
    running = agent()
    client = running.client()
    status = client.status()
    families = {r["name"]: r["card"]["family"] if r["card"] else None for r in status["readers"]}
    assert families[cps.reader] == "cps"
    assert families[vitale.reader] == "vitale"
    assert "TEST ONLY" in status["pin_provider"]  # the scripted provider says so

    challenge = Challenge.new()
    store = MemoryNonceStore()
    store.issue(challenge)
    token = client.authenticate(challenge.nonce)
    who = validator().validate(json.dumps(token), ORIGIN, challenge.nonce, store)
    assert who.surname == "LEFEBVRE"

    card = client.read_vitale()
    assert [b["first_name"] for b in card["beneficiaries"]] == ["MARIE", "JEAN", "LUCIE", "HUGO"]
    assert card["beneficiaries"][0]["nir"] == "269054958815780"  # the portal needs it whole

    spec = client.request("GET", "/openapi.json")
    assert set(spec["paths"]) >= {"/v1/status", "/v1/auth", "/v1/vitale/read", "/v1/events"}
    status_code, _headers, _body = running.raw(
        "GET", "/v1/client.js", {"Host": f"127.0.0.1:{running.port}", "Origin": ORIGIN}
    )
    assert status_code == 404  # portals host the client themselves

    # Events: a card pulled out shows up on the stream.
    request = urllib.request.Request(
        f"http://127.0.0.1:{running.port}/v1/events", headers={"Origin": ORIGIN}
    )
    with urllib.request.urlopen(request, timeout=30) as stream:
        assert stream.readline().startswith(b": cardkit events")
        vitale.ctl("remove")
        lines: list[bytes] = []
        while not any(b"card_removed" in line for line in lines):
            lines.append(stream.readline())
        data = stream.readline()  # the event's data line follows its name
    assert data.startswith(b"data: ") and json.loads(data[6:])["reader"] == vitale.reader

    events = [e["event"] for e in running.audit_lines()]
    assert events[:1] == ["start"] and "auth" in events and "vitale_read" in events


ATTACKS = [
    ({"Host": "evil.example", "Origin": ORIGIN}, None, "host_not_allowed", 403),
    ({"Origin": "https://evil.example"}, None, "origin_not_allowed", 403),
    ({}, None, "origin_not_allowed", 403),
    ({"Origin": "null"}, None, "origin_not_allowed", 403),
    (
        {"Origin": ORIGIN, "Content-Type": "text/plain"},
        b'{"nonce": "x"}',
        "unsupported_media_type",
        415,
    ),
    (
        {"Origin": ORIGIN, "Content-Type": "application/json"},
        b"{" + b" " * 20000 + b"}",
        "too_large",
        413,
    ),
]


def test_attack_suite(pcsc: Pcsc, card_process: StartCard, agent: Callable[..., Agent]) -> None:
    cps = card_process("cps-doctor")
    running = agent()
    host = {"Host": f"127.0.0.1:{running.port}"}
    for extra, body, code, status in ATTACKS:
        answer, headers, payload = running.raw("POST", "/v1/auth", {**host, **extra}, body or b"{}")
        if "Content-Type" not in extra and body is None:
            answer, headers, payload = running.raw(
                "POST",
                "/v1/auth",
                {**host, **extra, "Content-Type": "application/json"},
                json.dumps({"nonce": Challenge.new().nonce}).encode(),
            )
        assert (answer, json.loads(payload)["code"]) == (status, code), extra
        assert headers.get("access-control-allow-origin") in (None, ORIGIN)
    preflight, headers, _ = running.raw(
        "OPTIONS",
        "/v1/auth",
        {
            **host,
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert preflight == 403 and "access-control-allow-private-network" not in headers
    # Nothing reached the card: no try spent, no card operation in the audit log.
    assert tries_left(cps.reader) == 3
    assert [e["event"] for e in running.audit_lines()] == ["start"]


def test_wrong_pin_costs_one_try(card_process: StartCard, agent: Callable[..., Agent]) -> None:
    cps = card_process("cps-doctor")
    running = agent(pin="0000")
    with pytest.raises(BridgeCallError) as info:
        running.client().authenticate(Challenge.new().nonce)
    assert info.value.status == 401 and info.value.code == "pin_wrong"
    assert info.value.problem["tries_left"] == 2
    assert tries_left(cps.reader) == 2


def test_blocked_pin(card_process: StartCard, agent: Callable[..., Agent]) -> None:
    card_process("cps-pin-blocked")
    running = agent()
    with pytest.raises(BridgeCallError) as info:
        running.client().authenticate(Challenge.new().nonce)
    assert info.value.code == "pin_blocked"


def test_card_pulled_during_auth(card_process: StartCard, agent: Callable[..., Agent]) -> None:
    cps = card_process("cps-doctor")
    running = agent(fifo=True)
    thread, outcome = running.authenticate_in_thread()
    with running.pin_file.open("w") as pin:  # opens once the agent waits for the PIN
        cps.ctl("remove")
        time.sleep(0.6)  # pcscd notices at its next poll
        pin.write("1234\n")
    thread.join(30)
    assert not thread.is_alive(), "the agent did not answer after the card was pulled"
    assert len(outcome) == 1 and isinstance(outcome[0], BridgeCallError)
    assert outcome[0].code == "card_absent"
    assert running.client().status()["state"] == "running"  # and it keeps serving


def test_concurrent_auth_on_one_card_is_busy(
    card_process: StartCard, agent: Callable[..., Agent]
) -> None:
    card_process("cps-doctor")
    running = agent(fifo=True)
    first, outcome = running.authenticate_in_thread()
    with running.pin_file.open("w") as pin:  # the first request now holds the card
        with pytest.raises(BridgeCallError) as info:
            running.client().authenticate(Challenge.new().nonce)
        assert info.value.code == "busy"
        pin.write("1234\n")
    first.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], dict)  # the first one completed


def test_no_secret_in_the_audit_log(card_process: StartCard, agent: Callable[..., Agent]) -> None:
    card_process("cps-doctor")
    card_process("vitale-family")
    running = agent(pin="1234")
    client = running.client()
    token = client.authenticate(Challenge.new().nonce)
    card = client.read_vitale()
    text = running.audit.read_text()
    for entry in running.audit_lines():
        assert "1234" not in [str(v) for v in entry.values()]  # the PIN, as any field's value
        assert not [k for k in entry if "pin" in k and k != "pin_provider"]
    for person in card["beneficiaries"]:
        assert person["nir"] not in text and person["nir"][:13] not in text
        assert person["nir_masked"] in text
    assert token["signature"] not in text and token["certificate"][:40] not in text


def test_one_agent_per_user(card_process: StartCard, agent: Callable[..., Agent]) -> None:
    running = agent()
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "cardkit",
            "agent",
            "run",
            "--port",
            str(free_port()),
            "--allow-origin",
            ORIGIN,
            "--pin-provider",
            f"scripted:{running.pin_file}",
        ],
        env=running.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode != 0
    assert "another cardkit agent is running" in second.stderr + second.stdout
    assert running.client().status()["state"] == "running"


@pytest.mark.tools
def test_schemathesis_finds_no_server_error(
    card_process: StartCard, agent: Callable[..., Agent], tmp_path: Path
) -> None:
    """Generated requests from the OpenAPI document, with real cards behind: no 5xx."""
    tool = str(Path(sys.executable).parent / "schemathesis")
    if not Path(tool).exists():
        missing_component("schemathesis is not installed in the virtualenv")
    card_process("cps-doctor")
    card_process("vitale-family")
    running = agent()
    done = subprocess.run(
        [
            tool,
            "run",
            f"http://127.0.0.1:{running.port}/openapi.json",
            "-H",
            f"Origin: {ORIGIN}",
            "-c",
            "not_a_server_error",
            "--max-examples",
            "20",
            "--exclude-path",
            "/v1/events",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,  # its cache directory goes there, not into the work tree
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout
    assert running.client().status()["state"] == "running"


def test_two_cards_the_user_chooses(card_process: StartCard, agent: Callable[..., Agent]) -> None:
    """Two CPS/CPE present and none named: the agent asks which (the scripted provider takes
    the first); naming one skips the question."""
    first = card_process("cps-doctor")  # PIN 1234, the scripted answer
    second = card_process("cps-nurse")  # PIN 4321
    running = agent(pin="1234")
    client = running.client()
    token = client.authenticate(Challenge.new().nonce)
    assert token["format"] == "cardkit:1"
    with pytest.raises(BridgeCallError) as info:  # named: the nurse's card, wrong PIN for it
        client.authenticate(Challenge.new().nonce, card=second.reader)
    assert info.value.code == "pin_wrong"
    # 3, not "verified": the agent resets the card after a login, so the PIN does not stay
    # open for any other program.
    assert tries_left(first.reader) == 3 and tries_left(second.reader) == 2


def test_pinpad_provider_on_a_reader_without_pinpad(
    card_process: StartCard, agent: Callable[..., Agent], tmp_path: Path
) -> None:
    """vpcd readers have no PIN pad: the agent refuses rather than asking elsewhere."""
    cps = card_process("cps-doctor")
    with PcscConnection(cps.reader) as conn:
        assert conn.features() == {}  # what pcscd's vpcd driver reports
    running = agent(provider="pinpad")
    subprocess.run(  # consent given beforehand: the pinpad provider's dialogs need a person
        [sys.executable, "-m", "cardkit", "agent", "origins", "allow", ORIGIN],
        env=running.env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    with pytest.raises(BridgeCallError) as info:
        running.client().authenticate(Challenge.new().nonce)
    assert info.value.code == "pinpad_unavailable"
    assert tries_left(cps.reader) == 3


def test_agent_status_needs_no_origin(agent: Callable[..., Agent], tmp_path: Path) -> None:
    """``cardkit agent status`` asks the running agent through its control channel: it works
    with no origin configured at all, and the channel opens for nothing but the agent's
    own secret."""
    running = agent()
    env = {**running.env, "XDG_CONFIG_HOME": str(tmp_path / "no-config")}  # no origins
    done = subprocess.run(
        [sys.executable, "-m", "cardkit", "agent", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    status = json.loads(done.stdout)
    assert status["running"] is True and status["port"] == running.port
    assert status["pid"] == running.process.pid and "readers" in status
    # Without the secret, a request with no Origin is refused as before.
    code, _, body = running.raw(
        "GET", "/v1/status", {"Host": f"127.0.0.1:{running.port}", "Authorization": "Bearer x"}
    )
    assert code == 403 and json.loads(body)["code"] == "origin_not_allowed"
    # After the agent stops, status says so (exit 1) instead of failing.
    running.process.terminate()
    running.process.wait(30)
    done = subprocess.run(
        [sys.executable, "-m", "cardkit", "agent", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "no running agent" in done.stdout


def test_web_eid_tokens(card_process: StartCard, agent: Callable[..., Agent]) -> None:
    """/v1/auth with format web-eid:1.0: a Web eID token signed by the mock CPS through
    OpenSC, which cardkit's Web eID validation accepts with the TEST IGC-Santé CAs configured
    (as a Web eID validator would be), and which signs exactly what the genuine Web eID test
    tokens sign (the same function checks both: tests/auth/test_webeid.py)."""
    import base64
    import datetime as dt
    import secrets

    from cryptography import x509

    from cardkit.auth import webeid

    card_process("cps-doctor")
    running = agent()
    nonce = base64.b64encode(secrets.token_bytes(32)).decode()  # as Web eID makes them
    token = running.client().authenticate(nonce, format="web-eid:1.0")
    assert set(token) == {"unverifiedCertificate", "algorithm", "signature", "format", "appVersion"}
    assert token["format"] == "web-eid:1.0" and token["algorithm"] == "RS256"
    store = MemoryNonceStore()
    store.issue(Challenge(nonce, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)))
    holder = validator().validate_web_eid(json.dumps(token), ORIGIN, nonce, store)
    assert holder.surname == "LEFEBVRE" and holder.country == "FR"
    # Byte level: RSASSA-PKCS1-v1_5 with SHA-256 over SHA-256(origin) || SHA-256(nonce).
    cert = x509.load_der_x509_certificate(base64.b64decode(token["unverifiedCertificate"]))
    signature = base64.b64decode(token["signature"])
    webeid.verify(
        cert.public_key(), "RS256", signature, webeid.signed_input(ORIGIN, nonce, "RS256")
    )
    # The portal's CPS door takes it too (either format).
    store.issue(Challenge(nonce + "A", dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)))
    again = running.client().authenticate(nonce + "A", format="web-eid:1.0")
    assert validator().validate(json.dumps(again), ORIGIN, nonce + "A", store).surname == "LEFEBVRE"
    refused = running.raw(
        "POST",
        "/v1/auth",
        {"Host": f"127.0.0.1:{running.port}", "Origin": ORIGIN, "Content-Type": "application/json"},
        json.dumps({"nonce": "short+/=", "format": "web-eid:1.0"}).encode(),
    )
    assert refused[0] == 400 and json.loads(refused[2])["code"] == "nonce_invalid"
