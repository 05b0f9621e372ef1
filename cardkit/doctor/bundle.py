"""``--bundle FILE.zip``: the report and recent logs, for the advisor to attach to a ticket.

Nothing personal leaves the machine in it: holder names found by the checks are replaced,
anything shaped like a NIR is replaced, and PINs never reach a log in the first place (the
audit log refuses PIN fields, APDU traces mask VERIFY data); lines that still mention a PIN
value are dropped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from cardkit.doctor.model import Report
from cardkit.doctor.render import render_html, render_json

NIR_SHAPE = re.compile(
    r"\b[1-478]\s?\d{2}\s?(?:0[1-9]|1[0-2]|[2-9]\d)\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}(?:\s?\d{2})?\b"
)
PIN_FIELD = re.compile(r'"(?:pin|puk)"\s*:\s*"[^"]*"', re.IGNORECASE)
MAX_LOG_BYTES = 512 * 1024


def _names(report: Report) -> set[str]:
    found: set[str] = set()
    for finding in report.findings:
        for key in ("holder", "surname", "given_name"):
            value = finding.evidence.get(key)
            if isinstance(value, str) and len(value) > 1:
                found.add(value)
    return found


def redact(text: str, names: set[str]) -> str:
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, "[nom]")
    text = NIR_SHAPE.sub("[NIR]", text)
    return PIN_FIELD.sub('"pin": "[retiré]"', text)


def _tail(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - MAX_LOG_BYTES))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return None


def _pcscd_log() -> str | None:
    configured = os.environ.get("CARDKIT_PCSCD_LOG")
    for candidate in filter(None, (configured, "/run/cardkit/pcscd.log")):
        text = _tail(Path(candidate))
        if text is not None:
            return text
    if sys.platform.startswith("linux") and shutil.which("journalctl"):
        done = subprocess.run(
            ["journalctl", "-u", "pcscd", "--since", "-2h", "--no-pager", "-q"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout[-MAX_LOG_BYTES:] or None
    return None


def write_bundle(report: Report, target: Path, audit_log: Path | None) -> list[str]:
    """Write the zip; the names of its members."""
    names = _names(report)
    members: dict[str, str] = {
        "report.json": render_json(report),
        "report.html": render_html(report),
    }
    if audit_log is not None:
        text = _tail(audit_log)
        if text is not None:
            members["agent-audit.jsonl"] = text
    pcscd = _pcscd_log()
    if pcscd is not None:
        members["pcscd.log"] = pcscd
    members["README.txt"] = (
        "Rapport cardkit doctor et journaux récents (noms, NIR et PIN retirés).\n"
        "cardkit doctor report and recent logs (names, NIRs and PINs removed).\n"
    )
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, text in members.items():
            archive.writestr(member, redact(text, names))
    return sorted(members)


__all__ = ["redact", "write_bundle"]
