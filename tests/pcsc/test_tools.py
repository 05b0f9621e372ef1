"""Tools no one here wrote see the mock cards: pcsc-tools, OpenSC, and cardkit's own CLI as
a separate process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import require_tool
from tests.pcsc.conftest import Pcsc, ServeCard

pytestmark = pytest.mark.tools

CPS3_ATR = "3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00"


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{args[0]} failed: {done.stdout}{done.stderr}"
    return done.stdout


def test_pcsc_scan_sees_mock_card(pcsc: Pcsc, serve_card: ServeCard) -> None:
    tool = require_tool("pcsc_scan")
    vcard = serve_card("cps-doctor")
    readers = run(tool, "-r")
    assert pcsc.reader_for(vcard.slot) in readers
    cards = run(tool, "-c", "-n")
    block = cards.split(f"Reader {vcard.slot}: {pcsc.reader_for(vcard.slot)}")[1]
    assert "Card inserted" in block.split("Reader ")[0]
    assert f"ATR: {CPS3_ATR}" in block.split("Reader ")[0]


def test_opensc_tool_sees_mock_card(pcsc: Pcsc, serve_card: ServeCard) -> None:
    tool = require_tool("opensc-tool")
    vcard = serve_card("cps-doctor")
    listing = run(tool, "--list-readers")
    line = next(ln for ln in listing.splitlines() if pcsc.reader_for(vcard.slot) in ln)
    assert line.split()[1] == "Yes"  # the "Card" column
    atr = run(tool, "--reader", str(vcard.slot), "--atr").strip()
    assert atr.upper().replace(":", " ") == CPS3_ATR


def test_cardkit_cli_process(pcsc: Pcsc, serve_card: ServeCard) -> None:
    vcard = serve_card("unknown-card")
    reader = pcsc.reader_for(vcard.slot)
    data = json.loads(run(sys.executable, "-m", "cardkit", "readers", "--json"))
    row = next(r for r in data["readers"] if r["name"] == reader)
    assert row["card_present"] and row["card"]["family"] == "unknown"
    info = json.loads(run(sys.executable, "-m", "cardkit", "info", "--reader", reader, "--json"))
    assert info["atr"]["hex"] == vcard.card.atr.hex().upper()
    assert info["card"]["known"] is False
