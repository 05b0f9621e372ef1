"""The audit log: one JSON object per line, for the practice and its CIS advisor.

Records what happened (start/stop, origin, endpoint, card type, outcome, duration), never a
PIN, a key, a token's signature or a full NIR (NIRs appear masked).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

from agent.private import open_private, private_dir

_FORBIDDEN = {"pin", "puk", "signature", "token", "nir", "certificate", "key"}


class AuditLog:
    """Append-only JSON lines, 0600 in a 0700 directory; rotated at ``max_bytes`` with
    ``keep`` old files (audit.jsonl.1 the newest), so a flood cannot fill the disk."""

    def __init__(self, path: Path, max_bytes: int = 5 << 20, keep: int = 3) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        private_dir(self.path.parent)
        self._lock = threading.Lock()

    def _rotate(self) -> None:
        try:
            if self.path.stat().st_size < self.max_bytes:
                return
        except FileNotFoundError:
            return
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def record(self, event: str, **fields: Any) -> None:
        unsafe = _FORBIDDEN & set(fields)
        if unsafe:  # a programming error: refuse loudly rather than log a secret
            raise ValueError(f"audit fields {sorted(unsafe)} may carry secrets")
        entry = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "event": event}
        entry.update(fields)
        line = json.dumps(entry, ensure_ascii=False, default=str)
        with self._lock:
            self._rotate()
            with open_private(self.path) as f:
                f.write(line + "\n")


class RefusalAudit:
    """Audit lines for requests refused at the front door, at most ``limit`` per code per
    ``window`` seconds: a flood of refused requests must not flood the log. When a window
    ends with lines held back, one line says how many."""

    def __init__(self, log: AuditLog, limit: int = 20, window: float = 60.0) -> None:
        self.log = log
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}

    def record(self, code: str, fields: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._lock:
            started, count = self._counts.get(code, (now, 0))
            if now - started > self.window:
                if count > self.limit:
                    self.log.record("refused_suppressed", code=code, count=count - self.limit)
                started, count = now, 0
            count += 1
            self._counts[code] = (started, count)
        if count <= self.limit:
            self.log.record("refused", code=code, **fields)
