"""``python -m cardkit.doctor.probe MODULE``: load one PKCS#11 module and describe it, as JSON.

A separate process, because loading a vendor module can crash, hang, or keep Python's GIL
for as long as its C_Initialize takes: the doctor waits for it with a timeout and survives
whatever it does. Only public information is read (no login, no PIN).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def describe(path: str) -> dict[str, Any]:
    try:
        import PyKCS11
    except ImportError as exc:
        return {"ok": False, "stage": "import", "error": f"PyKCS11 is not installed: {exc}"}
    lib = PyKCS11.PyKCS11Lib()
    try:
        lib.load(path)
    except PyKCS11.PyKCS11Error as exc:
        return {"ok": False, "stage": "load", "error": str(exc)}
    try:
        info = lib.getInfo()
        slots = []
        for slot in lib.getSlotList(tokenPresent=False):
            slot_info = lib.getSlotInfo(slot)
            present = bool(slot_info.flags & PyKCS11.CKF_TOKEN_PRESENT)
            token: dict[str, Any] | None = None
            if present:
                try:
                    t = lib.getTokenInfo(slot)
                    token = {
                        "label": t.label.strip(),
                        "manufacturer": t.manufacturerID.strip(),
                        "model": t.model.strip(),
                        "serial": t.serialNumber.strip(),
                    }
                except PyKCS11.PyKCS11Error as exc:
                    token = {"error": str(exc)}
            slots.append(
                {
                    "slot": int(slot),
                    "description": slot_info.slotDescription.strip(),
                    "token_present": present,
                    "token": token,
                }
            )
        return {
            "ok": True,
            "manufacturer": info.manufacturerID.strip(),
            "library": info.libraryDescription.strip(),
            "library_version": "{}.{}".format(*info.libraryVersion),
            "cryptoki_version": "{}.{}".format(*info.cryptokiVersion),
            "slots": slots,
        }
    except PyKCS11.PyKCS11Error as exc:
        return {"ok": False, "stage": "query", "error": str(exc)}


if __name__ == "__main__":
    print(json.dumps(describe(sys.argv[1])))
