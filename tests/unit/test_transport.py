"""In-process backend, snapshot diffing and the reader monitor."""

from __future__ import annotations

import threading

import pytest

from cardkit.transport import (
    CardEvent,
    CardRemoved,
    EventKind,
    NoCard,
    ReaderBusy,
    ReaderMonitor,
    ReaderState,
    ReaderUnavailable,
    diff_states,
)
from cardkit.transport.inprocess import InProcessBackend
from mocks.cards import build_card

SELECT_MF = bytes.fromhex("00a4000c023f00")


def state(name: str, present: bool, atr: bytes | None = None, events: int = 0) -> ReaderState:
    return ReaderState(name, present, atr if present else None, events=events)


class TestDiff:
    def test_reader_added_with_card(self) -> None:
        events = list(diff_states({}, {"r": state("r", True, b"\x3b\x00")}))
        assert events == [
            CardEvent(EventKind.READER_ADDED, "r"),
            CardEvent(EventKind.CARD_INSERTED, "r", b"\x3b\x00"),
        ]

    def test_reader_removed_with_card(self) -> None:
        events = list(diff_states({"r": state("r", True, b"\x3b\x00")}, {}))
        assert [e.kind for e in events] == [EventKind.CARD_REMOVED, EventKind.READER_REMOVED]

    def test_insert_remove(self) -> None:
        empty, full = {"r": state("r", False)}, {"r": state("r", True, b"\x3b\x00", 1)}
        assert [e.kind for e in diff_states(empty, full)] == [EventKind.CARD_INSERTED]
        assert [e.kind for e in diff_states(full, empty)] == [EventKind.CARD_REMOVED]
        assert list(diff_states(full, full)) == []

    def test_swap_by_atr(self) -> None:
        a = {"r": state("r", True, b"\x3b\x00", 1)}
        b = {"r": state("r", True, b"\x3b\x01", 1)}
        assert [e.kind for e in diff_states(a, b)] == [
            EventKind.CARD_REMOVED,
            EventKind.CARD_INSERTED,
        ]

    def test_swap_by_event_counter(self) -> None:
        a = {"r": state("r", True, b"\x3b\x00", 1)}
        same_card_back = {"r": state("r", True, b"\x3b\x00", 3)}
        assert [e.kind for e in diff_states(a, same_card_back)] == [
            EventKind.CARD_REMOVED,
            EventKind.CARD_INSERTED,
        ]


class TestInProcess:
    def test_connect_transmit(self) -> None:
        backend = InProcessBackend()
        backend.add_reader("empty")
        backend.insert("r", build_card("cps-doctor"))
        assert backend.readers() == ["empty", "r"]
        with backend.connect("r") as conn:
            assert conn.atr == build_card("cps-doctor").atr
            assert conn.transmit(SELECT_MF) == b"\x90\x00"
        with pytest.raises(NoCard):
            backend.connect("empty")
        with pytest.raises(ReaderUnavailable):
            backend.connect("nope")

    def test_second_card_refused(self) -> None:
        backend = InProcessBackend()
        backend.insert("r", build_card("cps-doctor"))
        with pytest.raises(ReaderBusy):
            backend.insert("r", build_card("unknown-card"))

    def test_removed_card_raises_on_old_connection(self) -> None:
        backend = InProcessBackend()
        card = build_card("cps-doctor")
        backend.insert("r", card)
        conn = backend.connect("r")
        backend.remove("r")
        with pytest.raises(CardRemoved):
            conn.transmit(SELECT_MF)
        backend.insert("r", card)  # the same card back: the old connection stays dead
        with pytest.raises(CardRemoved):
            conn.transmit(SELECT_MF)
        assert backend.connect("r").transmit(SELECT_MF) == b"\x90\x00"

    def test_removed_inside_transaction(self) -> None:
        backend = InProcessBackend()
        backend.insert("r", build_card("cps-doctor"))
        conn = backend.connect("r")
        with pytest.raises(CardRemoved), conn.transaction():
            conn.transmit(SELECT_MF)
            backend.remove("r")
            conn.transmit(SELECT_MF)

    def test_exclusive(self) -> None:
        backend = InProcessBackend()
        backend.insert("r", build_card("cps-doctor"))
        first = backend.connect("r", exclusive=True)
        with pytest.raises(ReaderBusy):
            backend.connect("r")
        first.disconnect()
        backend.connect("r").disconnect()

    def test_transaction_excludes_other_connections(self) -> None:
        backend = InProcessBackend()
        card = build_card("cps-doctor")
        backend.insert("r", card)
        a, b = backend.connect("r"), backend.connect("r")
        order: list[str] = []
        b_started = threading.Event()

        def other() -> None:
            b_started.set()
            b.transmit(SELECT_MF)
            order.append("b")

        with a.transaction():
            order.append("a-begin")
            thread = threading.Thread(target=other)
            thread.start()
            b_started.wait(5)
            thread.join(0.2)  # b must still be waiting for the transaction
            order.append("a-end")
        thread.join(5)
        assert order == ["a-begin", "a-end", "b"]


class TestMonitor:
    def test_events_in_order(self) -> None:
        backend = InProcessBackend()
        backend.add_reader("r0")
        with ReaderMonitor(backend, wait_timeout=0.05) as monitor:
            assert monitor.get(5) == CardEvent(EventKind.READER_ADDED, "r0")
            card = build_card("cps-doctor")
            backend.insert("r0", card)
            assert monitor.get(5) == CardEvent(EventKind.CARD_INSERTED, "r0", card.atr)
            backend.remove("r0")
            assert monitor.get(5) == CardEvent(EventKind.CARD_REMOVED, "r0")
            backend.add_reader("r1")
            assert monitor.get(5) == CardEvent(EventKind.READER_ADDED, "r1")
            backend.remove_reader("r1")
            assert monitor.get(5) == CardEvent(EventKind.READER_REMOVED, "r1")
            assert monitor.get(0.1) is None
            assert set(monitor.states) == {"r0"}

    def test_quick_swap_is_seen(self) -> None:
        backend = InProcessBackend()
        card = build_card("cps-doctor")
        backend.insert("r", card)
        seen: list[EventKind] = []
        done = threading.Event()

        def listener(event: CardEvent) -> None:
            seen.append(event.kind)
            if len(seen) == 4:
                done.set()

        monitor = ReaderMonitor(backend, wait_timeout=5)
        monitor.subscribe(listener)
        with monitor:
            while len(seen) < 2:
                monitor.get(5)
            with backend._changed:  # remove and reinsert atomically: one change to observe
                backend.remove("r")
                backend.insert("r", card)
            assert done.wait(5)
        assert seen == [
            EventKind.READER_ADDED,
            EventKind.CARD_INSERTED,
            EventKind.CARD_REMOVED,
            EventKind.CARD_INSERTED,
        ]

    def test_stop_is_prompt_with_long_wait(self) -> None:
        backend = InProcessBackend()
        monitor = ReaderMonitor(backend, wait_timeout=3600).start()
        monitor.stop(timeout=5)
        assert monitor._thread is None


class TestFeatures:
    def test_parse(self) -> None:
        from cardkit.transport.base import FEATURE_VERIFY_PIN_DIRECT, parse_features

        # As a CCID PIN pad reader answers: VERIFY_PIN_DIRECT, MODIFY_PIN_DIRECT,
        # IFD_PIN_PROPERTIES.
        answer = bytes.fromhex("06 04 42 33 00 06 07 04 42 33 00 07 0A 04 42 33 00 0A")
        assert parse_features(answer) == {
            FEATURE_VERIFY_PIN_DIRECT: 0x42330006,
            0x07: 0x42330007,
            0x0A: 0x4233000A,
        }

    def test_malformed_answers(self) -> None:
        from cardkit.transport.base import parse_features

        assert parse_features(b"") == {}
        assert parse_features(bytes.fromhex("06 02 42 33")) == {}
        assert parse_features(bytes.fromhex("06 04 42 33 00 06 07 04 42")) == {6: 0x42330006}

    def test_simulated_readers_have_no_pinpad(self) -> None:
        backend = InProcessBackend()
        backend.insert("r", build_card("cps-doctor"))
        assert backend.connect("r").features() == {}
