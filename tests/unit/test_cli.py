"""The CLI against in-process readers: output shapes and exit codes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cardkit.cli import State, cli
from cardkit.errors import ExitCode
from cardkit.transport.inprocess import InProcessBackend
from mocks.cards import build_card


@pytest.fixture
def backend() -> InProcessBackend:
    b = InProcessBackend()
    b.insert("Virtual PCD 00 00", build_card("cps-doctor"))
    b.add_reader("Virtual PCD 00 01")
    return b


def run(backend: InProcessBackend, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), obj=State(lambda: backend))
    return result.exit_code, result.output


def test_readers_json(backend: InProcessBackend) -> None:
    code, out = run(backend, "readers", "--json")
    assert code == 0
    data = json.loads(out)
    first, second = data["readers"]
    assert first["name"] == "Virtual PCD 00 00" and first["card_present"] is True
    assert first["atr"] == "3BAC00402A001225006480000310009000"
    assert first["card"]["family"] == "cps" and first["card"]["name"] == "CPS3 (contact)"
    assert second["card_present"] is False and second["card"] is None


def test_readers_table(backend: InProcessBackend) -> None:
    code, out = run(backend, "readers")
    assert code == 0 and "CPS3 (contact)" in out and "Virtual PCD 00 01" in out


def test_info_json(backend: InProcessBackend) -> None:
    code, out = run(backend, "info", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["reader"] == "Virtual PCD 00 00"
    assert data["atr"]["valid"] is True and data["atr"]["protocols"] == ["T=0"]
    assert data["atr"]["historical"] == "001225006480000310009000"
    assert data["card"]["name"] == "CPS3 (contact)"


def test_info_unknown_card(backend: InProcessBackend) -> None:
    backend.insert("Virtual PCD 00 01", build_card("unknown-card"))
    code, out = run(backend, "info", "--reader", "01", "--json")
    data = json.loads(out)
    assert code == 0 and data["card"]["known"] is False and data["card"]["family"] == "unknown"
    code, out = run(backend, "info", "--reader", "01")
    assert "unknown card" in out


def test_no_card_exit_code(backend: InProcessBackend) -> None:
    code, out = run(backend, "info", "--reader", "1", "--json")
    assert code == ExitCode.NO_CARD
    assert json.loads(out)["error"]["code"] == "card_absent"


def test_no_reader_exit_code() -> None:
    code, out = run(InProcessBackend(), "info")
    assert code == ExitCode.NO_READER and "no reader" in out


def test_empty_readers_listing() -> None:
    code, out = run(InProcessBackend(), "readers")
    assert code == 0 and "No reader" in out
