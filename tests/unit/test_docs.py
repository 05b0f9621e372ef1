"""The guides' examples run: every ```python block of docs/*.md runs as written, and every
``cardkit`` command line and ``python -m bench`` line of the guides and the README names a
command that exists (a guide whose example stopped working fails here, not in a reader's
hands)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from bench.__main__ import BENCHES
from cardkit.cli import cli

ROOT = Path(__file__).resolve().parents[2]
GUIDES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SHELL = re.compile(r"^```(?:sh|console)\n(.*?)^```", re.S | re.M)
COMMAND_WORD = re.compile(r"[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*")


def _examples() -> list[tuple[str, str]]:
    found = []
    for guide in GUIDES:
        for i, code in enumerate(PYTHON.findall(guide.read_text(encoding="utf-8"))):
            found.append((f"{guide.name}#{i + 1}", code))
    return found


def _shell_lines() -> list[tuple[str, str]]:
    found = []
    for guide in GUIDES:
        for block in SHELL.findall(guide.read_text(encoding="utf-8")):
            for line in block.splitlines():
                text = line.split("#", 1)[0].strip().removeprefix("$ ").removeprefix("sudo ")
                text = text.removeprefix(".venv/bin/")
                if text.startswith(("cardkit ", "python -m bench ")):
                    found.append((guide.name, text))
    return found


@pytest.mark.parametrize(("where", "code"), _examples(), ids=[w for w, _ in _examples()])
def test_guide_example_runs(
    where: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(code, where, "exec"), {"__name__": "__guide__"})


def test_guides_name_only_commands_that_exist() -> None:
    lines = _shell_lines()
    assert len(lines) > 15
    for where, line in lines:
        if line.startswith("python -m bench "):
            assert line.split()[3] in BENCHES, (where, line)
            continue
        words = re.sub(r"\[[^\]]*\]", " ", line).split()[1:]  # optional parts left out
        paths: list[list[str]] = [[]]
        for word in words:
            if not COMMAND_WORD.fullmatch(word):
                break
            paths = [[*p, alternative] for p in paths for alternative in word.split("|")]
        for path in paths:
            command: click.Command = cli
            for name in path:
                if not isinstance(command, click.Group):
                    break  # an argument of the command reached (a file, a NIR...)
                found = command.get_command(click.Context(command), name)
                assert found is not None, f"{where}: {line!r}: no command {name!r}"
                command = found
