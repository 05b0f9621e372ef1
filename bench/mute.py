"""How long each command, the doctor and each bridge endpoint take to give up on a card that
stopped answering, against the card deadline they are set to (``--deadline``, seconds).

Mock cards that go silent (``mocks.cards.mute``, after their ATR) are served from this
process in vpcd readers and re-seated between runs; commands run as a person runs them, in
processes of their own. ``over_deadline`` is each time divided by the deadline: what is left
above 1 is starting Python and cardkit, the guard's last look, and for PKCS#11 commands the
worker process (whose limit is twice the deadline). The doctor is timed on a healthy setup
too, with the same two cards answering.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.stats import emit
from cardkit.auth import Challenge
from cardkit.pkcs11.discovery import search_list
from cardkit.transport.pcsc import PcscBackend
from mocks.cards import build_card
from mocks.cards.mute import MuteCard
from mocks.harness import (
    HarnessError,
    free_vpcd_slot,
    run_cardkit,
    start_agent,
    wait_for_card,
)
from mocks.vpcd import VpcdCard

ORIGIN = "https://portal.example"


def cardkit(*args: str, stdin: str = "") -> tuple[int, float]:
    code, _output, seconds = run_cardkit(*args, stdin=stdin)
    return code, round(seconds, 2)


class Seat:
    """A mock card in a vpcd reader that a run can silence and re-seat."""

    def __init__(self, backend: PcscBackend, profile: str, taken: set[int]) -> None:
        self.backend = backend
        self.card = MuteCard(build_card(profile), "mute", after=10**9)
        slot, self.reader = free_vpcd_slot(backend, taken)
        self.vcard = VpcdCard(self.card, slot=slot)
        self.vcard.insert()
        wait_for_card(backend, self.reader, present=True)

    def silent(self, mute: bool) -> None:
        """Re-seat the card (a silent card holds its reader until then), silent or not."""
        self.vcard.remove()
        wait_for_card(self.backend, self.reader, present=False)
        self.card.rearm()
        self.card.after = 0 if mute else 10**9
        self.vcard.insert()
        wait_for_card(self.backend, self.reader, present=True)

    def stop(self) -> None:
        self.card.release()
        self.vcard.stop()


def run(deadline: float) -> dict[str, object]:
    os.environ["CARDKIT_CARD_TIMEOUT"] = str(deadline)
    times: dict[str, float] = {}
    codes: dict[str, int] = {}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        document = tmp / "document.txt"
        document.write_text("compte rendu\n")
        backend = PcscBackend()
        try:
            cps = Seat(backend, "cps-doctor", set())
            vitale = Seat(backend, "vitale-family", {int(cps.vcard.slot)})
        except HarnessError as exc:
            raise SystemExit(str(exc)) from None
        stack.callback(vitale.stop)
        stack.callback(cps.stop)
        nonce = Challenge.new().nonce
        commands = {
            "info": (cps, ["info", "--reader", cps.reader], ""),
            "pin status": (cps, ["pin", "status", "--reader", cps.reader], ""),
            "pin change": (
                cps,
                ["pin", "change", "--reader", cps.reader, "--pin-stdin"],
                "1234\n1234\n",
            ),
            "certs": (cps, ["certs", "--reader", cps.reader], ""),
            "sign": (cps, ["sign", str(document), "--reader", cps.reader, "--pin-stdin"], "1234\n"),
            "token create": (
                cps,
                [
                    "token",
                    "create",
                    "--origin",
                    ORIGIN,
                    "--nonce",
                    nonce,
                    "--reader",
                    cps.reader,
                    "--pin-stdin",
                ],
                "1234\n",
            ),
            "vitale read": (vitale, ["vitale", "read", "--reader", vitale.reader], ""),
        }
        for name, (seat, args, stdin) in commands.items():
            seat.silent(True)
            codes[name], times[name] = cardkit(*args, stdin=stdin)
        cps.silent(True)
        vitale.silent(False)
        codes["doctor"], times["doctor"] = cardkit("doctor", "--json")
        cps.silent(False)
        _, healthy_doctor = cardkit("doctor", "--json")

        module = next(str(c.path) for c in search_list() if c.kind == "opensc")
        agent = start_agent(
            tmp / "agent", module, quiet=True, env={"CARDKIT_CARD_TIMEOUT": str(deadline)}
        )
        stack.callback(agent.stop)
        client = agent.client(timeout=600)
        client.authenticate(Challenge.new().nonce, card=cps.reader)  # consent, workers started
        client.read_vitale(card=vitale.reader)
        calls: list[tuple[str, Seat, str, dict[str, str]]] = [
            ("/v1/auth", cps, "authenticate", {"nonce": Challenge.new().nonce}),
            ("/v1/vitale/read", vitale, "read_vitale", {}),
        ]
        for name, seat, endpoint, fields in calls:
            seat.silent(True)
            started = time.monotonic()
            try:
                client.call(endpoint, card=seat.reader, **fields)
                codes[name] = 0
            except Exception as exc:  # the endpoint's problem document, as the client raises it
                codes[name] = int(getattr(exc, "status", 1))
            times[name] = round(time.monotonic() - started, 2)
    over = {name: round(t / deadline, 2) for name, t in times.items()}
    return {
        "bench": "mute",
        "deadline_s": deadline,
        "seconds": times,
        "exit_codes": codes,
        "over_deadline": over,
        "ratio": round(statistics.median(over.values()), 3),
        "doctor_healthy_s": healthy_doctor,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench mute", description=__doc__)
    parser.add_argument("--deadline", type=float, default=10.0, help="the card deadline (s)")
    args = parser.parse_args(argv)
    result = run(args.deadline)
    seconds = result["seconds"]
    codes = result["exit_codes"]
    assert isinstance(seconds, dict) and isinstance(codes, dict)
    for name, value in seconds.items():
        print(f"  {name:18}: {value:6.2f} s  (exit/status {codes[name]})")
    print(f"  doctor, healthy    : {result['doctor_healthy_s']:6.2f} s")
    print(f"  median time / deadline: {result['ratio']}")
    emit(result)
