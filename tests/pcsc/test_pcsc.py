"""cardkit's PC/SC transport against real pcscd, with mock cards in vpcd readers."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

import pytest

from cardkit.apdu import ApduChannel, CommandAPDU
from cardkit.atr import CardFamily, identify
from cardkit.cps import CpsCard
from cardkit.errors import WrongPin
from cardkit.transport import (
    CardRemoved,
    EventKind,
    NoCard,
    ReaderBusy,
    ReaderMonitor,
    ReaderState,
)
from cardkit.transport.pcsc import PcscBackend, PcscConnection
from mocks.cards import Access, build_card
from mocks.harness import wait_for_card
from mocks.vpcd import SlotBusy, VpcdCard
from tests.pcsc.conftest import Pcsc, ServeCard

SELECT_MF = bytes.fromhex("00a4000c023f00")


def test_readers_and_atr(pcsc: Pcsc, serve_card: ServeCard) -> None:
    vcard = serve_card("cps-doctor")
    reader = pcsc.reader_for(vcard.slot)
    state = pcsc.backend.states()[reader]
    assert state.card_present and state.atr == vcard.card.atr
    assert identify(state.atr).family is CardFamily.CPS
    with PcscConnection(reader) as conn:
        assert conn.atr == vcard.card.atr
        assert conn.protocol == "T=0"  # the CPS3 ATR offers T=0 only


def test_channel_over_pcscd(pcsc: Pcsc, serve_card: ServeCard) -> None:
    card = build_card("cps-doctor")
    vcard = serve_card(card)
    with PcscConnection(pcsc.reader_for(vcard.slot)) as conn:
        channel = ApduChannel(conn)
        channel.send(CommandAPDU(0, 0xA4, 0x08, 0x0C, bytes.fromhex("2F00")))
        ef_dir = channel.send(CommandAPDU(0, 0xB0, 0, 0, le=256))
        assert bytes.fromhex("E828BD080F8025000001FF0010") in ef_dir
        with pytest.raises(WrongPin) as info:
            channel.send(CommandAPDU(0, 0x20, 0, 1, b"0000"))
        assert info.value.tries_left == 2
        assert card.pins[1].pin.tries_left == 2  # counted by the card itself


def test_response_chaining_and_wrong_le_over_pcscd(pcsc: Pcsc, serve_card: ServeCard) -> None:
    card = build_card("unknown-card")  # answers 6Cxx on a wrong Le
    card.data_objects[0x77] = (bytes(range(256)) * 3, Access())
    vcard = serve_card(card)
    with PcscConnection(pcsc.reader_for(vcard.slot)) as conn:
        channel = ApduChannel(conn)
        before = vcard.apdus_served
        assert channel.send(CommandAPDU(0, 0xB2, 2, 0x14, le=3)) == b"second record"
        assert vcard.apdus_served - before == 2  # the first try, then the exact Le
        assert channel.send(CommandAPDU(0, 0xCA, 0, 0x77, le=256)) == bytes(range(256)) * 3


def test_transaction_excludes_other_clients(pcsc: Pcsc, serve_card: ServeCard) -> None:
    vcard = serve_card("cps-doctor")
    reader = pcsc.reader_for(vcard.slot)
    order: list[str] = []
    with PcscConnection(reader) as a, PcscConnection(reader) as b:
        started = threading.Event()

        def other() -> None:
            started.set()
            with b.transaction():
                order.append("b")
                b.transmit(SELECT_MF)

        with a.transaction():
            order.append("a-begin")
            thread = threading.Thread(target=other)
            thread.start()
            started.wait(5)
            for _ in range(20):  # b keeps waiting while a works
                a.transmit(SELECT_MF)
            thread.join(0.3)
            order.append("a-end")
        thread.join(15)
        assert not thread.is_alive()
    assert order == ["a-begin", "a-end", "b"]


def test_monitor_sees_insertion_and_removal(pcsc: Pcsc) -> None:
    backend = PcscBackend()
    monitor = ReaderMonitor(backend, wait_timeout=0.5).start()
    try:
        initial = {monitor.get(10) for _ in pcsc.readers}
        assert {e.reader for e in initial if e is not None} >= set(pcsc.readers)
        free = next(i for i, r in enumerate(pcsc.readers) if not backend.states()[r].card_present)
        card = build_card("unknown-card")
        with VpcdCard(card, slot=free) as vcard:
            vcard.insert(timeout=15)
            event = monitor.get(10)
            assert event is not None and event.kind is EventKind.CARD_INSERTED
            assert (event.reader, event.atr) == (pcsc.readers[free], card.atr)
            vcard.remove()
            event = monitor.get(10)
            assert event is not None and event.kind is EventKind.CARD_REMOVED
            assert event.reader == pcsc.readers[free]
    finally:
        monitor.stop()
        backend.close()


def test_removal_mid_transaction_raises_card_removed(pcsc: Pcsc, serve_card: ServeCard) -> None:
    vcard = serve_card("cps-doctor")
    reader = pcsc.reader_for(vcard.slot)
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            with PcscConnection(reader) as conn, conn.transaction():
                conn.transmit(SELECT_MF)
                vcard.remove()
                conn.transmit(SELECT_MF)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)  # bound: a hang fails the test instead of the run
    assert not thread.is_alive(), "transmit hung after the card was removed"
    assert len(outcome) == 1 and isinstance(outcome[0], CardRemoved)
    wait_for_card(pcsc.backend, reader, present=False)
    with pytest.raises(NoCard):
        PcscConnection(reader)


def test_removal_while_card_is_computing(pcsc: Pcsc, serve_card: ServeCard) -> None:
    """Pulled while the card has not answered yet: the client must not hang."""
    card = build_card("cps-doctor")
    entered, release = threading.Event(), threading.Event()

    def slow(command: CommandAPDU) -> tuple[bytes, int]:
        entered.set()
        release.wait(10)
        return b"", 0x9000

    card.handlers[0x88] = slow
    vcard = serve_card(card)
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            with PcscConnection(pcsc.reader_for(vcard.slot)) as conn:
                conn.transmit(bytes.fromhex("008800000401020304"))
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    assert entered.wait(10)
    vcard.remove(timeout=0.1)  # the card's thread is busy computing; don't wait for it
    release.set()
    thread.join(30)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], CardRemoved)


def test_second_card_on_busy_slot_is_refused(pcsc: Pcsc, serve_card: ServeCard) -> None:
    first = serve_card("cps-doctor")
    with (
        VpcdCard(
            build_card("unknown-card"), slot=first.slot, first_contact_timeout=2.0
        ) as intruder,
        pytest.raises(SlotBusy),
    ):
        intruder.insert(timeout=15)
    # The first card is still served.
    with PcscConnection(pcsc.reader_for(first.slot)) as conn:
        assert conn.transmit(SELECT_MF) == b"\x90\x00"


def test_vpcd_ports_are_confined_to_the_namespace(pcsc: Pcsc) -> None:
    """Nothing outside pcscd's namespace can reach vpcd's ports and insert a card."""
    ports = (0x8C7B, 0x8C7C)
    inside = subprocess.run(
        ["ip", "netns", "exec", "cardkit", "ss", "-Hltn"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for port in ports:  # the control: they do listen, in there
        assert f":{port}" in inside
    addresses = {"127.0.0.1", "::1"}
    for line in subprocess.run(
        ["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout.splitlines():
        addresses.add(line.split()[3].split("/")[0])
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for port in ports:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                try:
                    s.connect((address.split("%")[0], port))
                except OSError:
                    continue
                pytest.fail(f"vpcd port {port} reachable at {address} from outside the namespace")


def test_idle_monitor_does_not_spin(pcsc: Pcsc) -> None:
    """The monitor blocks in SCardGetStatusChange: a few wake-ups per second at most."""
    calls = 0

    class Counting(PcscBackend):
        def wait_for_change(
            self, known: Mapping[str, ReaderState], timeout: float
        ) -> dict[str, ReaderState]:
            nonlocal calls
            calls += 1
            return super().wait_for_change(known, timeout)

    backend = Counting()
    with ReaderMonitor(backend, wait_timeout=0.5):
        time.sleep(1.5)
    backend.close()
    assert calls <= 6  # ~3 at one wake-up per 0.5 s; a busy loop would make thousands


def test_monitor_stops_at_once_even_with_a_long_wait(pcsc: Pcsc) -> None:
    """SCardCancel interrupts the blocking wait: stop() does not wait for the timeout."""
    backend = PcscBackend()
    monitor = ReaderMonitor(backend, wait_timeout=3600).start()
    assert monitor.get(10) is not None  # running, and inside its wait soon after
    time.sleep(0.2)
    monitor.stop(timeout=10)
    assert monitor._thread is None  # joined: the wait was cancelled, not timed out
    backend.close()


HOLDER = """
import sys, time
from smartcard import scard
hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
hr, card, proto = scard.SCardConnect(ctx, sys.argv[1], scard.SCARD_SHARE_SHARED,
                                     scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
assert hr == 0, hr
sys.stdin.readline()  # "go"
assert scard.SCardBeginTransaction(card) == 0
print("holding", flush=True)
time.sleep(60)
"""


def test_card_held_by_another_program(
    pcsc: Pcsc, serve_card: ServeCard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pcsc-lite waits without end in SCardConnect and SCardBeginTransaction while another
    program holds a transaction; cardkit gives up after its deadline with ReaderBusy, both
    when connecting and when its own connection starts a transaction, and the card serves
    again once the other program lets go."""
    serve_card("cps-doctor")
    reader = pcsc.readers[0]
    monkeypatch.setattr(PcscConnection, "lock_timeout", 1.0)
    early = PcscConnection(reader)  # connected before the other program locks the card
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, reader],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(ReaderBusy, match="in use by another program"):
            CpsCard(early).certificates()
        early.disconnect()  # harmless: the abandoned handle is the helper thread's now
        with pytest.raises(ReaderBusy, match="in use by another program"):
            PcscConnection(reader)
    finally:
        holder.kill()
        holder.wait(10)
    with PcscConnection(reader) as again:
        assert CpsCard(again).pin_status().tries_left == 3
