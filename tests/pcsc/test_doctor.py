"""cardkit doctor on the real stack: pcscd with mock cards, OpenSC, the agent running."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from mocks.harness import AgentProcess, CardProcess


def doctor(running: AgentProcess, *args: str) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cardkit", "doctor", "--json", *args],
        env={**running.env, "HOME": str(running.home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, json.loads(done.stdout), time.monotonic() - started


def test_healthy_setup_is_all_ok(
    card_process: Callable[[str], CardProcess], agent: Callable[..., AgentProcess]
) -> None:
    card_process("cps-doctor")
    card_process("vitale-family")
    running = agent()
    subprocess.run(  # as the advisor would: the agent starts with the session
        [sys.executable, "-m", "cardkit", "agent", "install-service"],
        env={**running.env, "HOME": str(running.home)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    code, report, seconds = doctor(running, "--origin", running.origin)
    problems = [f for f in report["findings"] if f["status"] not in ("ok", "skipped")]
    assert problems == [] and code == 0, problems
    checks = {f["check"] for f in report["findings"]}
    assert {"pcsc.service", "agent.running", "agent.origin", "browser.preflight"} <= checks
    assert "agent.autostart" not in checks and "agent.loopback" not in checks
    assert any(c.startswith("certs.auth:") for c in checks)
    assert any(c.startswith("pkcs11.module:opensc") for c in checks)
    print(f"doctor on a healthy mock setup: {seconds:.2f} s (report: {report['duration_ms']} ms)")


def test_origin_not_allowed(
    card_process: Callable[[str], CardProcess], agent: Callable[..., AgentProcess]
) -> None:
    card_process("cps-doctor")
    running = agent()
    code, report, _ = doctor(running, "--origin", "https://autre-portail.example")
    found = {f["check"]: f for f in report["findings"]}
    assert code == 2
    assert found["agent.origin"]["status"] == "error"
    assert "allowed_origins" in found["agent.origin"]["remedy"]
    assert found["browser.preflight"]["status"] == "error"
    assert found["browser.preflight"]["evidence"]["http_status"] == 403
    assert found["agent.autostart"]["status"] == "warning"  # running, but not installed


def test_a_cps4_is_sent_to_the_cryptolib(card_process: Callable[[str], CardProcess]) -> None:
    """OpenSC does not know the CPS4's ATR: cardkit reads the card on its own path and the
    doctor says which middleware a real one needs, in French."""
    reader = card_process("cps4-pharmacist").reader
    done = subprocess.run(
        [sys.executable, "-m", "cardkit", "doctor", "--json", "--lang", "fr"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = {f["check"]: f for f in json.loads(done.stdout)["findings"]}
    card = found[f"cards.card:{reader}"]
    assert card["status"] == "ok" and "ROUSSEAU" in card["evidence"]["holder"]
    sees = found[f"pkcs11.sees:opensc:{reader}"]
    assert sees["status"] == "warning"
    assert sees["evidence"]["card"] == "CPS4 (contact)"
    assert sees["evidence"]["middleware"] == ["cryptolib"]
    assert "installez la Cryptolib CPS" in sees["remedy"]
