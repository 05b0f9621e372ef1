"""Start the agent with the user's session, on each desktop OS the practices use.

- Linux: a systemd user unit (``~/.config/systemd/user/cardkit-agent.service``);
- macOS: a LaunchAgent (``~/Library/LaunchAgents/fr.cardkit.agent.plist``);
- Windows: a Task Scheduler task that runs at the user's log-on, registered with
  ``schtasks /Create /XML`` from a generated task definition.

Each generator is a pure function of the command line to run, so each is unit-tested on its
text on any OS; only :meth:`AutostartPlan.install` touches the system.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

__all__ = [
    "LAUNCH_AGENT_LABEL",
    "UNIT_NAME",
    "WINDOWS_TASK_NAME",
    "AutostartPlan",
    "installed",
    "plan_for",
]

UNIT_NAME = "cardkit-agent.service"
LAUNCH_AGENT_LABEL = "fr.cardkit.agent"
WINDOWS_TASK_NAME = "cardkit agent"


def autostart_path(platform: str, home: Path) -> Path:
    """Where the autostart of ``platform`` (a ``sys.platform`` value) is written."""
    if platform == "win32":
        local = Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local"))
        return local / "cardkit" / "cardkit-agent-task.xml"
    if platform == "darwin":
        return home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
    return home / ".config" / "systemd" / "user" / UNIT_NAME


def installed(platform: str, home: Path) -> bool | None:
    """Whether the agent starts with the session; None where that cannot be told. On
    Windows the task must be registered (its definition file alone starts nothing)."""
    if platform == "win32":
        done = subprocess.run(
            ["schtasks", "/Query", "/TN", WINDOWS_TASK_NAME],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return done.returncode == 0
    if platform == "darwin" or platform.startswith("linux"):
        return autostart_path(platform, home).is_file()
    return None


def agent_command() -> list[str]:
    """The command line that starts the agent with this installation."""
    found = shutil.which("cardkit")
    return [found, "agent", "run"] if found else [sys.executable, "-m", "cardkit", "agent", "run"]


def _quote_systemd(arg: str) -> str:
    return f'"{arg}"' if any(c in arg for c in ' "\\') else arg


def systemd_unit(command: list[str]) -> str:
    exec_start = " ".join(
        _quote_systemd(a.replace("\\", "\\\\").replace('"', '\\"')) for a in command
    )
    return f"""[Unit]
Description=cardkit agent (CPS/CPE and Vitale cards for web portals)
After=pcscd.socket

[Service]
ExecStart={exec_start}
Restart=on-failure
RestartSec=2
# The agent only listens on loopback and talks to pcscd's socket; its files are its own.
UMask=0077
NoNewPrivileges=yes
PrivateTmp=yes

[Install]
WantedBy=default.target
"""


def launch_agent_plist(command: list[str]) -> str:
    arguments = "\n".join(f"    <string>{escape(a)}</string>" for a in command)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{LAUNCH_AGENT_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
{arguments}
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ProcessType</key>
  <string>Interactive</string>
</dict>
</plist>
"""


def _windows_quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg or not arg else arg


def windows_task_xml(command: list[str], user: str) -> str:
    """A Task Scheduler definition: at log-on of ``user``, in that user's session (the PIN
    dialogs must show on their desktop), restarted on failure, never with more rights."""
    program, *args = command
    arguments = " ".join(_windows_quote(a) for a in args)
    return f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.4" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>cardkit agent (CPS/CPE and Vitale cards for web portals)</Description>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>
      <UserId>{escape(user)}</UserId>
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>{escape(user)}</UserId>
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>3</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(program)}</Command>
      <Arguments>{escape(arguments)}</Arguments>
    </Exec>
  </Actions>
</Task>
"""


@dataclass(frozen=True)
class AutostartPlan:
    """What to write where, and the command that activates it."""

    path: Path
    text: str
    activate: list[str]
    encoding: str = "utf-8"

    def install(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.text, encoding=self.encoding)
        if self.activate and self.activate[0] == "schtasks":
            # Registering is part of installing on Windows (the XML alone does nothing).
            subprocess.run(self.activate, check=True, capture_output=True)


def plan_for(platform: str, home: Path, command: list[str], user: str = "") -> AutostartPlan:
    """The autostart for ``platform`` (a ``sys.platform`` value)."""
    path = autostart_path(platform, home)
    if platform == "win32":
        return AutostartPlan(
            path,
            windows_task_xml(command, user),
            ["schtasks", "/Create", "/F", "/TN", WINDOWS_TASK_NAME, "/XML", str(path)],
            encoding="utf-16",
        )
    if platform == "darwin":
        return AutostartPlan(
            path, launch_agent_plist(command), ["launchctl", "load", "-w", str(path)]
        )
    return AutostartPlan(
        path,
        systemd_unit(command),
        [
            "systemctl",
            "--user",
            "daemon-reload",
            "&&",
            "systemctl",
            "--user",
            "enable",
            "--now",
            UNIT_NAME,
        ],
    )


def plan_for_this_system() -> AutostartPlan:
    user = os.environ.get("USERNAME", "") if sys.platform == "win32" else ""
    if sys.platform == "win32" and os.environ.get("USERDOMAIN"):
        user = f"{os.environ['USERDOMAIN']}\\{user}"
    return plan_for(sys.platform, Path.home(), agent_command(), user)
