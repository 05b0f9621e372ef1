"""The audit log: one JSON object per line, for the practice and its CIS advisor.

Records what happened (start/stop, origin, endpoint, card type, outcome, duration), never a
PIN, a key, a token's signature or a full NIR (NIRs appear masked).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

_FORBIDDEN = {"pin", "puk", "signature", "token", "nir", "certificate", "key"}


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, event: str, **fields: Any) -> None:
        unsafe = _FORBIDDEN & set(fields)
        if unsafe:  # a programming error: refuse loudly rather than log a secret
            raise ValueError(f"audit fields {sorted(unsafe)} may carry secrets")
        entry = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "event": event}
        entry.update(fields)
        line = json.dumps(entry, ensure_ascii=False, default=str)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
