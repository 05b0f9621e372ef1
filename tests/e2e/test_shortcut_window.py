"""The desktop shortcut as a person uses it: ``cardkit agent shortcut`` writes it, the
desktop launches it (``gio launch``, on a virtual X display), and the portal opens in an app
window of Chromium with its own profile; ``--uninstall`` takes it away."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mocks.harness import CHROMIUM, AgentProcess, PortalServer
from tests.conftest import require_tool
from tests.e2e.test_portal import SCREENSHOTS, portal  # noqa: F401 - the fixture

#: The window of an app shows the page's title (the identification page's starts so).
TITLE = "Identification"


def chromium_processes(profile: Path) -> list[list[str]]:
    """The command lines of the Chromium processes using ``profile``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if f"--user-data-dir={profile}" in words:
            found.append(words)
    return found


def test_shortcut_opens_the_portal_in_an_app_window(
    x_display: str,
    portal: Callable[..., tuple[PortalServer, AgentProcess]],  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    gio, screenshot = require_tool("gio"), require_tool("import")
    site, _agent = portal()
    url = site.origin + "/identification"
    home = tmp_path / "home"
    # This test runs as root, where Chromium needs --no-sandbox; a practice PC's user never
    # does. A wrapper named like the browser, first on PATH, adds it (with --test-type, which
    # keeps Chromium from warning about it, and --disable-gpu for Xvfb); the shortcut itself is
    # what any user gets. (This machine's Chromium has no French UI: it offers to translate.)
    wrapper = tmp_path / "bin" / "chromium"
    wrapper.parent.mkdir()
    flags = "--no-sandbox --test-type --disable-gpu"
    wrapper.write_text(f'#!/bin/sh\nexec {CHROMIUM} {flags} "$@"\n')
    wrapper.chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("XDG_")},
        "HOME": str(home),
        "PATH": f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}",
        "DISPLAY": x_display,
    }
    command = [sys.executable, "-m", "cardkit", "agent", "shortcut", "--url", url]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    entry = home / "Desktop" / "cardkit-portail.desktop"
    profile = home / ".local" / "share" / "cardkit" / "portal-window"
    assert f"wrote {entry}: opens {url} in an app window of {wrapper}" in done.stdout
    subprocess.run([gio, "launch", str(entry)], env=env, check=True, timeout=30)
    try:
        window = subprocess.run(
            ["xdotool", "search", "--sync", "--onlyvisible", "--name", TITLE],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()[0]
        time.sleep(1.5)  # painted
        name = subprocess.run(
            ["xdotool", "getwindowname", window],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert name.startswith("Identification"), name
        shot = tmp_path / "portal-app-window.png"
        subprocess.run([screenshot, "-window", "root", str(shot)], env=env, check=True)
        assert shot.stat().st_size > 10_000  # a page, not a black screen
        if os.environ.get("CARDKIT_UPDATE_SCREENSHOTS") == "1":
            (SCREENSHOTS / shot.name).write_bytes(shot.read_bytes())
        browsers = chromium_processes(profile)
        assert browsers and any(f"--app={url}" in argv for argv in browsers)
    finally:
        subprocess.run(["pkill", "-f", "--", f"--user-data-dir={profile}"], check=False)
    done = subprocess.run(
        [*command, "--uninstall"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "removed" in done.stdout and not entry.exists()
