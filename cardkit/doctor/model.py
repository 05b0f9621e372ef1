"""What a diagnosis is made of: findings with a status, evidence and a remedy.

JSON keys and codes are English and stable (documented in the README); the ``title``,
``finding`` and ``remedy`` texts are for people, in their language.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

SCHEMA = "cardkit-doctor/1"


class Status(Enum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Finding:
    check: str  # stable id, e.g. "pcsc.service"
    group: str  # "environment", "pcsc", "cards", "pkcs11", "certificates", "agent", "browser"
    status: Status
    title: str
    finding: str
    remedy: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "group": self.group,
            "status": self.status.value,
            "title": self.title,
            "finding": self.finding,
            "remedy": self.remedy,
            "evidence": self.evidence,
            "duration_ms": self.duration_ms,
        }


@dataclass
class Report:
    findings: list[Finding]
    started: dt.datetime
    duration_ms: int
    language: str

    def count(self, status: Status) -> int:
        return sum(1 for f in self.findings if f.status is status)

    @property
    def exit_code(self) -> int:
        """0 all ok, 1 warnings, 2 errors (a skipped check is not a problem)."""
        if self.count(Status.ERROR):
            return 2
        return 1 if self.count(Status.WARNING) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "started": self.started.isoformat(),
            "duration_ms": self.duration_ms,
            "language": self.language,
            "summary": {s.value: self.count(s) for s in Status},
            "exit_code": self.exit_code,
            "findings": [f.to_dict() for f in self.findings],
        }
