"""Named card profiles: JSON documents describing a card's ATR, files, PINs and data objects.

Profiles are data so that a new card is a new file, not new code. Values are written as
``{"hex": "..."}``, ``{"ascii": "..."}``, ``{"utf8": "..."}``, ``{"tlv": [{"tag": "4F",
"value": ...}, ...]}`` or ``{"concat": [value, ...]}``, whichever reads best.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from cardkit import tlv

Profile = dict[str, Any]


class ProfileError(ValueError):
    """A profile is missing or does not describe a card."""


def list_profiles() -> list[str]:
    folder = resources.files(__name__)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_profile(name: str) -> Profile:
    resource = resources.files(__name__) / f"{name}.json"
    if not resource.is_file():
        raise ProfileError(f"no card profile {name!r}; known: {', '.join(list_profiles())}")
    profile: Profile = json.loads(resource.read_text(encoding="utf-8"))
    if profile.get("name") != name:
        raise ProfileError(f"profile file {name}.json names itself {profile.get('name')!r}")
    return profile


def value(spec: Any) -> bytes:
    """Decode one value written in a profile."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ProfileError(f"a value is one of hex/ascii/utf8/tlv/concat, got {spec!r}")
    ((kind, body),) = spec.items()
    if kind == "hex":
        return bytes.fromhex(body)
    if kind == "ascii":
        return str(body).encode("ascii")
    if kind == "utf8":
        return str(body).encode("utf-8")
    if kind == "tlv":
        return b"".join(tlv.encode(int(item["tag"], 16), value(item["value"])) for item in body)
    if kind == "concat":
        return b"".join(value(part) for part in body)
    raise ProfileError(f"unknown value kind {kind!r}")
