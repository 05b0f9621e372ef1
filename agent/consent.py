"""Which origins the user allowed to use the cards (asked once per origin, remembered).

An origin must be in the configured allowlist *and* have the user's consent; a refusal is
remembered too, so a page cannot nag. ``cardkit agent origins`` lists, allows and revokes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path


class ConsentStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            return {}  # damaged: ask again rather than trust it
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, dict[str, object]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)  # atomic: a crash leaves the old or the new file, never half

    def decision(self, origin: str) -> bool | None:
        with self._lock:
            entry = self._read().get(origin)
        return None if entry is None else bool(entry.get("allowed"))

    def record(self, origin: str, allowed: bool) -> None:
        with self._lock:
            data = self._read()
            data[origin] = {"allowed": allowed, "at": dt.datetime.now(dt.UTC).isoformat()}
            self._write(data)

    def revoke(self, origin: str) -> bool:
        with self._lock:
            data = self._read()
            found = data.pop(origin, None) is not None
            self._write(data)
        return found

    def all(self) -> dict[str, dict[str, object]]:
        with self._lock:
            return self._read()
