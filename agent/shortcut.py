"""A shortcut on the user's desktop that opens the portal in a window of its own, as the
software practices install for amelipro does: one click, the portal, whatever the login mode.

The window is an *app window* of a Chromium-family browser (``--app=URL``: no tabs, no
address bar) with its own profile directory, so that what the person allows there (Chrome's
local network access, the agent's origin) stays with the portal's window. Without such a
browser the shortcut opens the portal in the default browser.

- Linux: a ``.desktop`` entry on the desktop (XDG desktop directory), valid for
  ``desktop-file-validate``;
- Windows: a ``.lnk`` made by a generated PowerShell script (WScript.Shell), or an Internet
  shortcut (``.url``) for the default browser;
- macOS: a minimal ``.app`` bundle (Info.plist and a launcher script).

Each generator is a pure function of the browser, the URL and the paths, tested on its text
on any OS; only :meth:`ShortcutPlan.install` and :meth:`ShortcutPlan.uninstall` touch the
system.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from xml.sax.saxutils import escape

DEFAULT_NAME = "Portail santé (cardkit)"
FILE_STEM = "cardkit-portail"

#: Chromium-family browsers, in order of preference, per platform: names on PATH (Linux),
#: install paths (Windows, macOS).
LINUX_BROWSERS = (
    "google-chrome",
    "google-chrome-stable",
    "microsoft-edge",
    "microsoft-edge-stable",
    "chromium",
    "chromium-browser",
    "brave-browser",
)
WINDOWS_BROWSERS = (
    r"Google\Chrome\Application\chrome.exe",
    r"Microsoft\Edge\Application\msedge.exe",
    r"BraveSoftware\Brave-Browser\Application\brave.exe",
)
MAC_BROWSERS = (
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
)


def find_browser(platform: str, environ: dict[str, str] | None = None) -> str | None:
    """The first Chromium-family browser installed, or None."""
    env = os.environ if environ is None else environ
    if platform == "win32":
        roots = [env.get(v) for v in ("PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA")]
        for root in filter(None, roots):
            for relative in WINDOWS_BROWSERS:
                candidate = Path(root).joinpath(*PureWindowsPath(relative).parts)
                if candidate.is_file():
                    return str(candidate)
        return None
    if platform == "darwin":
        return next((b for b in MAC_BROWSERS if Path(b).is_file()), None)
    return next((found for b in LINUX_BROWSERS if (found := shutil.which(b))), None)


def app_arguments(url: str, profile: Path) -> list[str]:
    """What opens ``url`` as an app window with its own profile."""
    return [f"--app={url}", f"--user-data-dir={profile}", "--no-first-run"]


def _desktop_exec_arg(arg: str) -> str:
    """One argument of a desktop entry's Exec key (Desktop Entry Specification, "The Exec
    key"): quoted when it holds a reserved character, with ``"`` `` ` `` ``$`` ``\\``
    escaped inside quotes, and ``%`` doubled (field codes)."""
    arg = arg.replace("%", "%%")
    if any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`"):
        inner = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        return f'"{inner}"'
    return arg


def desktop_entry(name: str, url: str, command: list[str]) -> str:
    """The ``.desktop`` text. Its values are escaped as the specification asks (``\\``
    doubled again at the string level)."""
    exec_line = " ".join(_desktop_exec_arg(a) for a in command).replace("\\", "\\\\")
    return f"""[Desktop Entry]
Type=Application
Version=1.4
Name={name}
Comment=Ouvre le portail dans sa propre fenêtre ({url})
Exec={exec_line}
Icon=web-browser
Terminal=false
Categories=Network;
StartupNotify=true
"""


def _ps_quote(text: str) -> str:
    """A PowerShell single-quoted string: nothing is expanded, ``'`` is doubled."""
    return "'" + text.replace("'", "''") + "'"


def _windows_arg(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def windows_shortcut_script(path: Path, browser: str, arguments: list[str], name: str) -> str:
    """PowerShell that writes the ``.lnk`` (a binary format only the shell writes well)."""
    args = " ".join(_windows_arg(a) for a in arguments)
    return f"""$shell = New-Object -ComObject WScript.Shell
$link = $shell.CreateShortcut({_ps_quote(str(path))})
$link.TargetPath = {_ps_quote(browser)}
$link.Arguments = {_ps_quote(args)}
$link.Description = {_ps_quote(name)}
$link.IconLocation = {_ps_quote(browser + ",0")}
$link.Save()
"""


def internet_shortcut(url: str) -> str:
    """A Windows ``.url`` file: the portal in the default browser."""
    return f"[InternetShortcut]\r\nURL={url}\r\n"


def mac_info_plist(name: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>CFBundleName</key>
  <string>{escape(name)}</string>
  <key>CFBundleIdentifier</key>
  <string>fr.cardkit.portal</string>
  <key>CFBundleExecutable</key>
  <string>{FILE_STEM}</string>
  <key>CFBundlePackageType</key>
  <string>APPL</string>
</dict>
</plist>
"""


def _sh_quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def mac_launcher(command: list[str]) -> str:
    return "#!/bin/sh\nexec " + " ".join(_sh_quote(a) for a in command) + "\n"


@dataclass(frozen=True)
class ShortcutFile:
    path: Path
    text: str
    executable: bool = False
    encoding: str = "utf-8"


@dataclass(frozen=True)
class ShortcutPlan:
    """What to write where; ``remove`` is what uninstalling deletes (a file or a bundle);
    ``activate`` runs after writing (Windows: the script that makes the ``.lnk``)."""

    files: list[ShortcutFile]
    remove: Path
    browser: str | None
    activate: list[str] = field(default_factory=list)

    def install(self) -> None:
        for file in self.files:
            file.path.parent.mkdir(parents=True, exist_ok=True)
            file.path.write_text(file.text, encoding=file.encoding, newline="")
            if file.executable:
                file.path.chmod(file.path.stat().st_mode | 0o755)
        if self.activate:
            subprocess.run(self.activate, check=True, capture_output=True, timeout=60)

    def uninstall(self) -> bool:
        """Remove the shortcut; whether there was one. The window's profile (what the person
        allowed in it) is kept: reinstalling finds it again."""
        target = self.remove
        if target.is_dir():
            shutil.rmtree(target)
            return True
        if target.exists():
            target.unlink()
            return True
        return False


def plan_for(  # noqa: PLR0917 - everything a shortcut depends on, for pure tests
    platform: str,
    desktop: Path,
    url: str,
    profile: Path,
    browser: str | None,
    name: str = DEFAULT_NAME,
    scripts: Path | None = None,
) -> ShortcutPlan:
    """The shortcut for ``platform`` (a ``sys.platform`` value) on ``desktop``."""
    arguments = app_arguments(url, profile)
    if platform == "win32":
        link = desktop / f"{FILE_STEM}.lnk"
        if browser is None:
            url_file = desktop / f"{FILE_STEM}.url"
            return ShortcutPlan([ShortcutFile(url_file, internet_shortcut(url))], url_file, None)
        script = (scripts or profile.parent) / f"{FILE_STEM}-shortcut.ps1"
        text = windows_shortcut_script(link, browser, arguments, name)
        activate = ["powershell", "-NoProfile", "-ExecutionPolicy", "Bypass", "-File", str(script)]
        # UTF-8 with a BOM: Windows PowerShell 5 reads a script without one as ANSI.
        return ShortcutPlan(
            [ShortcutFile(script, text, encoding="utf-8-sig")], link, browser, activate
        )
    if platform == "darwin":
        bundle = desktop / f"{name}.app"
        command = [browser, *arguments] if browser else ["/usr/bin/open", url]
        return ShortcutPlan(
            [
                ShortcutFile(bundle / "Contents" / "Info.plist", mac_info_plist(name)),
                ShortcutFile(
                    bundle / "Contents" / "MacOS" / FILE_STEM,
                    mac_launcher(command),
                    executable=True,
                ),
            ],
            bundle,
            browser,
        )
    entry = desktop / f"{FILE_STEM}.desktop"
    command = [browser, *arguments] if browser else ["xdg-open", url]
    # Executable: desktops (GNOME, KDE, Xfce) refuse to launch an untrusted entry otherwise.
    return ShortcutPlan(
        [ShortcutFile(entry, desktop_entry(name, url, command), executable=True)],
        entry,
        browser,
    )
