"""Another local user (a second session on a terminal server, a service account) reaches
the loopback port too; the bridge serves none of them, whatever Origin they send."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from collections.abc import Callable

from cardkit.auth import Challenge
from cardkit.cps import CpsCard
from cardkit.transport.pcsc import PcscConnection
from mocks.harness import AgentProcess, CardProcess
from tests.conftest import missing_component, require_tool

OTHER_USER = "nobody"

CLIENT = r"""
import http.client, json, sys
port, origin, nonce = int(sys.argv[1]), sys.argv[2], sys.argv[3]
results = {}
for host in ("127.0.0.1", "::1"):
    for method, path in (("GET", "/v1/status"), ("GET", "/v1/events"), ("GET", "/v1/version"),
                         ("POST", "/v1/auth"), ("POST", "/v1/vitale/read"),
                         ("GET", "/openapi.json"), ("GET", "/v1/client.js"),
                         ("OPTIONS", "/v1/auth")):
        connection = http.client.HTTPConnection(host, port, timeout=10)
        body = json.dumps({"nonce": nonce}) if method == "POST" else None
        shown = f"[{host}]" if ":" in host else host
        headers = {"Origin": origin, "Host": f"{shown}:{port}"}
        if body:
            headers["Content-Type"] = "application/json"
        if method == "OPTIONS":
            headers["Access-Control-Request-Method"] = "POST"
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        payload = answer.read(4096)
        try:
            code = json.loads(payload).get("code")
        except ValueError:
            code = None
        results[f"{method} {host} {path}"] = [answer.status, code,
                                              answer.getheader("access-control-allow-origin")]
print(json.dumps(results))
"""


def as_other_user(*args: str) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0:
        missing_component("running a client as another user needs root")
    require_tool("setpriv")
    other = pwd.getpwnam(OTHER_USER)
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={other.pw_uid}",
            f"--regid={other.pw_gid}",
            "--clear-groups",
            "--",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_another_user_is_refused_everywhere(
    card_process: Callable[[str], CardProcess], agent: Callable[..., AgentProcess]
) -> None:
    cps = card_process("cps-doctor")
    card_process("vitale-family")
    running = agent()
    running.client().read_vitale()  # the origin has the user's consent now
    done = as_other_user(
        "/usr/bin/python3",
        "-c",
        CLIENT,
        str(running.port),
        running.origin,
        Challenge.new().nonce,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) == 16
    for where, (status, code, cors) in results.items():
        assert (status, code) == (403, "peer_not_allowed"), where
        assert cors is None, where  # nothing the page could read either
    # The real user still gets everything, and nothing reached the card for the other one.
    status = running.client().status()
    assert status["state"] == "running"
    refused = [e for e in running.audit_lines() if e["event"] == "refused"]
    assert refused and {e["code"] for e in refused} == {"peer_not_allowed"}
    events = [e["event"] for e in running.audit_lines()]
    assert events.count("vitale_read") == 1 and "auth" not in events  # only the user's own
    with PcscConnection(cps.reader) as connection:  # no PIN try spent for the other user
        assert CpsCard(connection).pin_status().tries_left == 3


def test_same_user_still_served(agent: Callable[..., AgentProcess]) -> None:
    running = agent()
    status = running.client().status()
    assert status["state"] == "running"
