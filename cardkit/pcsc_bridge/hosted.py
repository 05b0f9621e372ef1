"""The browser client, as portals must use it: a versioned file they host themselves.

A portal never imports script from ``http://127.0.0.1:<port>``: whoever holds that port
(a program that bound it first at boot, or in the agent's restart gap) would run its script
with the portal's origin in every browser on the machine. The client ships in the package;
a portal copies it next to its own pages (``cardkit bridge client-js --out DIR``) and loads
it with its Subresource Integrity hash, so the browser refuses any other bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cardkit import __version__


@dataclass(frozen=True)
class HostedClient:
    filename: str  # cardkit-bridge-<version>.js
    text: str
    integrity: str  # sha384-<base64>, for integrity="" attributes and import maps

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / self.filename
        target.write_bytes(self.text.encode("utf-8"))
        return target

    def import_map(self, url: str, nonce: str | None = None) -> str:
        """An import map that binds ``cardkit-bridge`` to ``url`` with the integrity hash;
        ``nonce``: the page's Content-Security-Policy script nonce."""
        mapping = {"imports": {"cardkit-bridge": url}, "integrity": {url: self.integrity}}
        attribute = f' nonce="{nonce}"' if nonce else ""
        return f'<script type="importmap"{attribute}>{json.dumps(mapping)}</script>'


def hosted_client() -> HostedClient:
    text = resources.files("cardkit.pcsc_bridge").joinpath("client.js").read_text("utf-8")
    digest = hashlib.sha384(text.encode("utf-8")).digest()
    return HostedClient(
        f"cardkit-bridge-{__version__}.js",
        text,
        "sha384-" + base64.b64encode(digest).decode("ascii"),
    )
