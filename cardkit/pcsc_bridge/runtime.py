"""How a running bridge announces itself to local tools of the same user: the format of the
announcement (``agent.json``), which the agent writes while it runs, in a file only that
user can read (where: the agent's business, see ``agent.runtime``).

It holds the agent's pid, port, version, the origins it serves, and the secret that opens
its read-only control channel (``Authorization: Bearer``, see
:mod:`cardkit.pcsc_bridge.security`): holding the secret proves being that user, which an
``Origin`` header never does.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from cardkit import __version__


@dataclass(frozen=True)
class RuntimeInfo:
    pid: int
    port: int
    version: str
    control_token: str
    allowed_origins: tuple[str, ...] = ()

    def to_json(self) -> str:
        data = asdict(self)
        data["allowed_origins"] = list(self.allowed_origins)
        return json.dumps(data)

    @classmethod
    def read(cls, path: Path) -> RuntimeInfo | None:
        """The announcement in ``path``; None when there is none or it does not parse."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
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
