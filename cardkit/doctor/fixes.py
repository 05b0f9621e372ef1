"""The fixes ``cardkit doctor --fix`` may apply: few, safe, each undone as easily.

Starting the PC/SC service, installing the agent's autostart for this user, adding the
portal's origin to the agent's configuration. Nothing touches a card, a PIN or a
certificate; anything else is for a person to decide.
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


def add_origin(origin: str) -> str:
    """Add ``origin`` to ``allowed_origins`` in agent.toml (created if need be)."""
    import tomllib

    from cardkit.pcsc_bridge.runtime import config_path

    path = config_path()
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    origins = list(tomllib.loads(text).get("allowed_origins", [])) if text else []
    if origin in origins:
        return f"{origin}: already in {path}"
    origins.append(origin)
    line = "allowed_origins = [" + ", ".join(f'"{o}"' for o in origins) + "]"
    lines = [x for x in text.splitlines() if not x.strip().startswith("allowed_origins")]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*lines, line]) + "\n", encoding="utf-8")
    return f"{origin}: added to {path} (restart the agent)"


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
    if "agent.running" in failed:
        fixes.append(
            Fix(
                _("Install the agent's start with the session (cardkit agent install-service)?"),
                lambda: _run([sys.executable, "-m", "cardkit", "agent", "install-service"]),
            )
        )
    if "agent.origin" in failed and ctx.origin:
        origin = ctx.origin
        fixes.append(
            Fix(
                _("Allow {origin} in the agent's configuration?").format(origin=origin),
                lambda: add_origin(origin),
            )
        )
    return fixes
