"""Practice PCs mostly run Windows: every module imports without POSIX-only modules, and each
platform branch is exercised here with the platform faked where the branch is taken."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

import agent
import cardkit
from agent import autostart
from agent.runtime import announce, announcement
from cardkit.pcsc_bridge.runtime import RuntimeInfo

POSIX_ONLY = ("fcntl", "pwd", "grp", "termios")
ROOT = Path(__file__).resolve().parents[2]


def _modules(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    return [m.name for m in pkgutil.walk_packages(path, prefix)]


def _python(script: str) -> str:
    """Run ``script`` in a fresh interpreter (nothing imported yet); its standard output."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_module_imports_without_posix_only_modules() -> None:
    names = _modules(cardkit) + _modules(agent)
    assert "cardkit.transport.readers" in names and "agent.daemon" in names
    script = (
        "import sys\n"
        f"for name in {POSIX_ONLY!r}:\n"
        "    sys.modules[name] = None  # import raises ImportError, as on Windows\n"
        f"for name in {names!r}:\n"
        "    if name.endswith('__main__'):\n"
        "        continue\n"
        "    __import__(name)\n"
        "print('ok')\n"
    )
    assert _python(script) == "ok"


def test_portal_side_imports_no_card_stack() -> None:
    """A portal validating tokens loads neither pyscard nor PyKCS11 nor the APDU layer."""
    script = (
        "import sys\n"
        "for name in ('smartcard', 'PyKCS11', 'uvicorn', 'keyring', 'click'):\n"
        "    sys.modules[name] = None\n"
        "import cardkit.auth, cardkit.auth.trust, cardkit.vitale.nir\n"
        "loaded = [m for m in ('cardkit.apdu', 'cardkit.transport', 'cardkit.cps.card')"
        " if m in sys.modules]\n"
        "print(loaded)\n"
    )
    assert _python(script) == "[]"


def test_library_never_imports_the_applications() -> None:
    offenders = []
    for path in (ROOT / "cardkit").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("from agent", "import agent", "from mocks", "import mocks")):
                offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert offenders == []


COMMAND = ["C:\\Program Files\\cardkit\\cardkit.exe", "agent", "run"]


def test_systemd_unit_text() -> None:
    text = autostart.systemd_unit(["/opt/my tools/cardkit", "agent", "run"])
    assert 'ExecStart="/opt/my tools/cardkit" agent run' in text
    assert "UMask=0077" in text and "WantedBy=default.target" in text


def test_launch_agent_plist_text() -> None:
    text = autostart.launch_agent_plist(["/usr/local/bin/cardkit", "agent", "run"])
    root = ElementTree.fromstring(text.split("\n", 2)[2])  # past the XML and DOCTYPE lines
    keys = [e.text for e in root.iter("key")]
    assert keys[:3] == ["Label", "ProgramArguments", "RunAtLoad"]
    strings = [e.text for e in root.iter("string")]
    assert strings[:4] == [autostart.LAUNCH_AGENT_LABEL, "/usr/local/bin/cardkit", "agent", "run"]


def test_windows_task_text() -> None:
    text = autostart.windows_task_xml(COMMAND, "CABINET\\dr.martin")
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    root = ElementTree.fromstring(text.split("\n", 1)[1])
    assert (
        root.findtext("t:Triggers/t:LogonTrigger/t:UserId", namespaces=ns) == "CABINET\\dr.martin"
    )
    assert root.findtext("t:Actions/t:Exec/t:Command", namespaces=ns) == COMMAND[0]
    assert root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=ns) == "agent run"
    assert root.findtext("t:Principals/t:Principal/t:RunLevel", namespaces=ns) == "LeastPrivilege"


@pytest.mark.parametrize(
    ("platform", "expected_tail", "activator"),
    [
        ("linux", ".config/systemd/user/cardkit-agent.service", "systemctl"),
        ("darwin", "Library/LaunchAgents/fr.cardkit.agent.plist", "launchctl"),
        ("win32", "cardkit/cardkit-agent-task.xml", "schtasks"),
    ],
)
def test_plan_per_platform(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    platform: str,
    expected_tail: str,
    activator: str,
) -> None:
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "AppData" / "Local"))
    plan = autostart.plan_for(platform, tmp_path, COMMAND, "u")
    assert plan.path.as_posix().endswith(expected_tail)
    assert plan.activate[0] == activator
    if platform == "win32":
        assert plan.encoding == "utf-16" and str(plan.path) in plan.activate


def test_runtime_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = RuntimeInfo.new(40123, ("https://portal.example",))
    path = announce(info, tmp_path / "run")
    assert announcement(tmp_path / "run") == info
    if sys.platform != "win32":
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
    # The Windows branch: no chmod (ACLs of the per-user directory protect it there).
    monkeypatch.setattr(sys, "platform", "win32")
    calls: list[object] = []
    monkeypatch.setattr(os, "chmod", lambda *a: calls.append(a))
    announce(info, tmp_path / "win")
    assert calls == []
    assert announcement(tmp_path / "missing") is None


def test_console_prompt_on_windows_uses_the_console_buffers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Windows has no /dev/tty: the console prompt reads CONIN$ and writes CONOUT$."""
    import builtins

    from agent.prompt import ConsolePrompt

    opened: list[str] = []
    answers = tmp_path / "in"
    answers.write_text("oui\n", encoding="utf-8")
    real_open = builtins.open

    def fake_open(path: str, mode: str = "r", **kw: object) -> object:
        opened.append(path)
        target = answers if path == "CONIN$" else tmp_path / "out"
        return real_open(target, mode, encoding="utf-8")

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(builtins, "open", fake_open)
    assert ConsolePrompt().ask_consent("https://portal.example", "lire la carte") is True
    assert opened == ["CONOUT$", "CONIN$"]
    assert "Autoriser https://portal.example" in (tmp_path / "out").read_text(encoding="utf-8")
