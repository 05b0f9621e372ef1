"""mocks.vpcd against a scripted vpcd peer on loopback: framing, control messages, busy
slots and reconnection, without pcscd."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from mocks.cards import build_card
from mocks.vpcd import GET_ATR, POWER_ON, CardState, SlotBusy, VpcdCard


class FakeVpcd:
    """Plays vpcd's side: listens, and lets the test talk to whichever card connects."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.server.settimeout(10)

    def accept(self) -> socket.socket:
        conn, _ = self.server.accept()
        conn.settimeout(10)
        return conn

    @staticmethod
    def send(conn: socket.socket, payload: bytes) -> None:
        # As vpcd does: length and payload in two writes.
        conn.sendall(len(payload).to_bytes(2, "big"))
        conn.sendall(payload)

    @staticmethod
    def receive(conn: socket.socket) -> bytes:
        header = conn.recv(2, socket.MSG_WAITALL)
        length = int.from_bytes(header, "big")
        return conn.recv(length, socket.MSG_WAITALL)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def peer() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


def start_insert(card: VpcdCard) -> threading.Thread:
    thread = threading.Thread(target=card.insert, kwargs={"timeout": 10}, daemon=True)
    thread.start()
    return thread


def test_framing_and_control(peer: FakeVpcd) -> None:
    mock = build_card("cps-doctor")
    with VpcdCard(mock, port=peer.port, netns=None) as card:
        waiter = start_insert(card)
        conn = peer.accept()
        peer.send(conn, bytes([GET_ATR]))
        assert peer.receive(conn) == mock.atr
        waiter.join(5)
        assert card.state is CardState.INSERTED
        peer.send(conn, bytes([POWER_ON]))  # no answer expected
        peer.send(conn, bytes.fromhex("00a4000c023f00"))
        assert peer.receive(conn) == b"\x90\x00"
        peer.send(conn, bytes.fromhex("0020000100"))
        assert peer.receive(conn) == b"\x63\xc3"
        assert card.apdus_served == 2
        conn.close()


def test_removal_closes_socket(peer: FakeVpcd) -> None:
    with VpcdCard(build_card("cps-doctor"), port=peer.port, netns=None) as card:
        waiter = start_insert(card)
        conn = peer.accept()
        peer.send(conn, bytes([GET_ATR]))
        peer.receive(conn)
        waiter.join(5)
        card.remove()
        assert conn.recv(2) == b""  # vpcd sees EOF: card removed
        assert card.state is CardState.REMOVED


def test_busy_slot_detected(peer: FakeVpcd) -> None:
    """vpcd accepts a second card on a busy slot but never talks to it."""
    with VpcdCard(
        build_card("cps-doctor"), port=peer.port, netns=None, first_contact_timeout=0.3
    ) as card:
        errors: list[BaseException] = []

        def insert() -> None:
            try:
                card.insert(timeout=10)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=insert)
        thread.start()
        conn = peer.accept()  # accepted, then silence
        thread.join(10)
        assert len(errors) == 1 and isinstance(errors[0], SlotBusy)
        assert card.state is CardState.BUSY
        conn.close()


def test_reconnects_when_vpcd_goes_away(peer: FakeVpcd) -> None:
    with VpcdCard(build_card("cps-doctor"), port=peer.port, netns=None, retry_delay=0.05) as card:
        waiter = start_insert(card)
        first = peer.accept()
        peer.send(first, bytes([GET_ATR]))
        peer.receive(first)
        waiter.join(5)
        first.close()  # pcscd restarted
        second = peer.accept()  # the card comes back by itself
        peer.send(second, bytes([GET_ATR]))
        assert peer.receive(second) == card.card.atr
        second.close()


def test_insert_times_out_without_vpcd() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # a port nobody listens on once closed
    with VpcdCard(build_card("cps-doctor"), port=port, netns=None, retry_delay=0.05) as card:
        with pytest.raises(TimeoutError, match="did not take the card"):
            card.insert(timeout=0.3)
        card.remove()
        assert card.state is CardState.REMOVED
