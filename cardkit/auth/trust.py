"""Trust anchors for the validator: the mocks' TEST hierarchy (shipped), or production
IGC-Santé certificates installed by the portal operator (not shipped: see
``anchors/production/README.md``).

A trust directory holds ``roots/*.pem`` and ``intermediates/*.pem``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509

from cardkit.errors import CardkitError

ANCHORS = Path(__file__).resolve().parent / "anchors"


class TrustStoreMissing(CardkitError):
    """No trust anchors where they were expected."""

    code = "trust_store_missing"


def _load_dir(directory: Path) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for path in sorted(directory.glob("*.pem")):
        out.extend(x509.load_pem_x509_certificates(path.read_bytes()))
    return out


def load_trust(
    name: str, directory: Path | None = None
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """(roots, intermediates) of trust store ``name``: "production" (IGC-Santé, installed by
    the portal's operator) or "test" (the mocks' TEST hierarchy). No default: trusting the
    TEST roots by omission would let anyone holding their public keys log in."""
    if directory is None and os.environ.get("CARDKIT_TRUST_DIR"):
        directory = Path(os.environ["CARDKIT_TRUST_DIR"])
    base = directory or ANCHORS / name
    roots = _load_dir(base / "roots")
    if not roots:
        raise TrustStoreMissing(
            f"no trust anchors in {base / 'roots'}"
            + (": see cardkit/auth/anchors/production/README.md" if name == "production" else "")
        )
    return roots, _load_dir(base / "intermediates")
