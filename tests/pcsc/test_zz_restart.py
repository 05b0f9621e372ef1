"""pcscd restarts under a served card and an open backend: both recover by themselves.

Named to run last among the PC/SC tests, since it stops the daemon the others use.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mocks.vpcd import CardState
from tests.pcsc.conftest import Pcsc, ServeCard, wait_for_card

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
