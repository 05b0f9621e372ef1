"""The bridge's own cost, in one run.

- ``/v1/status`` through a running agent (security middleware, routing, the reader
  monitor's snapshot) against a bare ASGI handler returning a constant JSON, served the way
  the agent serves (its own process, the agent's sockets and uvicorn settings: see
  bench/bare_server.py), both over one keep-alive HTTP connection each (the JSON ``ratio``);
  ``ratio_in_process_baseline`` keeps the earlier baseline, the handler on a uvicorn thread
  inside the benchmark's own process, for comparison across runs;
- ``/v1/auth`` end to end (consent known, scripted PIN, PKCS#11 signing by OpenSC on a mock
  CPS) minus the card and token work measured alone (PIN status, identity and the PKCS#11
  worker's signature, as the agent does them): what the bridge and agent add.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import uvicorn

from bench.bare_server import bare as bare_handler
from bench.stats import emit, interleave, ratio, report
from cardkit.auth import Challenge
from cardkit.pkcs11 import search_list
from cardkit.transport.pcsc import PcscBackend
from mocks.harness import HarnessError, free_port, start_agent, start_card_process

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = "https://portal.example"


def _getter(port: int, path: str) -> Callable[[], None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Origin": ORIGIN, "Host": f"127.0.0.1:{port}"}

    def get() -> None:
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200, answer.status

    return get


def run(n: int, auth_n: int) -> dict[str, object]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        backend = PcscBackend()
        try:
            card = start_card_process(backend, "cps-doctor", tmp)
        except HarnessError as exc:
            raise SystemExit(str(exc)) from None
        stack.callback(card.stop)
        reader = card.reader

        # The agent, as a user runs it.
        module = next(str(c.path) for c in search_list() if c.kind == "opensc")
        try:
            running = start_agent(tmp / "agent", module, log_level="warning", quiet=True)
        except HarnessError as exc:
            raise SystemExit(str(exc)) from None
        stack.callback(running.stop)
        port = running.port

        # The baseline, served as the agent serves.
        baseline_port = free_port()
        baseline = subprocess.Popen(
            [sys.executable, "-m", "bench.bare_server", str(baseline_port)], cwd=ROOT
        )
        stack.callback(baseline.wait, 10)
        stack.callback(baseline.terminate)
        deadline = time.monotonic() + 20
        while True:
            try:
                _getter(baseline_port, "/")()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the baseline server did not start") from None
                time.sleep(0.05)

        # The earlier baseline: the same handler on uvicorn, in this process.
        bare_port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                bare_handler, port=bare_port, log_level="warning", access_log=False, lifespan="off"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        stack.callback(thread.join, 5)
        stack.callback(setattr, server, "should_exit", True)
        while not server.started:
            time.sleep(0.01)

        gets = interleave(
            {
                "status": _getter(port, "/v1/status"),
                "baseline": _getter(baseline_port, "/"),
                "bare_asgi_in_process": _getter(bare_port, "/"),
            },
            n,
            warm_up=50,
        )

        # /v1/auth end to end, then the same card and token work alone.
        def auth() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body = json.dumps({"nonce": Challenge.new().nonce})
            connection.request(
                "POST",
                "/v1/auth",
                body=body,
                headers={
                    "Origin": ORIGIN,
                    "Host": f"127.0.0.1:{port}",
                    "Content-Type": "application/json",
                },
            )
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200, answer.status

        from agent.cardwork import Login, ReaderWorkers

        workers = ReaderWorkers(Path(module))
        stack.callback(workers.stop)

        def card_work() -> None:
            """What the agent has its reader's worker do for one login."""
            face = workers.face(reader)
            login = Login(reader, "1234", ORIGIN, Challenge.new().nonce, face["certificate"])
            workers.create_token(login)
            workers.reset(reader)

        # The first round: consent and each worker's module load, once.
        logins = interleave({"auth": auth, "auth_card_and_token_work": card_work}, auth_n, 1)
    summaries = report({**gets, **logins})
    return {
        "bench": "bridge",
        "n": n,
        **summaries,
        "ratio": ratio(gets["status"], gets["baseline"]),
        "ratio_in_process_baseline": ratio(gets["status"], gets["bare_asgi_in_process"]),
        "auth_overhead_us": round(
            summaries["auth"]["median_us"] - summaries["auth_card_and_token_work"]["median_us"],
            1,
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench bridge", description=__doc__)
    parser.add_argument("--n", type=int, default=500, help="/v1/status requests")
    parser.add_argument("--auth-n", type=int, default=20, help="/v1/auth requests")
    args = parser.parse_args(argv)
    result = run(args.n, args.auth_n)
    rows = [
        ("GET /v1/status", "status"),
        ("baseline (agent's serving)", "baseline"),
        ("bare handler in process", "bare_asgi_in_process"),
        ("POST /v1/auth", "auth"),
        ("card + token work alone", "auth_card_and_token_work"),
    ]
    for label, key in rows:
        row = result[key]
        assert isinstance(row, dict)
        print(f"  {label:25}: median {row['median_us']:9.1f} us  p99 {row['p99_us']:9.1f} us")
    print(f"  ratio status / baseline  : {result['ratio']}")
    print(f"  ratio vs in-process bare : {result['ratio_in_process_baseline']}")
    print(f"  /v1/auth overhead        : {result['auth_overhead_us']} us")
    emit(result)
