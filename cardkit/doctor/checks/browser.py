"""The browser's view of the bridge: the preflight Chrome sends before a portal's first call
(CORS and Private/Local Network Access) must allow exactly the portal's origin."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

from cardkit.doctor.checks.base import Context, Facts, Out
from cardkit.doctor.model import Finding, Status
from cardkit.pcsc_bridge.contract import endpoint


def check_preflight(ctx: Context, facts: Facts, out: Out) -> Iterator[Finding]:
    _ = ctx.gettext
    title = _("Browser access from the portal")
    if not ctx.origin or facts.agent is None:
        yield out(Status.SKIPPED, title, _("Not checked (needs a running agent and --origin)."))
        return
    port = facts.agent.port
    auth = endpoint("authenticate")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request(
        "OPTIONS",
        auth.path,
        headers={
            "Host": f"127.0.0.1:{port}",
            "Origin": ctx.origin,
            "Access-Control-Request-Method": auth.method,
            "Access-Control-Request-Headers": "content-type",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    answer = connection.getresponse()
    answer.read()
    headers = {k.lower(): v for k, v in answer.getheaders()}
    ok = (
        answer.status == 204
        and headers.get("access-control-allow-origin") == ctx.origin
        and headers.get("access-control-allow-private-network") == "true"
    )
    yield out(
        Status.OK if ok else Status.ERROR,
        title,
        _("The browser's preflight is accepted (CORS, Private Network Access).")
        if ok
        else _("The browser's preflight is refused (HTTP {status}).").format(status=answer.status),
        _("Chrome 142+ also asks the user once to allow local network access for the site.")
        if ok
        else _("Add the portal to the agent's allowed origins."),
        http_status=answer.status,
        headers={k: v for k, v in headers.items() if k.startswith("access-control")},
    )
