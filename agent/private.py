"""The agent's own files and process, kept to its user whatever the umask says.

- directories 0700 and files 0600 on POSIX, set explicitly (a permissive umask, or a file
  created earlier by another version, must not leave the audit log or the consent store
  readable by other users); Windows keeps them in the user's profile, whose ACLs do that;
- no core dumps: a crash of the agent or of its PKCS#11 worker must not write a PIN that was
  in memory to a file (``RLIMIT_CORE`` 0 on POSIX; on Linux also ``PR_SET_DUMPABLE`` 0, which
  keeps other processes of the same user from reading the agent's memory with ptrace).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

PR_SET_DUMPABLE = 4


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if sys.platform != "win32":
        os.chmod(path, 0o700)
    return path


def open_private(path: Path, mode: str = "a") -> IO[str]:
    """``path`` opened for text, created 0600 (and brought back to 0600 if it was not)."""
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    if sys.platform != "win32":
        os.fchmod(fd, 0o600)
    return os.fdopen(fd, mode, encoding="utf-8")


def harden_process() -> None:
    """No core dump, no ptrace by other processes; best effort, logged when refused."""
    if sys.platform == "win32":
        return
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as exc:
        log.warning("could not disable core dumps: %s", exc)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_DUMPABLE, 0) failed: errno %d", ctypes.get_errno())
