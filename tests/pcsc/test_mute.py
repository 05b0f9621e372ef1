"""Cards that stop answering, in real readers (pcscd + vpcd): every command, the doctor and
every bridge endpoint end with ``reader_timeout`` within the card deadline, the reader serves
the next command, and the agent keeps no thread stuck.

The deadline is set to 2 s here (``CARDKIT_CARD_TIMEOUT``); the mute cards
(:mod:`mocks.cards.mute`) are served from this process, so a test decides at which APDU a
card stalls and can pull it out (what a person does) to end the stall.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cardkit.auth import Challenge
from cardkit.errors import ExitCode
from cardkit.pcsc_bridge.client import BridgeCallError
from mocks.cards import build_card
from mocks.cards.mute import MuteCard
from mocks.harness import AgentProcess, run_cardkit
from mocks.vpcd import VpcdCard
from tests.pcsc.conftest import ORIGIN, Pcsc, ServeCard

DEADLINE = 2.0
#: What a command may take beyond the deadline: starting Python and cardkit, a quarter of
#: the deadline for the guard's look, a worker process for PKCS#11 commands.
SLACK = 4.0
NEVER = 10**6
NONCE = Challenge.new().nonce
PUK = "12345678"  # cps-doctor's, public test material


@pytest.fixture(autouse=True)
def deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDKIT_CARD_TIMEOUT", str(DEADLINE))


def cardkit(*args: str, stdin: str = "") -> tuple[int, str, float]:
    return run_cardkit(*args, stdin=stdin, timeout=60)


def reseat(vcard: VpcdCard, pcsc: Pcsc) -> None:
    """Take the card out and put it back, as a person does with a card that stopped."""
    from mocks.harness import wait_for_card

    reader = pcsc.reader_for(vcard.slot)
    vcard.remove()
    wait_for_card(pcsc.backend, reader, present=False)
    vcard.insert(timeout=15)
    wait_for_card(pcsc.backend, reader, present=True)


@pytest.fixture
def mute(serve_card: ServeCard) -> Iterator[Callable[..., tuple[VpcdCard, MuteCard]]]:
    cards: list[MuteCard] = []

    def serve(profile: str, behaviour: str = "mute", after: int = 3, delay: float = 0.0):  # type: ignore[no-untyped-def]
        card = MuteCard(build_card(profile), behaviour, after, delay)
        cards.append(card)
        return serve_card(card), card

    yield serve
    for card in cards:
        card.release()


def command_lines(tmp_path: Path, reader: str) -> dict[str, tuple[list[str], str]]:
    document = tmp_path / "document.txt"
    document.write_text("compte rendu\n")
    return {
        "info": (["info", "--reader", reader], ""),
        "pin status": (["pin", "status", "--reader", reader], ""),
        "certs": (["certs", "--reader", reader], ""),
        "pin change": (["pin", "change", "--reader", reader, "--pin-stdin"], "1234\n1234\n"),
        "pin unblock": (["pin", "unblock", "--reader", reader, "--pin-stdin"], PUK + "\n1234\n"),
        "sign": (["sign", str(document), "--reader", reader, "--pin-stdin"], "1234\n"),
        "token create": (
            [
                "token",
                "create",
                "--origin",
                ORIGIN,
                "--nonce",
                NONCE,
                "--reader",
                reader,
                "--pin-stdin",
            ],
            "1234\n",
        ),
    }


CPS_COMMANDS = (
    "info",
    "pin status",
    "pin change",
    "pin unblock",
    "certs",
    "sign",
    "token create",
)


@pytest.mark.parametrize("command", CPS_COMMANDS)
def test_cps_commands_on_a_mute_card(
    pcsc: Pcsc, mute: Callable[..., tuple[VpcdCard, MuteCard]], tmp_path: Path, command: str
) -> None:
    vcard, _card = mute("cps-doctor", after=0)  # answers its ATR, then nothing
    reader = pcsc.reader_for(vcard.slot)
    args, stdin = command_lines(tmp_path, reader)[command]
    code, output, seconds = cardkit(*args, stdin=stdin)
    assert code == ExitCode.CARD_TIMEOUT, output
    assert "did not answer within 2 s" in output and "take it out of the reader" in output
    assert seconds < DEADLINE + SLACK
    reseat(vcard, pcsc)
    code, output, _ = cardkit(*args, stdin=stdin)
    assert code == 0, output


@pytest.mark.parametrize("command", ["sign", "token create"])
def test_pkcs11_commands_on_a_card_mute_inside_the_middleware(
    pcsc: Pcsc, mute: Callable[..., tuple[VpcdCard, MuteCard]], tmp_path: Path, command: str
) -> None:
    """The card stalls while OpenSC talks to it, in the worker process: killed at the limit."""
    vcard, card = mute("cps-doctor", after=NEVER)
    reader = pcsc.reader_for(vcard.slot)
    args, stdin = command_lines(tmp_path, reader)[command]
    before = card.answered
    assert cardkit(*args, stdin=stdin)[0] == 0
    total = card.answered - before
    card.after = card.answered + total - 3  # three APDUs before the end: inside OpenSC
    code, output, seconds = cardkit(*args, stdin=stdin)
    assert code == ExitCode.CARD_TIMEOUT, output
    assert seconds < 2 * DEADLINE + SLACK  # the middleware's limit is twice the deadline
    reseat(vcard, pcsc)
    assert cardkit(*args, stdin=stdin)[0] == 0


def test_vitale_read_on_a_mute_card(
    pcsc: Pcsc, mute: Callable[..., tuple[VpcdCard, MuteCard]]
) -> None:
    vcard, _card = mute("vitale-family", after=2)
    reader = pcsc.reader_for(vcard.slot)
    code, output, seconds = cardkit("vitale", "read", "--reader", reader)
    assert code == ExitCode.CARD_TIMEOUT, output
    assert seconds < DEADLINE + SLACK
    reseat(vcard, pcsc)
    code, output, _ = cardkit("vitale", "read", "--reader", reader, "--json")
    assert code == 0 and len(json.loads(output)["beneficiaries"]) == 4


def test_a_late_answer_times_out_and_the_next_command_works(
    pcsc: Pcsc, mute: Callable[..., tuple[VpcdCard, MuteCard]]
) -> None:
    """Late by half the deadline again: this command gives up; the next, started at once,
    waits for pcscd to deliver the late answer to nobody, then works (no re-seating)."""
    vcard, _card = mute("cps-doctor", "late", after=3, delay=1.5)
    reader = pcsc.reader_for(vcard.slot)
    code, output, seconds = cardkit("info", "--reader", reader, "--json")
    assert code == ExitCode.CARD_TIMEOUT and seconds < DEADLINE + SLACK, output
    code, output, _ = cardkit("info", "--reader", reader, "--json")
    assert code == 0 and json.loads(output)["cps"]["identity"]["surname"] == "LEFEBVRE"


def test_a_slow_answer_inside_the_deadline_is_waited_for(
    pcsc: Pcsc, mute: Callable[..., tuple[VpcdCard, MuteCard]]
) -> None:
    vcard, _card = mute("cps-doctor", "slow", after=3, delay=0.6)
    code, output, seconds = cardkit("info", "--reader", pcsc.reader_for(vcard.slot), "--json")
    assert code == 0, output
    assert seconds > 0.6 * DEADLINE  # it did wait for the slow answer
    assert json.loads(output)["cps"]["identity"]["surname"] == "LEFEBVRE"


def test_doctor_on_a_mute_card(pcsc: Pcsc, mute: Callable[..., tuple[VpcdCard, MuteCard]]) -> None:
    """The doctor names the card that stopped, skips what would wait for it, and finishes
    in about one card deadline."""
    vcard, _card = mute("cps-doctor", after=3)
    reader = pcsc.reader_for(vcard.slot)
    code, output, seconds = cardkit("doctor", "--json")
    report = json.loads(output[: output.rindex("}") + 1])
    findings = {f["check"]: f for f in report["findings"]}
    card = findings[f"cards.card:{reader}"]
    assert card["status"] == "error" and card["evidence"]["error"] == "reader_timeout"
    assert "stopped answering" in card["finding"]
    assert findings["pkcs11.modules"]["status"] == "skipped"
    assert reader in findings["pkcs11.modules"]["finding"]
    assert seconds < DEADLINE + SLACK
    assert code != 0


# --- the agent --------------------------------------------------------------------------


def threads(agent: AgentProcess) -> int:
    return len(os.listdir(f"/proc/{agent.process.pid}/task"))


def settled_threads(agent: AgentProcess, at_most: int, within: float = 15.0) -> int:
    """The agent's thread count once it is back to ``at_most`` (or what it is at the end)."""
    deadline = time.monotonic() + within
    while (count := threads(agent)) > at_most and time.monotonic() < deadline:
        time.sleep(0.2)
    return count


@pytest.fixture
def slow_agent(agent: Callable[..., AgentProcess]) -> AgentProcess:
    return agent(env={"CARDKIT_CARD_TIMEOUT": str(DEADLINE)})


def call(agent: AgentProcess, what: str, reader: str) -> tuple[object, float]:
    started = time.monotonic()
    client = agent.client(timeout=60)
    try:
        if what == "auth":
            result: object = client.authenticate(Challenge.new().nonce, card=reader)
        else:
            result = client.read_vitale(card=reader)
    except BridgeCallError as exc:
        result = exc
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    ("profile", "endpoint", "stall"),
    [
        ("cps-doctor", "auth", "face"),
        ("cps-doctor", "auth", "middleware"),
        ("vitale-family", "vitale", "face"),
    ],
)
def test_agent_endpoints_on_a_mute_card(
    pcsc: Pcsc,
    mute: Callable[..., tuple[VpcdCard, MuteCard]],
    slow_agent: AgentProcess,
    profile: str,
    endpoint: str,
    stall: str,
) -> None:
    vcard, card = mute(profile, after=NEVER)
    reader = pcsc.reader_for(vcard.slot)
    served, _ = call(slow_agent, endpoint, reader)  # consent, the reader's worker, warm
    assert not isinstance(served, BridgeCallError), served
    before = card.answered
    served, _ = call(slow_agent, endpoint, reader)  # what a warm call sends
    assert not isinstance(served, BridgeCallError), served
    idle = threads(slow_agent)
    total = card.answered - before
    card.after = card.answered + (3 if stall == "face" else total - 3)

    failed, seconds = call(slow_agent, endpoint, reader)
    assert isinstance(failed, BridgeCallError) and failed.code == "reader_timeout", failed
    assert failed.status == 504
    limit = DEADLINE if stall == "face" else 2 * DEADLINE  # the middleware's limit
    assert seconds < limit + SLACK
    assert slow_agent.client().status()["readers"]  # it kept answering
    assert settled_threads(slow_agent, idle) <= idle  # no thread left waiting on the card

    reseat(vcard, pcsc)
    served, _ = call(slow_agent, endpoint, reader)
    assert not isinstance(served, BridgeCallError), served
    assert settled_threads(slow_agent, idle) <= idle
