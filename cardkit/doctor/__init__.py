"""``cardkit doctor``: what is wrong with a practice PC's card setup, and how to fix it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from cardkit.doctor.checks import Context, run_checks
from cardkit.doctor.model import Finding, Report, Status

__all__ = ["Context", "Finding", "Report", "Status", "diagnose"]


def diagnose(ctx: Context, progress: Callable[[str], None] | None = None) -> Report:
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    findings = run_checks(ctx, progress)
    return Report(findings, started, round((time.monotonic() - clock) * 1000), ctx.language)
