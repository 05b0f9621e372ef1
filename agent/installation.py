"""The agent installed for this user, as ``cardkit doctor`` sees it: the doctor's
:class:`cardkit.doctor.installation.AgentInstallation`, registered under the
``cardkit.agent`` entry point. Every answer comes from the module that owns the fact."""

from __future__ import annotations

import sys
from pathlib import Path

from agent.autostart import installed, plan_for_this_system
from agent.config import AgentConfig, allow_origin
from agent.runtime import announcement
from cardkit.pcsc_bridge.runtime import RuntimeInfo


class LocalAgent:
    """Directories are injectable for tests."""

    def __init__(
        self,
        runtime: Path | None = None,
        config: Path | None = None,
        home: Path | None = None,
        platform: str = sys.platform,
    ) -> None:
        self.runtime = runtime
        self.config = config
        self.home = home or Path.home()
        self.platform = platform

    def announcement(self) -> RuntimeInfo | None:
        return announcement(self.runtime)

    def autostart_installed(self) -> bool | None:
        return installed(self.platform, self.home)

    def audit_log(self) -> Path:
        return AgentConfig.load(self.config).audit_log

    def allow_origin(self, origin: str) -> str:
        return allow_origin(origin, self.config)

    def install_autostart(self) -> str:
        plan = plan_for_this_system()
        plan.install()
        then = f"; then: {' '.join(plan.activate)}" if plan.activate else ""
        return f"wrote {plan.path}{then}"
