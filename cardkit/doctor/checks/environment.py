"""The machine: system and versions, and (online) the clock."""

from __future__ import annotations

import datetime as dt
import http.client
import platform
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

from cardkit import __version__
from cardkit.doctor.checks.base import Context, Facts, Out
from cardkit.doctor.model import Finding, Status

#: Seconds of clock skew beyond which certificates and logins start failing oddly.
MAX_SKEW = 120


def check_system(ctx: Context, facts: Facts, out: Out) -> Iterator[Finding]:
    _ = ctx.gettext
    yield out(
        Status.OK,
        _("System"),
        f"{platform.system()} {platform.release()} ({platform.machine()}), Python "
        f"{platform.python_version()}, cardkit {__version__}",
        os=platform.system(),
        os_release=platform.release(),
        machine=platform.machine(),
        python=platform.python_version(),
        cardkit=__version__,
    )


def check_clock(ctx: Context, facts: Facts, out: Out) -> Iterator[Finding]:
    _ = ctx.gettext
    title = _("Clock")
    if not (ctx.online and ctx.clock_url):
        yield out(Status.SKIPPED, title, _("Not checked (use --online --clock-url URL)."))
        return
    scheme, _sep, rest = ctx.clock_url.partition("://")
    host, _slash, path = rest.partition("/")
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    connection = cls(host, timeout=5)
    connection.request("HEAD", "/" + path)
    answer = connection.getresponse()
    server = parsedate_to_datetime(answer.getheader("Date") or "")
    skew = (dt.datetime.now(dt.UTC) - server).total_seconds()
    ok = abs(skew) <= MAX_SKEW
    yield out(
        Status.OK if ok else Status.WARNING,
        title,
        _("The clock is off by {seconds:.0f} s.").format(seconds=skew),
        "" if ok else _("Set the time automatically (NTP): certificates and logins depend on it."),
        skew_seconds=round(skew, 1),
        reference=ctx.clock_url,
    )
