"""Secrets the agent keeps for itself (the key that seals the consent store), in the OS
keyring: Secret Service on Linux desktops, Keychain on macOS, Credential Locker on Windows.

Headless machines (a CI runner, a server without a Secret Service) have no keyring: the
secret then lives in a file readable by the user only, in the agent's state directory, and
the agent says so in its log. That is no weaker than the consent file it protects.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path

import keyring
from keyring.errors import KeyringError

log = logging.getLogger(__name__)

SERVICE = "cardkit-agent"


def agent_secret(name: str, fallback_dir: Path) -> bytes:
    """A 32-byte secret, created on first use, from the keyring or the fallback file."""
    try:
        stored = keyring.get_password(SERVICE, name)
        if stored is None:
            stored = base64.b64encode(secrets.token_bytes(32)).decode()
            keyring.set_password(SERVICE, name, stored)
        return base64.b64decode(stored)
    except (KeyringError, RuntimeError) as exc:
        log.warning("no OS keyring (%s): keeping %r in a user-only file instead", exc, name)
    path = fallback_dir / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(secrets.token_bytes(32)).decode())
    return base64.b64decode(path.read_text())
