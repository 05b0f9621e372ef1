"""What the doctor asks of the workstation agent installed for this user, through one small
interface: the agent owns its facts (where its files are, the format of its configuration,
how it starts with the session) and answers for them.

The agent package provides the implementation under the ``cardkit.agent`` entry-point group
(``agent.runtime:LocalAgent``); the library never imports the agent. Without the agent
installed, :func:`installed_agent` answers None and the doctor says so.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

from cardkit.pcsc_bridge.runtime import RuntimeInfo

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "cardkit.agent"


class AgentInstallation(Protocol):
    def announcement(self) -> RuntimeInfo | None:
        """What the running agent announces (port, pid, control token); None: not running."""
        ...

    def autostart_installed(self) -> bool | None:
        """Whether the agent starts with the session; None where that cannot be told."""
        ...

    def audit_log(self) -> Path:
        """Where the agent writes its audit log (for the ticket bundle)."""
        ...

    def allow_origin(self, origin: str) -> str:
        """Add a portal to the agent's configuration (a fix); what was done, in a line."""
        ...

    def install_autostart(self) -> str:
        """Have the agent start with the session (a fix); what was done, in a line."""
        ...


def installed_agent() -> AgentInstallation | None:
    for entry in entry_points(group=ENTRY_POINT_GROUP, name="installation"):
        try:
            factory = entry.load()
        except ImportError as exc:  # the agent's extra is not installed
            log.debug("agent not available: %s", exc)
            return None
        installation: AgentInstallation = factory()
        return installation
    return None
