"""The bridge's own cost, in one run.

- ``/v1/status`` through a running agent (security middleware, routing, reader states from
  pcscd) against a bare ASGI handler returning a constant JSON on the same uvicorn, both over
  one keep-alive HTTP connection each (the JSON ``ratio``);
- ``/v1/auth`` end to end (consent known, scripted PIN, PKCS#11 signing by OpenSC on a mock
  CPS) minus the card and token work measured alone (PIN status, identity and the PKCS#11
  worker's signature, as the agent does them): what the bridge and agent add.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import uvicorn

from bench.stats import emit, summary
from cardkit.auth import Challenge
from cardkit.cps import CpsCard
from cardkit.pkcs11 import search_list
from cardkit.transport.pcsc import PcscBackend, PcscConnection

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = "https://portal.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _bare(scope: Any, receive: Any, send: Any) -> None:
    body = b'{"name":"bare","readers":[]}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _time(call: Callable[[], None], n: int) -> list[int]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - t0)
    return samples


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
        states = backend.states()
        vpcd = sorted(r for r in states if r.startswith("Virtual PCD"))
        free = [i for i, r in enumerate(vpcd) if not states[r].card_present]
        if not free:
            raise SystemExit("no free vpcd slot (scripts/demo.sh stop)")
        card = subprocess.Popen(
            [sys.executable, "-m", "mocks.vpcd", "--profile", "cps-doctor", "--slot", str(free[0])],
            env={**os.environ, "CARDKIT_RUN_DIR": str(tmp)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(card.wait, 10)
        stack.callback(card.terminate)
        reader = vpcd[free[0]]
        while not backend.states()[reader].card_present:
            time.sleep(0.05)

        # The agent, as a user runs it.
        module = next(str(c.path) for c in search_list() if c.kind == "opensc")
        os.environ["OPENSC_CONF"] = str(ROOT / "mocks" / "opensc.conf")
        pin = tmp / "pin"
        pin.write_text("1234\n")
        port = _free_port()
        env = {
            **os.environ,
            "XDG_STATE_HOME": str(tmp / "state"),
            "XDG_DATA_HOME": str(tmp / "data"),
            "XDG_RUNTIME_DIR": str(tmp / "run"),
        }
        (tmp / "run").mkdir(mode=0o700)
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cardkit",
                "agent",
                "run",
                "--port",
                str(port),
                "--allow-origin",
                ORIGIN,
                "--pin-provider",
                f"scripted:{pin}",
                "--module",
                module,
                "--log-level",
                "WARNING",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(agent.wait, 15)
        stack.callback(agent.terminate)
        deadline = time.monotonic() + 30
        while True:
            try:
                _getter(port, "/v1/version")()
                break
            except (OSError, AssertionError):
                if time.monotonic() > deadline:
                    raise SystemExit("the agent did not start") from None
                time.sleep(0.1)

        # A bare ASGI handler on uvicorn, in this process.
        bare_port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                _bare, port=bare_port, log_level="warning", access_log=False, lifespan="off"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        stack.callback(thread.join, 5)
        stack.callback(setattr, server, "should_exit", True)
        while not server.started:
            time.sleep(0.01)

        status_get, bare_get = _getter(port, "/v1/status"), _getter(bare_port, "/")
        for _ in range(50):
            status_get()
            bare_get()
        status: list[int] = []
        bare: list[int] = []
        for i in range(n):  # alternate, so that load drift hits both sides alike
            pair = ((status_get, status), (bare_get, bare))
            for call, samples in pair if i % 2 == 0 else reversed(pair):
                samples.extend(_time(call, 1))

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

        auth()  # consent and the worker's module load, once
        auth_samples = _time(auth, auth_n)

        from agent.signer import SignerProcess

        signer = SignerProcess(Path(module))
        stack.callback(signer.stop)

        def card_work() -> None:
            with PcscConnection(reader) as conn:
                cps = CpsCard(conn)
                cps.pin_status()
                cps.identity()
            signer.create_token(reader, "1234", ORIGIN, Challenge.new().nonce)

        card_work()
        card_samples = _time(card_work, auth_n)
    s_status, s_bare = summary(status), summary(bare)
    s_auth, s_card = summary(auth_samples), summary(card_samples)
    return {
        "bench": "bridge",
        "n": n,
        "status": s_status,
        "bare_asgi": s_bare,
        "ratio": round(s_status["median_us"] / s_bare["median_us"], 3),
        "auth": s_auth,
        "auth_card_and_token_work": s_card,
        "auth_overhead_us": round(s_auth["median_us"] - s_card["median_us"], 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench bridge", description=__doc__)
    parser.add_argument("--n", type=int, default=500, help="/v1/status requests")
    parser.add_argument("--auth-n", type=int, default=20, help="/v1/auth requests")
    args = parser.parse_args(argv)
    result = run(args.n, args.auth_n)
    rows = [
        ("GET /v1/status", "status"),
        ("bare ASGI handler", "bare_asgi"),
        ("POST /v1/auth", "auth"),
        ("card + token work alone", "auth_card_and_token_work"),
    ]
    for label, key in rows:
        row = result[key]
        assert isinstance(row, dict)
        print(f"  {label:25}: median {row['median_us']:9.1f} us  p99 {row['p99_us']:9.1f} us")
    print(f"  ratio status / bare      : {result['ratio']}")
    print(f"  /v1/auth overhead        : {result['auth_overhead_us']} us")
    emit(result)
