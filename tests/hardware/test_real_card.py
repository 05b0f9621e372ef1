"""Opt-in checks against a real card: ``pytest tests/hardware --reader "NAME"``.

Collected only when ``--reader`` names a reader (tests/conftest.py); nothing here ever
presents a PIN.
"""

from __future__ import annotations

import pytest

from cardkit.apdu import ApduChannel, CommandAPDU, ResponseAPDU
from cardkit.atr import Atr, identify
from cardkit.transport.pcsc import PcscBackend


@pytest.fixture
def reader(request: pytest.FixtureRequest) -> str:
    name = request.config.getoption("--reader")
    assert isinstance(name, str)  # the directory is only collected with --reader
    return name


def test_real_card_atr_parses_and_is_identified(reader: str) -> None:
    backend = PcscBackend()
    try:
        with backend.connect(reader) as conn:
            atr = Atr.parse(conn.atr)
            identity = identify(conn.atr)
            print(f"{reader}: {atr.hex()} -> {identity.name} ({identity.source})")
            # SELECT MF answers something well-formed on any ISO 7816-4 card.
            answer = ApduChannel(conn).transmit(CommandAPDU(0, 0xA4, 0, 0x0C, b"\x3f\x00"))
            assert isinstance(answer, ResponseAPDU)
    finally:
        backend.close()
