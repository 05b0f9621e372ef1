"""Attack tests against real processes: the agent as a user runs it, mock cards in pcscd."""

from __future__ import annotations

import os

import pytest

from tests.pcsc.conftest import agent, card_process, opensc, pcsc  # noqa: F401 - fixtures

#: Tests here that bring up pcscd, mock cards and the agent as real processes.
PROCESS_FIXTURES = {"agent", "card_process", "pcsc"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        in_here = "tests/security/" in str(item.path).replace(os.sep, "/")
        if in_here and PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.pcsc)
