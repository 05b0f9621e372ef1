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


#: Run in every page before its own scripts: a Content Security Policy violation becomes a
#: console line the watcher reads (Chromium reports some only as events).
_WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


class WatchedBrowser:
    """The module's Chromium, whose pages report what must never happen in a flow:
    a Content Security Policy violation, an uncaught script error. Checked after each test
    (:func:`no_csp_violation`)."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser
        self.problems: list[str] = []

    def new_page(self, **options: Any) -> Any:
        page = self._browser.new_page(**options)
        page.add_init_script(_WATCH_CSP)

        def console(message: Any) -> None:
            text = message.text
            if text.startswith("CSP violation") or "Content Security Policy" in text:
                self.problems.append(text)

        page.on("console", console)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)


@pytest.fixture(autouse=True)
def no_csp_violation(request: pytest.FixtureRequest) -> Iterator[None]:
    """No page a browser test opened saw a CSP violation or an uncaught script error."""
    if "browser" not in request.fixturenames:
        yield
        return
    watched = request.getfixturevalue("browser")
    watched.problems.clear()
    yield
    assert not watched.problems, watched.problems


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
        yield WatchedBrowser(chromium)
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
