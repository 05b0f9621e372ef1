"""Attack tests against real processes: the agent as a user runs it, mock cards in pcscd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.pcsc.conftest import agent, card_process, opensc, pcsc  # noqa: F401 - fixtures


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/security/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.pcsc)


ROOT = Path(__file__).resolve().parents[2]
