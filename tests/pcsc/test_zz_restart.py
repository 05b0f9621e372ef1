"""pcscd restarts under a served card and an open backend: both recover by themselves.

Named to run last among the PC/SC tests, since it stops the daemon the others use.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from cardkit.pcsc_bridge.client import BridgeCallError
from mocks.harness import AgentProcess, CardProcess, wait_for_card
from mocks.vpcd import CardState
from tests.pcsc.conftest import Pcsc, ServeCard

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pcscd-netns.sh"


def status() -> str:
    """The script's status line, which names pcscd's pid."""
    return subprocess.run(
        ["bash", str(SCRIPT), "status"], capture_output=True, text=True, check=True
    ).stdout


def test_card_and_backend_survive_pcscd_restart(pcsc: Pcsc, serve_card: ServeCard) -> None:
    vcard = serve_card("cps-doctor")
    reader = pcsc.reader_for(vcard.slot)
    before = status()
    subprocess.run(["bash", str(SCRIPT), "stop"], check=True, timeout=30)
    subprocess.run(["bash", str(SCRIPT), "start"], check=True, timeout=60)
    assert status() != before  # a new pcscd process
    # The card reconnects to the new vpcd without being told; the backend's old context is
    # replaced on the next call.
    wait_for_card(pcsc.backend, reader, present=True, timeout=20)
    assert vcard.state is CardState.INSERTED
    assert pcsc.backend.states()[reader].atr == vcard.card.atr


def test_pcscd_stopped_during_auth_is_reader_unavailable(
    card_process: Callable[[str], CardProcess], agent: Callable[..., AgentProcess]
) -> None:
    """The PKCS#11 module only says CKR_GENERAL_ERROR when pcscd goes away under it; the
    agent asks PC/SC what happened and answers reader_unavailable, then recovers by itself
    once pcscd is back."""
    card_process("cps-doctor")
    running = agent(fifo=True)
    thread, outcome = running.authenticate_in_thread()
    with running.pin_file.open("w") as pin:  # opens once the agent waits for the PIN
        subprocess.run(["bash", str(SCRIPT), "stop"], check=True, timeout=30)
        pin.write("1234\n")
    thread.join(60)
    try:
        assert len(outcome) == 1 and isinstance(outcome[0], BridgeCallError), outcome
        assert outcome[0].code == "reader_unavailable", outcome[0].problem
        assert outcome[0].status == 503
    finally:
        subprocess.run(["bash", str(SCRIPT), "start"], check=True, timeout=60)
    # Back: the same agent serves again once pcscd and the card are back.
    deadline = time.monotonic() + 30
    while True:
        readers = running.client().status()["readers"]
        if any(r["card_present"] for r in readers) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert any(r["card_present"] for r in readers)
