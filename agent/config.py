"""The agent's configuration: a TOML file in the platform's config directory, then flags.

Keys (all optional)::

    port = 38470                                  # the bridge's loopback port
    allowed_origins = ["https://portal.example"]  # exact scheme://host[:port]
    pkcs11_module = ""                            # default: discovery (Cryptolib, OpenSC...)
    log_level = "INFO"
    pin_provider = "auto"                         # auto | dialog | console | pinpad
    audit_log = ""                                # default: <log dir>/audit.jsonl
    card_timeout = 10.0                           # seconds a card may take per command
                                                  # (CARDKIT_CARD_TIMEOUT wins when set)
    portal_url = "https://portal.example/"        # what the desktop shortcut opens
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.runtime import audit_log_path, config_path, state_dir
from cardkit.auth.origin import normalize_origin
from cardkit.errors import CardkitError
from cardkit.pcsc_bridge.contract import DEFAULT_PORT
from cardkit.transport.deadline import DEFAULT_CARD_TIMEOUT


class ConfigError(CardkitError, ValueError):
    """The agent's configuration file says something the agent refuses."""

    code = "config_invalid"


@dataclass(frozen=True)
class AgentConfig:
    port: int = DEFAULT_PORT
    allowed_origins: tuple[str, ...] = ()
    pkcs11_module: str | None = None
    log_level: str = "INFO"
    pin_provider: str = "auto"
    audit_log: Path = field(default_factory=audit_log_path)
    state_dir: Path = field(default_factory=state_dir)
    #: Seconds a new bridge connection has to send its request head.
    header_timeout: float = 10.0
    #: Seconds a card may take to answer one command (cardkit.transport.deadline).
    card_timeout: float = DEFAULT_CARD_TIMEOUT
    #: The page the desktop shortcut opens (``cardkit agent shortcut``).
    portal_url: str | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> AgentConfig:
        path = path or config_path()
        if not path.is_file():
            return cls()
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        if str(data.get("pin_provider", "")).startswith("scripted"):
            # A file another program could write must never switch off the PIN and consent
            # dialogs: the scripted prompt is a command-line choice, in test mode only.
            raise ConfigError(
                f"{path}: pin_provider = scripted is accepted only on the command line"
            )
        config = cls()
        return config.with_overrides(
            port=data.get("port"),
            allowed_origins=data.get("allowed_origins"),
            pkcs11_module=data.get("pkcs11_module") or None,
            log_level=data.get("log_level"),
            pin_provider=data.get("pin_provider"),
            audit_log=Path(data["audit_log"]) if data.get("audit_log") else None,
            header_timeout=float(data["header_timeout"]) if "header_timeout" in data else None,
            card_timeout=float(data["card_timeout"]) if "card_timeout" in data else None,
            portal_url=data.get("portal_url") or None,
        )

    def with_overrides(self, **values: Any) -> AgentConfig:
        """Flags over file values; None means "not given"."""
        given = {k: v for k, v in values.items() if v is not None}
        if "allowed_origins" in given:
            given["allowed_origins"] = tuple(normalize_origin(o) for o in given["allowed_origins"])
        if "port" in given and not 1024 <= int(given["port"]) <= 65535:
            raise ValueError("port must be 1024..65535")
        if "card_timeout" in given and not 0 < float(given["card_timeout"]) <= 600:
            raise ValueError("card_timeout must be between 0 and 600 seconds")
        return replace(self, **given)


def allow_origin(origin: str, path: Path | None = None) -> str:
    """Add ``origin`` to ``allowed_origins`` in agent.toml (created if need be), keeping
    the file's other lines; what was done, in a line (the agent reads it at its start)."""
    path = path or config_path()
    origin = normalize_origin(origin)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    origins = list(tomllib.loads(text).get("allowed_origins", [])) if text else []
    if origin in origins:
        return f"{origin}: already in {path}"
    origins.append(origin)
    line = "allowed_origins = " + json.dumps(origins)  # a TOML array of basic strings
    lines = [x for x in text.splitlines() if not x.strip().startswith("allowed_origins")]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*lines, line]) + "\n", encoding="utf-8")
    return f"{origin}: added to {path} (restart the agent)"
