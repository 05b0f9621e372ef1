"""What the user allowed each site to do with the cards: one decision per (origin, action),
asked once, remembered.

Actions are those of the bridge's endpoint table (``identify``: log in with the CPS/CPE;
``read_vitale``: read the patient's card): a "yes" to logging in says nothing about reading
NIRs. An origin must be in the configured allowlist *and* have the user's consent for the
action; a refusal is remembered too, so a page cannot nag. An origin whose every decision is
a refusal is *refused*: it gets nothing from the bridge, not even its version.
``cardkit agent origins`` lists, allows and revokes.

The file is sealed with an HMAC whose key lives in the OS keyring (agent.keyring_secret): another
program of the user's that edits it to grant itself consent breaks the seal, and the agent
then asks again rather than trusting it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
from pathlib import Path
from typing import Any

from agent.private import open_private

log = logging.getLogger(__name__)


class ConsentStore:
    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._key = key
        self._lock = threading.Lock()
        # The file as last read, keyed by its (mtime, size): status requests ask for the
        # decision on every call, and ``cardkit agent origins`` may change the file meanwhile.
        self._seen: tuple[tuple[int, ...] | None, dict[str, Any]] = (None, {})

    def _stamp(self) -> tuple[int, ...] | None:
        """Every write replaces the file (a new inode), so the inode alone tells a change;
        mtime and size guard filesystems that reuse inodes at once."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def _current(self) -> dict[str, Any]:
        """The decisions, re-read only when the file changed (under ``self._lock``)."""
        stamp = self._stamp()
        if stamp is None:
            return {}
        if self._seen[0] != stamp:
            self._seen = (stamp, self._read())
        return self._seen[1]

    def _mac(self, decisions: dict[str, Any]) -> str:
        canonical = json.dumps(decisions, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._key, canonical, hashlib.sha256).hexdigest()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            log.warning("consent store %s is damaged: asking again", self.path)
            return {}
        decisions = data.get("decisions") if isinstance(data, dict) else None
        if not isinstance(decisions, dict) or not hmac.compare_digest(
            str(data.get("mac", "")), self._mac(decisions)
        ):
            log.warning("consent store %s is not sealed by this agent: asking again", self.path)
            return {}
        return decisions

    def _write(self, decisions: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        sealed = {"decisions": decisions, "mac": self._mac(decisions)}
        with open_private(tmp, "w") as f:
            f.write(json.dumps(sealed, indent=2, sort_keys=True))
        tmp.replace(self.path)  # atomic: a crash leaves the old or the new file, never half

    def decision(self, origin: str, action: str) -> bool | None:
        with self._lock:
            entry = _actions(self._current().get(origin)).get(action)
        return None if entry is None else bool(entry.get("allowed"))

    def refused(self, origin: str) -> bool:
        """Decisions recorded for ``origin``, and every one a refusal."""
        with self._lock:
            actions = _actions(self._current().get(origin))
        return bool(actions) and not any(d.get("allowed") for d in actions.values())

    def record(self, origin: str, action: str, allowed: bool) -> None:
        with self._lock:
            data = self._read()
            actions = _actions(data.get(origin))
            actions[action] = {"allowed": allowed, "at": dt.datetime.now(dt.UTC).isoformat()}
            data[origin] = actions
            self._write(data)

    def revoke(self, origin: str, action: str | None = None) -> bool:
        """Forget ``origin``'s decision for ``action`` (all of them: None); whether any was."""
        with self._lock:
            data = self._read()
            actions = _actions(data.pop(origin, None))
            if action is None:
                found = bool(actions)
            else:
                found = actions.pop(action, None) is not None
                if actions:
                    data[origin] = actions
            self._write(data)
        return found

    def all(self) -> dict[str, dict[str, dict[str, object]]]:
        with self._lock:
            return {origin: _actions(entry) for origin, entry in self._read().items()}


def _actions(entry: object) -> dict[str, dict[str, object]]:
    """An origin's decisions by action. A decision from before consent was per action (one
    ``allowed`` for the whole origin) is not one of them: that origin is asked again."""
    if not isinstance(entry, dict):
        return {}
    return {a: d for a, d in entry.items() if isinstance(d, dict)}


def open_consent_store(state_dir: Path) -> ConsentStore:
    from agent.keyring_secret import agent_secret

    return ConsentStore(state_dir / "consent.json", agent_secret("consent-key", state_dir))
