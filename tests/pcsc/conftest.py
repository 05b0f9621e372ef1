"""Fixtures for tests against real pcscd with vpcd readers (scripts/pcscd-netns.sh).

Mock cards are served from this process (mocks.vpcd.VpcdCard threads that enter pcscd's
network namespace), so a test can both reach the card through PC/SC and poke at the card
object itself: change its data, count its APDUs, pull it out mid-command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cardkit.errors import CardkitError
from cardkit.pkcs11 import Module, search_list
from cardkit.transport.pcsc import PcscBackend
from mocks.cards import Iso7816Card, build_card
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


def wait_for_card(backend: PcscBackend, reader: str, present: bool, timeout: float = 10.0) -> None:
    """Block until pcscd reports the card present (or absent) in ``reader``."""
    deadline = time.monotonic() + timeout
    states = backend.states()
    while states[reader].card_present != present:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{reader}: card still {'absent' if present else 'present'}")
        states = backend.wait_for_change(states, min(left, 1.0))


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
    vpcd = sorted(n for n in names if n.startswith("Virtual PCD"))
    if len(vpcd) < 2:
        missing_component(f"vpcd readers not found in pcscd (readers: {names})")
    yield Pcsc(backend, vpcd)
    backend.close()


ServeCard = Callable[..., VpcdCard]


@pytest.fixture
def serve_card(pcsc: Pcsc) -> Iterator[ServeCard]:
    """``serve_card(profile_or_card, slot=None)`` -> VpcdCard, inserted and seen by pcscd."""
    served: list[tuple[VpcdCard, str]] = []

    def serve(card: str | Iso7816Card, slot: int | None = None) -> VpcdCard:
        if slot is None:
            states = pcsc.backend.states()
            taken = {v.slot for v, _ in served}
            free = [
                i
                for i, r in enumerate(pcsc.readers)
                if not states[r].card_present and i not in taken
            ]
            if not free:
                pytest.fail("no free vpcd slot: stop the demo's mock cards (scripts/demo.sh stop)")
            slot = free[0]
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


OPENSC_CONF = Path(__file__).resolve().parents[2] / "mocks" / "opensc.conf"


@pytest.fixture(scope="session")
def opensc(pcsc: Pcsc) -> Module:
    """OpenSC's PKCS#11 module, configured to read the mock cards' PIV face."""
    candidate = next(
        (c for c in search_list() if c.kind == "opensc" and Path(c.path).is_file()), None
    )
    if candidate is None:
        missing_component("OpenSC's opensc-pkcs11.so is not installed (run scripts/setup.sh)")
    # Read by OpenSC when the module initialises, which happens once per process.
    os.environ["OPENSC_CONF"] = str(OPENSC_CONF)
    return Module.load(Path(candidate.path))


@dataclass
class CardProcess:
    """A mock card served by ``python -m mocks.vpcd`` in a process of its own.

    Needed whenever a C library that keeps Python's GIL talks to the card (PyKCS11 does, for
    the whole of C_Initialize or C_Sign): a card served by a thread of the same process
    could never answer.
    """

    process: subprocess.Popen[str]
    slot: int
    reader: str
    run_dir: Path

    def ctl(self, command: str) -> str:
        """``insert``, ``remove`` or ``status``, through the card's control socket."""
        done = subprocess.run(
            [sys.executable, "-m", "mocks.vpcd", "ctl", "--slot", str(self.slot), command],
            env={**os.environ, "CARDKIT_RUN_DIR": str(self.run_dir)},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout.strip()


@pytest.fixture
def card_process(pcsc: Pcsc, tmp_path: Path) -> Iterator[Callable[[str], CardProcess]]:
    started: list[CardProcess] = []

    def start(profile: str) -> CardProcess:
        states = pcsc.backend.states()
        taken = {c.slot for c in started}
        free = [
            i for i, r in enumerate(pcsc.readers) if not states[r].card_present and i not in taken
        ]
        if not free:
            pytest.fail("no free vpcd slot: stop the demo's mock cards (scripts/demo.sh stop)")
        slot = free[0]
        env = {**os.environ, "CARDKIT_RUN_DIR": str(tmp_path)}
        process = subprocess.Popen(
            [sys.executable, "-m", "mocks.vpcd", "--profile", profile, "--slot", str(slot)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        card = CardProcess(process, slot, pcsc.readers[slot], tmp_path)
        started.append(card)
        wait_for_card(pcsc.backend, card.reader, present=True, timeout=20)
        return card

    yield start
    for card in started:
        card.process.terminate()
        try:
            card.process.wait(10)
        except subprocess.TimeoutExpired:
            card.process.kill()
        wait_for_card(pcsc.backend, card.reader, present=False)
