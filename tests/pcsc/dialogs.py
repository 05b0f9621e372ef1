"""A stand-in for zenity, so that the agent's real ``dialog`` prompt runs in its real process
while a test plays the person at the workstation: each dialog is logged (what it asked), and
answered from a rules file the test may rewrite at any time.

Rules (JSON): ``{"question": {"<text part>": "yes" | "no"}, "list": "first" | "cancel",
"entry": "<PIN>" | null, "delay": seconds}``; the first question rule whose text part the
dialog's text contains decides; no rule is "no" (a dialog closed).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = """#!{python}
import json, sys, time
args = sys.argv[1:]
kinds = ("--question", "--list", "--entry", "--notification")
kind = next((a[2:] for a in args if a in kinds), "other")
text = next((a[len("--text="):] for a in args if a.startswith("--text=")), "")
with open({log!r}, "a", encoding="utf-8") as out:
    out.write(json.dumps({{"kind": kind, "text": text, "args": args, "at": time.time()}}) + "\\n")
rules = json.load(open({rules!r}, encoding="utf-8"))
time.sleep(rules.get("delay", 0))
if kind == "question":
    said = next((v for k, v in rules.get("question", {{}}).items() if k in text), "no")
    sys.exit(0 if said == "yes" else 1)
if kind == "list":
    readers = [a for a in args[args.index("--column=Lecteur") + 1:]]
    if rules.get("list", "first") == "cancel":
        sys.exit(1)
    print(readers[0])
    sys.exit(0)
if kind == "entry":
    pin = rules.get("entry", "1234")
    if pin is None:
        sys.exit(1)
    print(pin)
sys.exit(0)
"""


@dataclass
class Person:
    """The person answering the dialogs: ``rules`` to change the answers, ``asked()`` to see
    what the agent showed."""

    bin_dir: Path
    log: Path
    rules_path: Path

    def rules(self, **rules: Any) -> None:
        self.rules_path.write_text(json.dumps(rules), encoding="utf-8")

    def asked(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        seen = [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]
        return [d for d in seen if kind is None or d["kind"] == kind]

    def env(self) -> dict[str, str]:
        """What the agent's process needs to use this stand-in with ``--pin-provider dialog``."""
        return {
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "DISPLAY": os.environ.get("DISPLAY", ":99"),
        }


def person(directory: Path) -> Person:
    directory.mkdir(parents=True, exist_ok=True)
    bin_dir = directory / "bin"
    bin_dir.mkdir(exist_ok=True)
    seen = Person(bin_dir, directory / "dialogs.jsonl", directory / "rules.json")
    seen.rules()
    script = bin_dir / "zenity"
    script.write_text(
        SCRIPT.format(python=sys.executable, log=str(seen.log), rules=str(seen.rules_path)),
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return seen
