"""Reaching a card: reader resolution (transport), slot mapping (pkcs11), PIN checks before the
middleware and tries-left fallback (cps)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytest

from cardkit.atr import CardFamily
from cardkit.cps.card import tries_left, with_tries_left
from cardkit.cps.pkcs11 import authentication_key
from cardkit.errors import CardkitError, InvalidPinFormat, NoCardChosen, WrongPin
from cardkit.pkcs11 import Module, Pkcs11Error, SlotInfo, TokenNotFound
from cardkit.pkcs11.token import slot_of_reader
from cardkit.transport import CardRemoved, NoCard, ReaderUnavailable
from cardkit.transport.inprocess import InProcessBackend
from cardkit.transport.readers import explain_failure, readers_holding, resolve_reader
from mocks.cards import build_card


@pytest.fixture
def two_cards() -> InProcessBackend:
    backend = InProcessBackend()
    backend.insert("Alpha Reader 00", build_card("cps-doctor"))
    backend.insert("Beta Reader 01", build_card("vitale-family"))
    backend.add_reader("Gamma Reader 02")
    return backend


class TestResolveReader:
    def test_by_index_name_and_part(self) -> None:
        backend = InProcessBackend()
        backend.add_reader("Alpha Reader 00")
        backend.insert("Beta Reader 01", build_card("cps-doctor"))
        assert resolve_reader(backend) == "Beta Reader 01"
        assert resolve_reader(backend, "0", need_card=False) == "Alpha Reader 00"
        assert resolve_reader(backend, "alpha") == "Alpha Reader 00"
        assert resolve_reader(backend, "Beta Reader 01") == "Beta Reader 01"
        with pytest.raises(ReaderUnavailable, match="several"):
            resolve_reader(backend, "reader")
        with pytest.raises(ReaderUnavailable, match="no reader matches"):
            resolve_reader(backend, "gamma")
        backend.insert("Alpha Reader 00", build_card("unknown-card"))
        with pytest.raises(ReaderUnavailable, match="choose one"):
            resolve_reader(backend)

    def test_no_readers_or_cards(self) -> None:
        backend = InProcessBackend()
        with pytest.raises(ReaderUnavailable):
            resolve_reader(backend)
        backend.add_reader("r")
        with pytest.raises(NoCard):
            resolve_reader(backend)
        assert resolve_reader(backend, need_card=False) == "r"

    def test_family_filter(self, two_cards: InProcessBackend) -> None:
        assert resolve_reader(two_cards, family=CardFamily.CPS) == "Alpha Reader 00"
        assert resolve_reader(two_cards, family=CardFamily.VITALE) == "Beta Reader 01"
        assert readers_holding(two_cards, CardFamily.VITALE) == ["Beta Reader 01"]
        with pytest.raises(NoCard, match="no cps card in 'Gamma Reader 02'"):
            resolve_reader(two_cards, "gamma", family=CardFamily.CPS)
        two_cards.remove("Beta Reader 01")
        with pytest.raises(NoCard, match="no vitale card in any reader"):
            resolve_reader(two_cards, family=CardFamily.VITALE)

    def test_chooser_when_several_fit(self, two_cards: InProcessBackend) -> None:
        two_cards.insert("Gamma Reader 02", build_card("cps-nurse"))
        offered: list[list[str]] = []

        def choose(candidates: list[str]) -> str | None:
            offered.append(candidates)
            return candidates[1]

        chosen = resolve_reader(two_cards, family=CardFamily.CPS, chooser=choose)
        assert chosen == "Gamma Reader 02"
        assert offered == [["Alpha Reader 00", "Gamma Reader 02"]]
        with pytest.raises(NoCardChosen):
            resolve_reader(two_cards, family=CardFamily.CPS, chooser=lambda c: None)
        with pytest.raises(NoCardChosen):  # a chooser cannot invent a reader
            resolve_reader(two_cards, family=CardFamily.CPS, chooser=lambda c: "Beta Reader 01")


@dataclass
class FakeModule:
    """Only the slot list; opening a session is a test failure."""

    listed: list[SlotInfo]

    def slot_for(self, reader: str) -> SlotInfo:
        return slot_of_reader(self.listed, reader)

    def open(self, slot: int) -> Any:
        raise AssertionError("the middleware must not be reached")


def slot(n: int, description: str, present: bool = True) -> SlotInfo:
    return SlotInfo(n, description, present, "CPS" if present else None, None, None)


class TestPkcs11Slot:
    def test_exact_name_then_prefix(self) -> None:
        slots = [slot(0, "Virtual PCD 00 00"), slot(1, "Virtual PCD 00 01 (slot 1)")]
        assert slot_of_reader(slots, "Virtual PCD 00 00").slot == 0
        assert slot_of_reader(slots, "Virtual PCD 00 01").slot == 1
        with pytest.raises(TokenNotFound, match="no PKCS#11 slot"):
            slot_of_reader(slots, "Other Reader")

    def test_empty_slot_is_no_card(self) -> None:
        with pytest.raises(TokenNotFound) as info:
            slot_of_reader([slot(0, "Reader A", present=False)], "Reader A")
        assert isinstance(info.value, NoCard) and info.value.code == "card_absent"


@pytest.mark.parametrize("pin", ["12", "12345", "12a4", "١٢٣٤", ""])
def test_malformed_pin_never_reaches_the_middleware(pin: str) -> None:
    m = cast(Module, FakeModule([slot(0, "Reader A")]))
    with pytest.raises(InvalidPinFormat), authentication_key(m, "Reader A", pin):
        pass


class TestTriesLeft:
    def test_from_the_card_face(self, two_cards: InProcessBackend) -> None:
        assert tries_left(two_cards, "Alpha Reader 00") == 3
        assert tries_left(two_cards, "Beta Reader 01") is None  # not a CPS face
        filled = with_tries_left(WrongPin("wrong PIN"), two_cards, "Alpha Reader 00")
        assert filled.tries_left == 3 and "3 tries left" in str(filled)
        kept = WrongPin("wrong PIN, 1 tries left", 1)
        assert with_tries_left(kept, two_cards, "Alpha Reader 00") is kept


class TestExplainFailure:
    def test_card_pulled(self, two_cards: InProcessBackend) -> None:
        two_cards.remove("Alpha Reader 00")
        error = explain_failure(Pkcs11Error("CKR_GENERAL_ERROR"), two_cards, "Alpha Reader 00")
        assert isinstance(error, CardRemoved)

    def test_reader_gone_or_service_down(self, two_cards: InProcessBackend) -> None:
        assert isinstance(
            explain_failure(Pkcs11Error("x"), two_cards, "Nowhere"), ReaderUnavailable
        )

        class Down(InProcessBackend):
            def states(self) -> Any:
                raise ReaderUnavailable("no service")

        error = explain_failure(Pkcs11Error("CKR_GENERAL_ERROR"), Down(), "Alpha Reader 00")
        assert isinstance(error, ReaderUnavailable) and error.code == "reader_unavailable"

    def test_unchanged_when_pcsc_sees_nothing_wrong(self, two_cards: InProcessBackend) -> None:
        original = Pkcs11Error("CKR_FUNCTION_FAILED")
        assert explain_failure(original, two_cards, "Alpha Reader 00") is original
        pin = WrongPin("wrong", 2)
        assert explain_failure(pin, InProcessBackend(), "x") is pin


def test_errors_registry_is_consistent() -> None:
    """Classes sharing a code also share what the CLI and the bridge make of it."""
    import agent.service  # noqa: F401 - load every error class
    import cardkit.cli  # noqa: F401
    from cardkit.errors import registry

    seen: dict[str, tuple[int, int]] = {}
    pending: list[type[CardkitError]] = [CardkitError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        key = (int(cls.exit_code), cls.http_status)
        assert seen.setdefault(cls.code, key) == key, cls
    assert registry()["card_absent"] is NoCard
