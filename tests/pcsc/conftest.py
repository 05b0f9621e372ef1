"""Fixtures for tests against real pcscd with vpcd readers (scripts/pcscd-netns.sh).

Mock cards are served from this process (mocks.vpcd.VpcdCard threads that enter pcscd's
network namespace), so a test can both reach the card through PC/SC and poke at the card
object itself: change its data, count its APDUs, pull it out mid-command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cardkit.errors import CardkitError
from cardkit.pkcs11 import Module, search_list
from cardkit.transport.inprocess import SimulatedCard
from cardkit.transport.pcsc import PcscBackend
from mocks.cards import build_card
from mocks.harness import (
    AgentProcess,
    CardProcess,
    HarnessError,
    free_vpcd_slot,
    start_agent,
    start_card_process,
    vpcd_readers,
    wait_for_card,
)
from mocks.netns import default_netns
from mocks.vpcd import VpcdCard
from tests.conftest import missing_component


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/pcsc/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.pcsc)


@dataclass
class Pcsc:
    backend: PcscBackend
    readers: list[str]  # vpcd readers, slot order

    def reader_for(self, slot: int) -> str:
        return self.readers[slot]


@pytest.fixture(scope="session")
def pcsc() -> Iterator[Pcsc]:
    if default_netns() is None:
        missing_component("the 'cardkit' network namespace is missing: run scripts/setup.sh")
    if os.geteuid() != 0:
        missing_component("serving mock cards into pcscd's namespace needs root")
    backend = PcscBackend()
    try:
        names = backend.readers()
    except CardkitError as exc:
        missing_component(f"pcscd is not reachable: {exc}")
    vpcd = vpcd_readers(backend)
    if len(vpcd) < 2:
        missing_component(f"vpcd readers not found in pcscd (readers: {names})")
    yield Pcsc(backend, vpcd)
    backend.close()


ServeCard = Callable[..., VpcdCard]


def shown_pin_status(reader: str) -> tuple[int | None, bool]:
    """The card's own count as ``cardkit pin status`` shows it, from another process: (tries
    left, blocked), tries left None while the PIN is still verified."""
    shown = subprocess.run(
        [sys.executable, "-m", "cardkit", "pin", "status", "--reader", reader, "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    status = json.loads(shown.stdout)
    return status["tries_left"], status["blocked"]


def _free_slot(pcsc: Pcsc, taken: set[int]) -> int:
    try:
        return free_vpcd_slot(pcsc.backend, taken)[0]
    except HarnessError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def serve_card(pcsc: Pcsc) -> Iterator[ServeCard]:
    """``serve_card(profile_or_card, slot=None)`` -> VpcdCard, inserted and seen by pcscd."""
    served: list[tuple[VpcdCard, str]] = []

    def serve(card: str | SimulatedCard, slot: int | None = None) -> VpcdCard:
        if slot is None:
            slot = _free_slot(pcsc, {v.slot for v, _ in served})
        mock = build_card(card) if isinstance(card, str) else card
        vcard = VpcdCard(mock, slot=slot)
        vcard.insert(timeout=15)
        reader = pcsc.reader_for(slot)
        served.append((vcard, reader))
        wait_for_card(pcsc.backend, reader, present=True)
        return vcard

    yield serve
    for vcard, reader in served:
        vcard.stop()
        wait_for_card(pcsc.backend, reader, present=False)


@pytest.fixture(scope="session")
def opensc(pcsc: Pcsc) -> Module:
    """OpenSC's PKCS#11 module as a distribution installs it: its default configuration,
    which binds the mock CPS/CPE (CPS3 ATR) to the IAS-ECC "CPx" driver."""
    candidate = next(
        (c for c in search_list() if c.kind == "opensc" and Path(c.path).is_file()), None
    )
    if candidate is None:
        missing_component("OpenSC's opensc-pkcs11.so is not installed (run scripts/setup.sh)")
    assert "OPENSC_CONF" not in os.environ, "the tests run OpenSC with its default configuration"
    return Module.load(Path(candidate.path))


@pytest.fixture
def card_process(pcsc: Pcsc, tmp_path: Path) -> Iterator[Callable[[str], CardProcess]]:
    started: list[CardProcess] = []

    def start(profile: str) -> CardProcess:
        try:
            card = start_card_process(pcsc.backend, profile, tmp_path, {c.slot for c in started})
        except HarnessError as exc:
            pytest.fail(str(exc))
        started.append(card)
        return card

    yield start
    for card in started:
        card.stop(pcsc.backend)


ORIGIN = "https://portal.example"


@pytest.fixture
def agent(pcsc: Pcsc, opensc: Module, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def start(
        pin: str | None = "1234",
        fifo: bool = False,
        origins: tuple[str, ...] = (),
        provider: str | None = None,
        config: str = "",
        env: dict[str, str] | None = None,
    ) -> AgentProcess:
        try:
            running = start_agent(
                tmp_path / f"agent-{len(started)}",
                str(opensc.path),
                origins=(ORIGIN, *origins),
                prompt=provider,
                pin=pin,
                fifo=fifo,
                config=config,
                env=env,
            )
        except HarnessError as exc:
            pytest.fail(str(exc))
        started.append(running)
        return running

    yield start
    for running in started:
        try:
            code = running.stop()
        except HarnessError as exc:
            pytest.fail(str(exc))
        assert code == 0, "the agent did not shut down cleanly"
        assert running.audit_lines()[-1]["event"] == "stop"
