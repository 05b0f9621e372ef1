"""``cardkit agent install-service``: start the agent with the user's session (Linux).

Windows: create a shortcut to ``cardkit agent run`` in ``shell:startup`` (or a Task
Scheduler task "at log on"). macOS: a LaunchAgent plist in ``~/Library/LaunchAgents`` with
``ProgramArguments`` = the cardkit path, ``agent``, ``run`` and ``RunAtLoad`` true.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

UNIT_NAME = "cardkit-agent.service"


def unit_text(executable: str) -> str:
    return f"""[Unit]
Description=cardkit agent (CPS/CPE and Vitale cards for web portals)
After=pcscd.socket

[Service]
ExecStart={executable} agent run
Restart=on-failure
RestartSec=2
# The agent only listens on loopback and talks to pcscd's socket.
NoNewPrivileges=yes
PrivateTmp=yes

[Install]
WantedBy=default.target
"""


def install(home: Path | None = None) -> Path:
    executable = shutil.which("cardkit") or f"{sys.executable} -m cardkit"
    target = (home or Path.home()) / ".config" / "systemd" / "user" / UNIT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(unit_text(executable), encoding="utf-8")
    return target
