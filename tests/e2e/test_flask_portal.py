"""The Flask portal (mocks/flask_portal: cardkit.portal's public API in another framework)
in headless Chromium, with the agent and a mock CPS as real processes: CPS login, and the
password door's lockout, unblocked by the card."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mocks.harness import AgentProcess, CardProcess, free_port, portal_origin
from mocks.portal.demo import DEMO_PASSWORD, seed_demo


@pytest.fixture
def flask_portal(tmp_path: Path, agent: Callable[..., AgentProcess]) -> Iterator[str]:
    """The Flask portal's origin, served by werkzeug on loopback with the demo's accounts;
    the agent allows that origin."""
    from werkzeug.serving import make_server

    from mocks.flask_portal.app import create_app

    port = free_port()
    origin = portal_origin(port)
    running = agent(origins=(origin,))
    app = create_app(origin, str(tmp_path / "flask.db"), running.port)
    seed_demo(app.extensions["cardkit"])
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield origin
    server.shutdown()
    thread.join(5)


def password(page: Any, secret: str) -> str:
    page.fill("input[name=identifier]", "731016879")
    page.fill("input[name=password]", secret)
    page.click("#password-form button")
    return str(page.url)


def test_flask_portal_cps_login_and_lockout(
    browser: Any, flask_portal: str, card_process: Callable[[str], CardProcess]
) -> None:
    card_process("cps-doctor")
    origin = flask_portal
    page = browser.new_page()
    page.goto(origin + "/")
    for _ in range(3):
        password(page, "Mauvais-1!")
    assert "Votre compte est bloqué" in page.inner_text("#message")
    password(page, DEMO_PASSWORD)  # the right one, refused while blocked
    assert "Votre compte est bloqué" in page.inner_text("#message")
    page.click("#cps-login")  # the card unblocks at once
    page.wait_for_url(origin + "/home", timeout=30000)
    assert "CLAIRE LEFEBVRE" in page.inner_text("#who")
    page.context.clear_cookies()
    page.goto(origin + "/")
    assert password(page, DEMO_PASSWORD).endswith("/home")
    assert "CLAIRE LEFEBVRE" in page.inner_text("#who")
