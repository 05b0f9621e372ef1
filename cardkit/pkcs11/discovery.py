"""Which PKCS#11 module to load.

Search order (the first that exists wins):
1. ``$CARDKIT_PKCS11_MODULE``, then the ``pkcs11_module`` key of the agent's config file
   (passed in by the caller): an explicit choice, used even when it does not exist (so that a
   typo is an error, not a silent fallback);
2. the CPS Cryptolib from ANS, the production middleware of CPS/CPE cards;
3. OpenSC's module (reads a CPS3 through its IAS-ECC "CPx" driver, as it does cardkit's mock
   cards; not a CPS4);
4. SoftHSM2 (development and tests).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath, PureWindowsPath

from cardkit.errors import CardkitError


class ModuleNotFound(CardkitError):
    """No PKCS#11 module was found (or the one named does not exist)."""

    code = "pkcs11_module_missing"


@dataclass(frozen=True, slots=True)
class Candidate:
    kind: str  # "cryptolib", "opensc", "softhsm2", "configured"
    path: PurePath


_CANDIDATES: dict[str, list[tuple[str, str]]] = {
    "linux": [
        ("cryptolib", "/opt/santesocial/CPS/lib/libcps3_pkcs11_lux.so"),
        ("cryptolib", "/usr/lib/libcps3_pkcs11_lux.so"),
        ("opensc", "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"),
        ("opensc", "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so"),
        ("opensc", "/usr/lib/opensc-pkcs11.so"),
        ("opensc", "/usr/lib64/opensc-pkcs11.so"),
        ("softhsm2", "/usr/lib/softhsm/libsofthsm2.so"),
        ("softhsm2", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
        ("softhsm2", "/usr/lib64/pkcs11/libsofthsm2.so"),
    ],
    "win32": [
        ("cryptolib", r"C:\Program Files\santesocial\CPS\cps3_pkcs11_w64.dll"),
        ("cryptolib", r"C:\Program Files (x86)\santesocial\CPS\cps3_pkcs11_w32.dll"),
        ("cryptolib", r"C:\Windows\System32\cps3_pkcs11_w64.dll"),
        ("opensc", r"C:\Program Files\OpenSC Project\OpenSC\pkcs11\opensc-pkcs11.dll"),
        ("softhsm2", r"C:\SoftHSM2\lib\softhsm2-x64.dll"),
    ],
    "darwin": [
        ("cryptolib", "/usr/local/lib/libcps3_pkcs11_osx.dylib"),
        ("cryptolib", "/Library/Santesocial/CPS/lib/libcps3_pkcs11_osx.dylib"),
        ("opensc", "/Library/OpenSC/lib/opensc-pkcs11.so"),
        ("opensc", "/opt/homebrew/lib/opensc-pkcs11.so"),
        ("softhsm2", "/opt/homebrew/lib/softhsm/libsofthsm2.so"),
        ("softhsm2", "/usr/local/lib/softhsm/libsofthsm2.so"),
    ],
}


def search_list(platform: str | None = None) -> list[Candidate]:
    """The documented places, for ``platform`` (``sys.platform`` style)."""
    key = platform or sys.platform
    key = "linux" if key.startswith("linux") else key
    kind_of_path = PureWindowsPath if key == "win32" else PurePath
    return [Candidate(kind, kind_of_path(p)) for kind, p in _CANDIDATES.get(key, [])]


def available_modules(platform: str | None = None) -> list[Candidate]:
    return [c for c in search_list(platform) if Path(c.path).is_file()]


def find_module(configured: str | None = None, *, prefer: str | None = None) -> Candidate:
    """The module to load; ``prefer`` picks a kind ("opensc", "softhsm2"...) when present."""
    explicit = os.environ.get("CARDKIT_PKCS11_MODULE") or configured
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ModuleNotFound(f"PKCS#11 module {explicit} does not exist")
        return Candidate("configured", path)
    found = available_modules()
    if prefer:
        preferred = [c for c in found if c.kind == prefer]
        if preferred:
            return preferred[0]
    if not found:
        places = ", ".join(str(c.path) for c in search_list())
        raise ModuleNotFound(f"no PKCS#11 module found (looked in: {places})")
    return found[0]
