"""What the agent costs while nobody uses it, and how fast it still reacts.

The agent runs all day on practice PCs. With two mock cards in two vpcd readers and a page
listening to ``/v1/events``, the agent idles for ``--seconds``; its CPU time over that window
is compared with the bare uvicorn server the bridge benchmark uses as its baseline
(``bench.bare_server``), idling over the very same window: ``ratio`` is agent over bare.
Then a card is pulled and put back ``--insertions`` times: ``insertion_ms`` is the time from
vpcd taking the card (the reader's driver seeing it) to the event reaching the page: pcscd's
own reaction is in it, as it is in what a person sees.

Linux only (CPU time is read from ``/proc``), like the vpcd setup it needs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from bench.stats import emit
from cardkit.pkcs11.discovery import search_list
from cardkit.transport.pcsc import PcscBackend
from mocks.cards import build_card
from mocks.harness import (
    HarnessError,
    free_port,
    free_vpcd_slot,
    start_agent,
    start_card_process,
    wait_for_card,
)
from mocks.vpcd import VpcdCard

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float:
    """CPU time of all the threads of a process, to the nanosecond (``schedstat``: clock
    ticks, 10 ms, would round a 0.05 % load over a minute to nothing)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def listen(port: int, origin: str, seen: list[tuple[float, bytes]]) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/events", headers={"Origin": origin}
    )
    with urllib.request.urlopen(request, timeout=3600) as stream:
        for line in stream:
            if line.startswith(b"event: "):
                seen.append((time.monotonic(), line.strip()))


def run(seconds: float, insertions: int) -> dict[str, object]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        backend = PcscBackend()
        try:
            cps = start_card_process(backend, "cps-doctor", tmp / "a")
            slot, reader = free_vpcd_slot(backend, {cps.slot})
        except HarnessError as exc:
            raise SystemExit(str(exc)) from None
        stack.callback(cps.stop)
        # Served from this process: its insert() returns when vpcd has taken the card, the
        # moment the latency is measured from.
        vitale = VpcdCard(build_card("vitale-family"), slot=slot)
        stack.callback(vitale.stop)
        vitale.insert()
        wait_for_card(backend, reader, present=True)
        module = next(str(c.path) for c in search_list() if c.kind == "opensc")
        agent = start_agent(tmp / "agent", module, log_level="warning", quiet=True)
        stack.callback(agent.stop)
        bare_port = free_port()
        bare = subprocess.Popen(
            [sys.executable, "-m", "bench.bare_server", str(bare_port)], cwd=ROOT
        )
        stack.callback(bare.wait, 10)
        stack.callback(bare.terminate)
        events: list[tuple[float, bytes]] = []
        threading.Thread(
            target=listen, args=(agent.port, agent.origin, events), daemon=True
        ).start()
        time.sleep(3)  # both started and settled; the page is listening

        agent_before, bare_before = cpu_seconds(agent.process.pid), cpu_seconds(bare.pid)
        memory_before = rss_mb(agent.process.pid)
        started = time.monotonic()
        time.sleep(seconds)
        window = time.monotonic() - started
        agent_cpu = cpu_seconds(agent.process.pid) - agent_before
        bare_cpu = cpu_seconds(bare.pid) - bare_before
        memory_after = rss_mb(agent.process.pid)

        latencies: list[float] = []
        for _ in range(insertions):
            vitale.remove()
            wait_for_card(backend, reader, present=False)
            time.sleep(0.5)
            count = len(events)
            vitale.insert()
            taken = time.monotonic()
            deadline = taken + 5
            while time.monotonic() < deadline:
                arrived = [t for t, e in events[count:] if e == b"event: card_inserted"]
                if arrived:
                    latencies.append((arrived[0] - taken) * 1000)
                    break
                time.sleep(0.002)
    return {
        "bench": "idle",
        "seconds": round(window, 1),
        "agent_cpu_percent": round(100 * agent_cpu / window, 3),
        "bare_uvicorn_cpu_percent": round(100 * bare_cpu / window, 3),
        "ratio": round(agent_cpu / bare_cpu, 3) if bare_cpu else None,
        "agent_rss_mb": {"start": memory_before, "end": memory_after},
        "insertion_ms": {
            "median": round(statistics.median(latencies), 1) if latencies else None,
            "max": round(max(latencies), 1) if latencies else None,
            "n": len(latencies),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench idle", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="idle window")
    parser.add_argument("--insertions", type=int, default=10, help="card insertions timed")
    args = parser.parse_args(argv)
    result = run(args.seconds, args.insertions)
    print(f"  agent idle CPU           : {result['agent_cpu_percent']} %")
    print(f"  bare uvicorn idle CPU    : {result['bare_uvicorn_cpu_percent']} %")
    print(f"  ratio agent / bare       : {result['ratio']}")
    print(f"  agent memory (RSS)       : {result['agent_rss_mb']} MiB")
    print(f"  insertion to event       : {result['insertion_ms']} ms")
    emit(result)
