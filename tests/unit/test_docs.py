"""The guides' examples run: every ```python block of docs/*.md, as written (a guide whose
example stopped working fails here, not in a reader's hands)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _examples() -> list[tuple[str, str]]:
    found = []
    for guide in sorted(DOCS.glob("*.md")):
        for i, code in enumerate(BLOCK.findall(guide.read_text(encoding="utf-8"))):
            found.append((f"{guide.name}#{i + 1}", code))
    return found


@pytest.mark.parametrize(("where", "code"), _examples(), ids=[w for w, _ in _examples()])
def test_guide_example_runs(
    where: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(code, where, "exec"), {"__name__": "__guide__"})
