"""How the agent asks the person at the workstation: for a PIN, for consent, to choose a
card. One :class:`UserPrompt` answers all three, since they are one dialog surface.

The PIN is collected here, by the agent, never by the web page and never over HTTP (as Web
eID and Fortify do). A prompt shows which origin asks and for what, and the tries left; a
wrong PIN is reported, never retried.

Prompts (the ``pin_provider`` setting): ``dialog`` (a desktop dialog, through zenity, where
a display exists), ``console`` (the agent's terminal), and ``scripted:FILE`` for tests and
demos (reads the PIN from FILE, says yes to consent, takes the first card; announced
loudly). PC/SC pinpad readers: ``pinpad`` has the PIN typed on the reader itself (PC/SC
FEATURE_VERIFY_PIN_DIRECT, the PKCS#11 protected authentication path), so it never reaches
the computer; consent and the choice of card then go through ``auto``. A reader without a
PIN pad is refused (``pinpad_unavailable``), never silently served by another prompt.
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

#: The scripted prompt is refused unless this is "1" (tests and demos set it explicitly).
TEST_MODE_VARIABLE = "CARDKIT_TEST_MODE"


@dataclass(frozen=True)
class PinRequest:
    origin: str
    action: str  # what the PIN is for, in the user's words
    reader: str
    tries_left: int | None

    @property
    def last_try(self) -> bool:
        return self.tries_left == 1

    def text(self) -> str:
        """What every prompt shows: who asks, for what, on which reader, how many tries; on
        the last try, in words, what a mistake would do."""
        lines = [f"{self.origin} demande {self.action}.", f"Lecteur : {self.reader}"]
        if self.tries_left is not None:
            lines.append(f"Essais restants : {self.tries_left}")
        if self.last_try:
            lines.append(LAST_TRY_WARNING)
        return "\n".join(lines)


LAST_TRY_WARNING = (
    "Attention : dernier essai. Une erreur bloque la carte ; il faudra alors le code de "
    "déblocage (PUK)."
)


class UserPrompt(Protocol):
    name: str
    #: True when the PIN is typed on the reader's PIN pad: ask_pin is then never called.
    uses_pinpad: bool

    def ask_pin(self, request: PinRequest) -> str | None:
        """The PIN, or None if the user cancelled."""
        ...

    def ask_consent(self, origin: str, action: str) -> bool: ...

    def choose_card(self, origin: str, readers: list[str]) -> str | None: ...

    def confirm_last_try(self, request: PinRequest) -> bool:
        """Before the last try: the person says, explicitly, that they want to go on."""
        ...

    def announce_pinpad(self, request: PinRequest) -> bool:
        """Before the reader's pad asks for the PIN: show which site asks and for what.
        False when nothing could be shown (the agent then refuses: a pad alone cannot say
        who is asking)."""
        ...


class ScriptedPrompt:
    """For tests and the mock demo only: never on a real practice PC."""

    uses_pinpad = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"scripted:{path} (TEST ONLY)"
        log.warning("PIN provider is SCRIPTED (%s): for tests and demos only", path)

    def ask_pin(self, request: PinRequest) -> str | None:
        try:
            line = self.path.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError):
            return None
        return line or None

    def ask_consent(self, origin: str, action: str) -> bool:
        return True

    def choose_card(self, origin: str, readers: list[str]) -> str | None:
        return readers[0] if readers else None

    def confirm_last_try(self, request: PinRequest) -> bool:
        return True

    def announce_pinpad(self, request: PinRequest) -> bool:
        log.info("PIN pad announcement: %s", request.text().replace("\n", " "))
        return True


class ConsolePrompt:
    """Prompts on the agent's controlling terminal."""

    name = "console"
    uses_pinpad = False

    def _tty(self, prompt: str, secret: bool) -> str | None:
        try:
            if secret:
                return getpass.getpass(prompt)
            if sys.platform == "win32":  # no /dev/tty: the console's own input buffer
                with open("CONOUT$", "w", encoding="utf-8") as out:
                    out.write(prompt)
                with open("CONIN$", encoding="utf-8") as console:
                    return console.readline().strip()
            with open("/dev/tty", "r+", encoding="utf-8") as tty:
                tty.write(prompt)
                tty.flush()
                return tty.readline().strip()
        except (OSError, EOFError, KeyboardInterrupt):
            return None

    @staticmethod
    def _show(text: str) -> bool:
        """Write ``text`` to the terminal; whether there was one to write to."""
        try:
            with open("CONOUT$" if sys.platform == "win32" else "/dev/tty", "w") as out:
                out.write(text)
            return True
        except OSError:
            return False

    def ask_pin(self, request: PinRequest) -> str | None:
        return self._tty(f"{request.text()}\nCode PIN de la carte : ", secret=True) or None

    def confirm_last_try(self, request: PinRequest) -> bool:
        answer = self._tty(f"{request.text()}\nContinuer ? [o/N] ", secret=False)
        return (answer or "").lower() in ("o", "oui", "y", "yes")

    def announce_pinpad(self, request: PinRequest) -> bool:
        return self._show(f"{request.text()}\nTapez le code PIN sur le clavier du lecteur.\n")

    def ask_consent(self, origin: str, action: str) -> bool:
        answer = self._tty(f"Autoriser {origin} à {action} ? [o/N] ", secret=False)
        return (answer or "").lower() in ("o", "oui", "y", "yes")

    def choose_card(self, origin: str, readers: list[str]) -> str | None:
        lines = "".join(f"  {i + 1}. {r}\n" for i, r in enumerate(readers))
        answer = self._tty(f"{origin} : quelle carte ?\n{lines}numéro : ", secret=False)
        if answer and answer.isdigit() and 1 <= int(answer) <= len(readers):
            return readers[int(answer) - 1]
        return None


class DialogPrompt:
    """Desktop dialogs (zenity: GNOME, and any X11/Wayland desktop with it installed).

    The PIN comes back on zenity's standard output, straight into the agent: it is never on
    a command line, in the environment, or in a log.
    """

    name = "dialog"
    uses_pinpad = False
    TITLE = "Carte CPS / CPE"

    def __init__(self, zenity: str | None = None) -> None:
        found = zenity or shutil.which("zenity")
        if found is None:
            raise ValueError("the dialog PIN provider needs zenity (apt install zenity)")
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise ValueError("no display for the dialog PIN provider: use console")
        self.zenity = found

    def _run(self, *args: str) -> str | None:
        done = subprocess.run(
            [self.zenity, f"--title={self.TITLE}", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        return done.stdout.rstrip("\n") if done.returncode == 0 else None

    @staticmethod
    def pin_text(request: PinRequest) -> str:
        return f"{request.text()}\n\nCode PIN de la carte :"

    def confirm_last_try(self, request: PinRequest) -> bool:
        return (
            self._run(
                "--question",
                "--icon-name=dialog-warning",
                f"--text={request.text()}\n\nContinuer ?",
                "--ok-label=Continuer",
                "--cancel-label=Annuler",
            )
            is not None
        )

    def announce_pinpad(self, request: PinRequest) -> bool:
        # A notification stays on screen while the person types on the reader's pad.
        text = f"{request.text()}\nTapez le code PIN sur le clavier du lecteur."
        return self._run("--notification", f"--text={text}") is not None

    def ask_pin(self, request: PinRequest) -> str | None:
        return self._run("--entry", "--hide-text", f"--text={self.pin_text(request)}") or None

    def ask_consent(self, origin: str, action: str) -> bool:
        return self._run("--question", f"--text=Autoriser {origin} à {action} ?") is not None

    def choose_card(self, origin: str, readers: list[str]) -> str | None:
        chosen = self._run(
            "--list", f"--text={origin} : quelle carte utiliser ?", "--column=Lecteur", *readers
        )
        return chosen if chosen in readers else None


class PinpadPrompt:
    """The PIN is typed on the reader; consent and card choice go through ``ui``."""

    name = "pinpad"
    uses_pinpad = True

    def __init__(self, ui: UserPrompt) -> None:
        self.ui = ui

    def ask_pin(self, request: PinRequest) -> str | None:  # pragma: no cover - never called
        raise RuntimeError("the PIN pad provider never handles a PIN")

    def ask_consent(self, origin: str, action: str) -> bool:
        return self.ui.ask_consent(origin, action)

    def choose_card(self, origin: str, readers: list[str]) -> str | None:
        return self.ui.choose_card(origin, readers)

    def confirm_last_try(self, request: PinRequest) -> bool:
        return self.ui.confirm_last_try(request)

    def announce_pinpad(self, request: PinRequest) -> bool:
        return self.ui.announce_pinpad(request)


def prompt_from_spec(spec: str) -> UserPrompt:
    """``auto`` (the default): a dialog where a display and zenity exist, else the console."""
    if spec == "auto":
        try:
            return DialogPrompt()
        except ValueError as exc:
            log.info("PIN provider: console (%s)", exc)
            return ConsolePrompt()
    if spec == "dialog":
        return DialogPrompt()
    if spec == "pinpad":
        return PinpadPrompt(prompt_from_spec("auto"))
    if spec == "console":
        return ConsolePrompt()
    if spec.startswith("scripted:"):
        if os.environ.get(TEST_MODE_VARIABLE) != "1":
            raise ValueError(
                f"the scripted PIN provider answers every PIN and consent question: it is for "
                f"tests and demos only, and needs {TEST_MODE_VARIABLE}=1 in the environment"
            )
        return ScriptedPrompt(Path(spec.removeprefix("scripted:")))
    raise ValueError(
        f"unknown PIN provider {spec!r} (auto, dialog, console, pinpad, scripted:FILE)"
    )
