"""How a running bridge announces itself to local tools of the same user.

The agent writes ``agent.json`` in the user's runtime directory while it runs (0600 in a
0700 directory on POSIX; the per-user directory on Windows): its pid, port, version, the
origins it serves, and the secret that opens its read-only control channel
(``Authorization: Bearer``, see :mod:`cardkit.pcsc_bridge.security`). ``cardkit agent
status`` and ``cardkit doctor`` read it; holding the secret proves being that user, which an
``Origin`` header never does.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from cardkit import __version__

APP = "cardkit"
RUNTIME_FILE = "agent.json"
#: The agent's autostart, per OS (written by ``cardkit agent install-service``).
UNIT_NAME = "cardkit-agent.service"
LAUNCH_AGENT_LABEL = "fr.cardkit.agent"
WINDOWS_TASK_NAME = "cardkit agent"


def autostart_installed(platform: str, home: Path) -> bool | None:
    """Whether the agent starts with the session; None where that cannot be told."""
    if platform == "win32":
        import subprocess

        done = subprocess.run(
            ["schtasks", "/Query", "/TN", WINDOWS_TASK_NAME],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return done.returncode == 0
    if platform == "darwin":
        return (home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist").is_file()
    if platform.startswith("linux"):
        return (home / ".config" / "systemd" / "user" / UNIT_NAME).is_file()
    return None


def runtime_dir() -> Path:
    import platformdirs

    with warnings.catch_warnings():  # no XDG_RUNTIME_DIR (a root shell): platformdirs warns
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_runtime_dir(APP))


def config_path() -> Path:
    """Where the agent's configuration file is (``agent.toml``)."""
    import platformdirs

    return Path(platformdirs.user_config_dir(APP)) / "agent.toml"


def audit_log_path() -> Path:
    """Where the agent writes its audit log by default (``audit_log`` in agent.toml)."""
    import platformdirs

    return Path(platformdirs.user_log_dir(APP)) / "audit.jsonl"


@dataclass(frozen=True)
class RuntimeInfo:
    pid: int
    port: int
    version: str
    control_token: str
    allowed_origins: tuple[str, ...] = ()

    @staticmethod
    def path(directory: Path | None = None) -> Path:
        return (directory or runtime_dir()) / RUNTIME_FILE

    def to_json(self) -> str:
        data = asdict(self)
        data["allowed_origins"] = list(self.allowed_origins)
        return json.dumps(data)

    @classmethod
    def read(cls, directory: Path | None = None) -> RuntimeInfo | None:
        try:
            data = json.loads(cls.path(directory).read_text(encoding="utf-8"))
            return cls(
                int(data["pid"]),
                int(data["port"]),
                str(data["version"]),
                str(data["control_token"]),
                tuple(str(o) for o in data.get("allowed_origins", ())),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def new(cls, port: int, allowed_origins: tuple[str, ...] = ()) -> RuntimeInfo:
        token = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        return cls(os.getpid(), port, __version__, token, allowed_origins)
