"""Proves that a portal can validate CPS login tokens with ``pip install cardkit`` alone.

Two steps, two interpreters (scripts/test.sh runs both):

    .venv/bin/python scripts/portal_install_check.py make DIR
        (the development environment) signs a login token with a TEST card's key, as the
        agent would, and writes it with its origin and nonce into DIR;
    <bare venv>/bin/python scripts/portal_install_check.py validate DIR
        (a fresh venv where only ``pip install .`` ran: no extras) checks that no card-stack
        dependency is installed, then validates the token exactly as a portal does.

Revocation is off in this check (the TEST responders live in ``mocks``, which a portal does
not install); it is tested against real responders in tests/auth.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ORIGIN = "https://portal.example"


def make(directory: Path) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from cardkit.auth import Challenge, create_token
    from mocks.pki import card_credentials

    key, cert = card_credentials("cps-doctor", "auth")
    nonce = Challenge.new().nonce
    token = create_token(
        lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()), cert, ORIGIN, nonce
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "login.json").write_text(
        json.dumps({"token": token.to_json(), "nonce": nonce}), encoding="utf-8"
    )


def validate(directory: Path) -> None:
    present = [
        m
        for m in ("smartcard", "PyKCS11", "uvicorn", "keyring", "click", "redis")
        if importlib.util.find_spec(m) is not None
    ]
    if present:
        raise SystemExit(f"the bare install pulled in {present}: the base dependencies leak")
    import datetime as dt

    from cardkit.auth import (
        Challenge,
        MemoryNonceStore,
        RevocationPolicy,
        Validator,
        ValidatorConfig,
    )
    from cardkit.auth.trust import load_trust

    data = json.loads((directory / "login.json").read_text(encoding="utf-8"))
    roots, intermediates = load_trust("test", None)
    validator = Validator(ValidatorConfig(roots, intermediates, revocation=RevocationPolicy.OFF))
    store = MemoryNonceStore()
    store.issue(Challenge(data["nonce"], dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)))
    who = validator.validate(data["token"], ORIGIN, data["nonce"], store)
    loaded = sorted(m for m in sys.modules if m.startswith("cardkit"))
    assert "cardkit.apdu" not in loaded and "cardkit.transport" not in loaded, loaded
    print(f"portal-only install validated a token: {who.identifier_type.value} {who.identifier}")


if __name__ == "__main__":
    {"make": make, "validate": validate}[sys.argv[1]](Path(sys.argv[2]))
