"""The fixes ``cardkit doctor --fix`` may apply: few, safe, each undone as easily.

Starting the PC/SC service, installing the agent's autostart for this user, adding the
portal's origin to the agent's configuration (the last two done by the agent itself, which
owns its configuration and its autostart: :mod:`cardkit.doctor.installation`). Nothing
touches a card, a PIN or a certificate; anything else is for a person to decide.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from cardkit.doctor.checks import Context
from cardkit.doctor.model import Report, Status
from cardkit.i18n import translator


@dataclass(frozen=True)
class Fix:
    question: str
    apply: Callable[[], str]


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    output = (done.stdout + done.stderr).strip()
    return f"$ {' '.join(command)}: {'ok' if done.returncode == 0 else output or done.returncode}"


def available_fixes(report: Report, ctx: Context) -> list[Fix]:
    _ = translator(ctx.language).gettext
    failed = {f.check for f in report.findings if f.status is Status.ERROR}
    fixes: list[Fix] = []
    if "pcsc.service" in failed and sys.platform.startswith("linux"):
        fixes.append(
            Fix(
                _("Start the PC/SC service (systemctl start pcscd.socket)?"),
                lambda: _run(["systemctl", "start", "pcscd.socket"]),
            )
        )
    agent = ctx.agent
    if agent is None:
        return fixes
    if "agent.running" in failed:
        fixes.append(
            Fix(
                _("Install the agent's start with the session (cardkit agent install-service)?"),
                agent.install_autostart,
            )
        )
    if "agent.origin" in failed and ctx.origin:
        origin = ctx.origin
        fixes.append(
            Fix(
                _("Allow {origin} in the agent's configuration?").format(origin=origin),
                lambda: agent.allow_origin(origin),
            )
        )
    return fixes
