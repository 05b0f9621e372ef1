"""The report for people (terminal text, a self-contained HTML page) and for programs (JSON).

The HTML page has no external asset (no font, script or stylesheet to fetch): an advisor
sends it as a file, and it opens anywhere, offline.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cardkit.doctor.model import Finding, Report, Status
from cardkit.i18n import translator

COLOURS = {
    Status.OK: "green",
    Status.WARNING: "yellow",
    Status.ERROR: "red",
    Status.SKIPPED: "bright_black",
}
GROUP_ORDER = ("environment", "pcsc", "cards", "certificates", "pkcs11", "agent", "browser")


def _labels(_: Callable[[str], str]) -> dict[str, str]:
    return {
        "environment": _("Environment"),
        "pcsc": _("PC/SC service and readers"),
        "cards": _("Cards"),
        "certificates": _("Certificates"),
        "pkcs11": _("PKCS#11 middleware"),
        "agent": _("Agent and bridge"),
        "browser": _("Browser"),
        Status.OK.value: _("OK"),
        Status.WARNING.value: _("WARNING"),
        Status.ERROR.value: _("ERROR"),
        Status.SKIPPED.value: _("SKIPPED"),
    }


def summary_line(report: Report) -> str:
    _ = translator(report.language).gettext
    errors, warnings = report.count(Status.ERROR), report.count(Status.WARNING)
    if not errors and not warnings:
        return _("Everything is in order.")

    def one(n: int) -> bool:  # French says "0 problème", English "0 problems"
        return n <= 1 if report.language == "fr" else n == 1

    problems = _("{n} problem") if one(errors) else _("{n} problems")
    notes = _("{n} warning") if one(warnings) else _("{n} warnings")
    return f"{problems.format(n=errors)}, {notes.format(n=warnings)}"


def _grouped(report: Report) -> list[tuple[str, list[Finding]]]:
    groups: dict[str, list[Finding]] = {}
    for finding in report.findings:
        groups.setdefault(finding.group, []).append(finding)
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    return sorted(groups.items(), key=lambda item: order.get(item[0], 99))


def render_text(report: Report, console: Console) -> None:
    _ = translator(report.language).gettext
    labels = _labels(_)
    console.print(Text(_("cardkit doctor: card setup of this computer"), style="bold"))
    for group, findings in _grouped(report):
        table = Table(
            title=labels.get(group, group), title_justify="left", show_header=False, expand=True
        )
        table.add_column("status", width=16, no_wrap=True)
        table.add_column("finding", ratio=1)
        for f in findings:
            body = Text(f.title + _(": "), style="bold") + Text(f.finding)
            if f.remedy and f.status in (Status.WARNING, Status.ERROR):
                body += Text("\n→ " + f.remedy, style="italic")
            table.add_row(Text(labels[f.status.value], style=COLOURS[f.status]), body)
        console.print(table)
    colour = "red" if report.exit_code == 2 else ("yellow" if report.exit_code else "green")
    console.print(Text(summary_line(report), style=f"bold {colour}"))


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1d1d1f;
max-width:72rem}h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px
solid #ddd;padding-bottom:.2rem}table{border-collapse:collapse;width:100%}td{vertical-align:top;
padding:.35rem .5rem;border-bottom:1px solid #eee}td:first-child{width:9rem}
.badge{display:inline-block;min-width:7rem;
text-align:center;border-radius:.3rem;padding:.1rem .4rem;font-weight:600;font-size:.8rem;
color:#fff}.ok{background:#2e7d32}.warning{background:#b26a00}.error{background:#c62828}
.skipped{background:#757575}.remedy{margin-top:.25rem;font-style:italic}.summary{font-size:
1.1rem;font-weight:600;padding:.6rem 1rem;border-radius:.4rem;margin:1rem 0}.s0{background:
#e8f5e9}.s1{background:#fff3e0}.s2{background:#ffebee}details{margin-top:.25rem;color:#555;
font-size:.85rem}pre{white-space:pre-wrap;word-break:break-all;margin:.2rem 0}
"""


def render_html(report: Report) -> str:
    _ = translator(report.language).gettext
    labels = _labels(_)
    e = html.escape
    parts = [
        f'<!doctype html><html lang="{e(report.language)}"><head><meta charset="utf-8">',
        f"<title>{e(_('cardkit doctor report'))}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(_('cardkit doctor: card setup of this computer'))}</h1>",
        f"<p>{e(_('Report made on {date} ({seconds:.1f} s).').format(date=report.started.strftime('%d/%m/%Y %H:%M UTC'), seconds=report.duration_ms / 1000))}</p>",  # noqa: E501
        f'<div class="summary s{report.exit_code}">{e(summary_line(report))}</div>',
    ]
    for group, findings in _grouped(report):
        parts.append(f"<h2>{e(labels.get(group, group))}</h2><table>")
        for f in findings:
            remedy = (
                f'<div class="remedy">→ {e(f.remedy)}</div>'
                if f.remedy and f.status in (Status.WARNING, Status.ERROR)
                else ""
            )
            evidence = (
                f"<details><summary>{e(_('Details'))}</summary><pre>"
                f"{e(json.dumps(f.evidence, indent=1, ensure_ascii=False, default=str))}"
                "</pre></details>"
                if f.evidence
                else ""
            )
            parts.append(
                f'<tr><td><span class="badge {f.status.value}">{e(labels[f.status.value])}'
                f"</span></td><td><strong>{e(f.title)}</strong>{e(_(': '))}{e(f.finding)}{remedy}"
                f"{evidence}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
