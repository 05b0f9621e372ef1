"""The agent's facts about itself, in one place: where its files are on each OS (through
platformdirs), the announcement it writes while it runs (``agent.json``: the format is the
bridge's, :class:`cardkit.pcsc_bridge.runtime.RuntimeInfo`). ``cardkit doctor`` reads them
through :class:`agent.installation.LocalAgent`: the library never knows these paths itself.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import platformdirs

from agent.private import open_private
from cardkit.pcsc_bridge.runtime import RuntimeInfo

APP = "cardkit"
ANNOUNCEMENT = "agent.json"


def runtime_dir() -> Path:
    with warnings.catch_warnings():  # no XDG_RUNTIME_DIR (a root shell): platformdirs warns
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_runtime_dir(APP))


def config_path() -> Path:
    """Where the agent's configuration file is (``agent.toml``)."""
    return Path(platformdirs.user_config_dir(APP)) / "agent.toml"


def audit_log_path() -> Path:
    """Where the agent writes its audit log by default (``audit_log`` in agent.toml)."""
    return Path(platformdirs.user_log_dir(APP)) / "audit.jsonl"


def state_dir() -> Path:
    """Where the agent keeps what it remembers (the sealed consent decisions)."""
    return Path(platformdirs.user_data_dir(APP))


def announce(info: RuntimeInfo, directory: Path | None = None) -> Path:
    """The announcement, private to the user (0600 in a 0700 directory on POSIX), replaced
    in one step (a reader never sees half of it)."""
    target = (directory or runtime_dir()) / ANNOUNCEMENT
    tmp = target.with_suffix(".tmp")
    with open_private(tmp, "w") as f:
        f.write(info.to_json())
    tmp.replace(target)
    return target


def announcement(directory: Path | None = None) -> RuntimeInfo | None:
    """What the running agent announced; None when none runs for this user."""
    return RuntimeInfo.read((directory or runtime_dir()) / ANNOUNCEMENT)
