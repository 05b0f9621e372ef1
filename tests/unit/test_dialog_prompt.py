"""The desktop dialog PIN provider, for real: zenity on a virtual X display (Xvfb), typed into
with xdotool as a person would."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from agent.prompt import DialogPrompt, PinRequest, prompt_from_spec
from tests.conftest import require_tool

pytestmark = pytest.mark.desktop

REQUEST = PinRequest("https://portal.example", "votre identification", "Virtual PCD 00 00", 2)


@pytest.fixture
def display(x_display: str) -> str:
    require_tool("zenity")
    return x_display


def _type_into_dialog(keys: list[str]) -> None:
    """Wait for zenity's window, then type as a person would."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", "--name", DialogPrompt.TITLE],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if found:
            # Real (XTEST) key presses go to the focused window; GTK ignores synthetic ones,
            # and the window exists a moment before GTK takes input.
            time.sleep(1.0)
            subprocess.run(["xdotool", "windowfocus", "--sync", found[-1]], check=False)
            for key in keys:
                if key.startswith("key:"):
                    subprocess.run(["xdotool", "key", key[4:]], check=False)
                else:
                    subprocess.run(["xdotool", "type", "--delay", "50", key], check=False)
            return
        time.sleep(0.1)
    raise AssertionError("the dialog never appeared")


def _in_thread(call: object) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(call()))  # type: ignore[operator]
    thread.start()
    return thread, out


def test_pin_typed_in_the_dialog(display: str) -> None:
    provider = DialogPrompt()
    thread, out = _in_thread(lambda: provider.ask_pin(REQUEST))
    _type_into_dialog(["1234", "key:Return"])
    thread.join(30)
    assert out == ["1234"]


def test_cancelled_dialog_is_no_pin(display: str) -> None:
    provider = DialogPrompt()
    thread, out = _in_thread(lambda: provider.ask_pin(REQUEST))
    _type_into_dialog(["key:Escape"])
    thread.join(30)
    assert out == [None]


def test_consent_dialog(display: str) -> None:
    provider = DialogPrompt()
    thread, out = _in_thread(lambda: provider.ask_consent("https://portal.example", "lire"))
    _type_into_dialog(["key:Return"])  # the default button of a question is "yes"
    thread.join(30)
    assert out == [True]


def test_dialog_says_who_asks_and_tries_left() -> None:
    text = DialogPrompt.pin_text(REQUEST)
    assert "https://portal.example" in text and "Essais restants : 2" in text


def test_auto_falls_back_to_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert prompt_from_spec("auto").name == "console"
    with pytest.raises(ValueError, match="no display"):
        prompt_from_spec("dialog")
