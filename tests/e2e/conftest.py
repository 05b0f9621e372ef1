"""End-to-end fixtures: the PC/SC ones, the running agent, and headless Chromium."""

from __future__ import annotations

import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mocks.harness import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import missing_component
from tests.pcsc.conftest import agent, card_process, opensc, pcsc  # noqa: F401 - fixtures


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped: Playwright's sync API keeps an event loop running in this thread while
    it is open, which would break later tests that start their own."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        missing_component("Chromium is not installed (run scripts/setup.sh)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_component("playwright is not installed in the virtualenv")
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        yield chromium
        chromium.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def portal_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static web site on http://localhost:<port>, serving files from a folder."""
    root = tmp_path / "site"
    root.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def handler(*args: Any, **kwargs: Any) -> _Quiet:
        return _Quiet(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{port}", root
    server.shutdown()
    server.server_close()
