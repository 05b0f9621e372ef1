from __future__ import annotations

from pathlib import Path

import pytest

from cardkit.auth.trust import TrustStoreMissing, load_trust
from mocks import pki


def test_shipped_test_anchors_are_the_mocks() -> None:
    roots, intermediates = load_trust("test")
    assert roots == pki.trust_anchors()
    assert sorted(c.subject.rfc4514_string() for c in intermediates) == sorted(
        c.subject.rfc4514_string() for c in pki.intermediates()
    )


def test_production_is_not_shipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARDKIT_TRUST_DIR", raising=False)
    with pytest.raises(TrustStoreMissing, match="README"):
        load_trust("production")


def test_trust_dir(tmp_path: Path) -> None:
    (tmp_path / "roots").mkdir()
    (tmp_path / "roots" / "a.pem").write_bytes((pki.PKI_DIR / "ca" / "root.crt.pem").read_bytes())
    roots, intermediates = load_trust("production", tmp_path)
    assert roots == pki.trust_anchors() and intermediates == []
