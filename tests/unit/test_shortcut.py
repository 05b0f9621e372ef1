"""The desktop shortcut to the portal, on the text each OS gets, and its Linux and POSIX
launchers run for real with a stand-in browser that records what it was given."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.shortcut import find_browser, plan_for
from tests.conftest import require_tool

#: A URL and paths with what shortcut formats must escape: spaces, %, &, quotes, $.
URL = "https://portal.example/identification?from=shortcut&x=%20y"
PROFILE = Path("/home/dr martin/.local/share/cardkit/portal-window")


def recorder(directory: Path) -> tuple[Path, Path]:
    """(a stand-in browser at a path with a space, the file where it writes its argv)."""
    out = directory / "argv.json"
    browser = directory / "my browser" / "chrome"
    browser.parent.mkdir(parents=True)
    browser.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(out)!r}, 'w').write(json.dumps(sys.argv[1:]))\n",
        encoding="utf-8",
    )
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    return browser, out


def wait_for(path: Path) -> list[str]:
    import time

    for _ in range(100):
        if path.exists() and path.read_text():
            return list(json.loads(path.read_text()))
        time.sleep(0.05)
    raise AssertionError(f"the browser was not started ({path})")


@pytest.mark.skipif(sys.platform != "linux", reason="desktop entries are launched on Linux")
def test_linux_entry_is_valid_and_launches_the_app_window(tmp_path: Path) -> None:
    validate = require_tool("desktop-file-validate")
    gio = require_tool("gio")
    browser, argv = recorder(tmp_path)
    plan = plan_for("linux", tmp_path / "Desktop", URL, PROFILE, str(browser))
    plan.install()
    entry = tmp_path / "Desktop" / "cardkit-portail.desktop"
    assert plan.remove == entry and os.access(entry, os.X_OK)
    done = subprocess.run([validate, str(entry)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # Launched as a desktop launches it: the Exec line's quoting gives back each argument.
    subprocess.run([gio, "launch", str(entry)], check=True, timeout=30)
    assert wait_for(argv) == [f"--app={URL}", f"--user-data-dir={PROFILE}", "--no-first-run"]
    assert plan.uninstall() and not entry.exists() and not plan.uninstall()


def test_linux_without_a_chromium_browser_opens_the_default_one(tmp_path: Path) -> None:
    plan = plan_for("linux", tmp_path, URL, PROFILE, None)
    text = plan.files[0].text
    assert "Exec=xdg-open " in text and "--app" not in text


def test_find_browser_prefers_chrome_then_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("chromium", "microsoft-edge"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_browser("linux") == str(tmp_path / "microsoft-edge")
    (tmp_path / "microsoft-edge").unlink()
    assert find_browser("linux") == str(tmp_path / "chromium")
    monkeypatch.setenv("PATH", "")
    assert find_browser("linux") is None


def test_find_browser_on_windows(tmp_path: Path) -> None:
    edge = tmp_path / "x86" / "Microsoft" / "Edge" / "Application" / "msedge.exe"
    edge.parent.mkdir(parents=True)
    edge.write_bytes(b"MZ")
    env = {"PROGRAMFILES": str(tmp_path / "none"), "PROGRAMFILES(X86)": str(tmp_path / "x86")}
    assert find_browser("win32", env) == str(edge)
    assert find_browser("win32", {}) is None


def test_windows_shortcut_script() -> None:
    desktop = Path("C:/Users/O'Brien/Desktop")
    browser = r"C:\Program Files\Google\Chrome\Application\chrome.exe"
    plan = plan_for("win32", desktop, URL, PROFILE, browser, scripts=Path("C:/tmp"))
    script = plan.files[0]
    assert script.encoding == "utf-8-sig"  # Windows PowerShell 5 reads BOM-less as ANSI
    assert plan.activate[:2] == ["powershell", "-NoProfile"]
    assert plan.activate[-1] == str(script.path)
    text = script.text
    assert "New-Object -ComObject WScript.Shell" in text
    assert "$link = $shell.CreateShortcut('C:/Users/O''Brien/Desktop/cardkit-portail.lnk')" in text
    assert "O''Brien" in text  # a quote in a single-quoted PowerShell string is doubled
    assert f"$link.TargetPath = '{browser}'" in text
    assert f"$link.Arguments = '--app={URL} \"--user-data-dir={PROFILE}\" --no-first-run'" in text
    assert plan.remove == desktop / "cardkit-portail.lnk"


def test_windows_without_a_chromium_browser_gets_an_internet_shortcut(tmp_path: Path) -> None:
    plan = plan_for("win32", tmp_path, URL, PROFILE, None)
    assert plan.files[0].text == f"[InternetShortcut]\r\nURL={URL}\r\n"
    assert plan.remove.suffix == ".url" and plan.activate == []
    plan.install()
    assert plan.remove.read_bytes().startswith(b"[InternetShortcut]\r\n")


@pytest.mark.skipif(shutil.which("sh") is None, reason="runs the launcher with a POSIX shell")
def test_mac_bundle(tmp_path: Path) -> None:
    browser, argv = recorder(tmp_path)
    plan = plan_for("darwin", tmp_path / "Desktop", URL, PROFILE, str(browser), name="Portail")
    plan.install()
    bundle = tmp_path / "Desktop" / "Portail.app"
    info = plistlib.loads((bundle / "Contents" / "Info.plist").read_bytes())
    launcher = bundle / "Contents" / "MacOS" / info["CFBundleExecutable"]
    assert info["CFBundlePackageType"] == "APPL" and os.access(launcher, os.X_OK)
    subprocess.run([launcher], check=True, timeout=30)
    assert wait_for(argv) == [f"--app={URL}", f"--user-data-dir={PROFILE}", "--no-first-run"]
    assert plan.uninstall() and not bundle.exists()
