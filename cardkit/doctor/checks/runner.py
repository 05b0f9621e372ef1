"""Running the checks: in an order that gives each the facts it needs, each with its
timeout, a hung or failing check becoming a finding of its own."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence

from cardkit.doctor.checks.base import Check, Context, Facts, Out
from cardkit.doctor.model import Finding, Status


def ordered(checks: Sequence[Check]) -> list[Check]:
    """The checks in their declared order, except that a check comes after those providing
    what it needs. A need nobody provides, or a circle of needs, is a programming error."""
    provided = {fact: c.id for c in checks for fact in c.provides}
    missing = {need for c in checks for need in c.needs} - set(provided)
    if missing:
        raise ValueError(f"no check provides {sorted(missing)}")
    placed: list[Check] = []
    pending = list(checks)
    while pending:
        ready = next(
            (c for c in pending if all(provided[n] in {p.id for p in placed} for n in c.needs)),
            None,
        )
        if ready is None:
            raise ValueError(f"checks need each other: {[c.id for c in pending]}")
        placed.append(ready)
        pending.remove(ready)
    return placed


def _facts_of(facts: Facts) -> dict[str, object]:
    return {f.name: getattr(facts, f.name) for f in dataclasses.fields(facts)}


def run_one(ctx: Context, facts: Facts, check: Check) -> list[Finding]:
    """One check with its timeout; a hung or failing check is itself a finding."""
    results: list[Finding] = []
    failure: list[BaseException] = []
    before = _facts_of(facts)

    def run() -> None:
        try:
            results.extend(check.run(ctx, facts, Out(check.id, check.group)))
        except Exception as exc:
            failure.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, name=f"doctor-{check.id}", daemon=True)
    thread.start()
    thread.join(ctx.timeout)
    elapsed = round((time.monotonic() - started) * 1000)
    _ = ctx.gettext
    out = Out(check.id, check.group)
    if thread.is_alive():
        text = _("No answer within {seconds:g} s: a reader, the PC/SC service or a module hangs.")
        hung = out(
            Status.ERROR,
            check.id,
            text.format(seconds=ctx.timeout),
            _("Unplug and replug the reader; restart the PC/SC service."),
            timeout_s=ctx.timeout,
        )
        return [*results, dataclasses.replace(hung, duration_ms=elapsed)]
    changed = {k for k, v in _facts_of(facts).items() if v is not before[k]}
    if changed - set(check.provides):
        raise RuntimeError(f"{check.id} wrote facts it does not provide: {sorted(changed)}")
    if failure:
        error = f"{type(failure[0]).__name__}: {failure[0]}"
        results.append(
            out(
                Status.ERROR,
                check.id,
                _("The check failed: {error}").format(error=error),
                _("Send this report to your CIS advisor."),
            )
        )
    return [dataclasses.replace(f, duration_ms=elapsed) for f in results]


def run_checks(
    ctx: Context, checks: Sequence[Check], progress: Callable[[str], None] | None = None
) -> list[Finding]:
    facts = Facts()
    findings: list[Finding] = []
    for check in ordered(checks):
        if progress is not None:
            progress(check.id)
        findings.extend(run_one(ctx, facts, check))
    return findings
