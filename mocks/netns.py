"""Entering the network namespace that confines pcscd's vpcd ports.

scripts/pcscd-netns.sh runs pcscd inside the ``cardkit`` namespace so that vpcd's card ports
(TCP 35963 and up) exist only on that namespace's loopback. A mock card must connect from
inside it. ``setns(2)`` moves only the calling thread, so a card's serving thread enters the
namespace and the rest of the process stays where it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")


class NetnsError(OSError):
    """The namespace cannot be entered (missing, or not allowed)."""


def default_netns() -> str | None:
    """The namespace mock cards should use: ``$CARDKIT_NETNS`` (empty = none), else
    ``cardkit`` when it exists."""
    name = os.environ.get("CARDKIT_NETNS")
    if name is not None:
        return name or None
    return "cardkit" if (NETNS_DIR / "cardkit").exists() else None


def _same_namespace(path: Path) -> bool:
    here = os.stat("/proc/thread-self/ns/net")
    there = os.stat(path)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def enter_netns(name: str) -> None:
    """Move the calling thread into network namespace ``name`` (needs CAP_SYS_ADMIN)."""
    path = NETNS_DIR / name
    if not path.exists():
        raise NetnsError(
            f"network namespace {name!r} does not exist; run scripts/pcscd-netns.sh start"
        )
    if _same_namespace(path):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            hint = " (run as root, e.g. with sudo)" if err == 1 else ""
            raise NetnsError(err, f"cannot enter network namespace {name!r}{hint}")
    finally:
        os.close(fd)
