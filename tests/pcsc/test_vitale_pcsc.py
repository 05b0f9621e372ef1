"""Vitale mock cards read through real pcscd + vpcd, as on a practice PC."""

from __future__ import annotations

import threading

import pytest

from cardkit.apdu import CommandAPDU, Ins
from cardkit.transport import CardRemoved
from cardkit.transport.pcsc import PcscConnection
from cardkit.vitale.card import VitaleCard, VitaleDataError, VitaleNirInvalid
from cardkit.vitale.source import PcscVitaleSource
from mocks.cards import build_card
from tests.pcsc.conftest import Pcsc, ServeCard


def test_two_slot_practice_reader(pcsc: Pcsc, serve_card: ServeCard) -> None:
    """CPS in slot 0, Vitale in slot 1: the Vitale source finds the patient's card."""
    serve_card("cps-doctor", slot=0)
    serve_card("vitale-family", slot=1)
    data = PcscVitaleSource(pcsc.backend).read()
    assert [b.first_name for b in data.beneficiaries] == ["MARIE", "JEAN", "LUCIE", "HUGO"]
    assert data.beneficiaries[2].nir.department == "2A"
    assert data.insured.nir.number == "269054958815780"


@pytest.mark.parametrize(
    ("profile", "people"),
    [("vitale-single", 1), ("vitale-family", 4)],
)
def test_good_profiles(pcsc: Pcsc, serve_card: ServeCard, profile: str, people: int) -> None:
    vcard = serve_card(profile)
    data = PcscVitaleSource(pcsc.backend).read(pcsc.reader_for(vcard.slot))
    assert len(data.beneficiaries) == people and data.insured.insured
    assert all(b.nir.is_valid for b in data.beneficiaries)


@pytest.mark.parametrize(
    ("profile", "error"),
    [("vitale-bad-key", VitaleNirInvalid), ("vitale-truncated", VitaleDataError)],
)
def test_faulty_profiles(
    pcsc: Pcsc, serve_card: ServeCard, profile: str, error: type[Exception]
) -> None:
    vcard = serve_card(profile)
    with pytest.raises(error):
        PcscVitaleSource(pcsc.backend).read(pcsc.reader_for(vcard.slot))


def test_removed_mid_read(pcsc: Pcsc, serve_card: ServeCard) -> None:
    """Pulled while the NIR file is being read: CardRemoved, no partial result."""
    card = build_card("vitale-family")
    reads = 0
    read_binary = card.handlers[Ins.READ_BINARY]
    pulled = threading.Event()

    def pull() -> None:
        vcard.remove(timeout=0)
        pulled.set()

    def read_then_pull(command: CommandAPDU) -> tuple[bytes, int]:
        nonlocal reads
        reads += 1
        if reads == 2:  # the NIR file: the card goes away instead of answering
            threading.Thread(target=pull).start()
            pulled.wait(5)
        return read_binary(command)

    card.handlers[Ins.READ_BINARY] = read_then_pull
    vcard = serve_card(card)
    outcome: list[object] = []

    def work() -> None:
        try:
            with PcscConnection(pcsc.reader_for(vcard.slot)) as conn:
                outcome.append(VitaleCard(conn).read())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], CardRemoved)
