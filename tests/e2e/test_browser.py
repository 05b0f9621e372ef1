"""A real browser (headless Chromium) uses the bridge through the JS client the portal hosts:
CORS, preflights and the client's error codes as a portal page sees them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cardkit.auth import Challenge, MemoryNonceStore, RevocationPolicy, Validator, ValidatorConfig
from cardkit.pcsc_bridge.hosted import hosted_client
from mocks import pki
from mocks.harness import AgentProcess as Agent
from mocks.harness import CardProcess

PAGE = """<!doctype html>
<meta charset="utf-8"><title>portail de test</title>
{import_map}
<script type="module">
  import {{ CardkitBridge }} from "cardkit-bridge";
  window.bridge = new CardkitBridge({{ port: {port} }});
  window.call = async (name, ...args) => {{
    try {{ return {{ ok: await window.bridge[name](...args) }}; }}
    catch (e) {{ return {{ error: e.code, triesLeft: e.triesLeft, message: e.message }}; }}
  }};
  window.clientReady = true;
</script>
"""


def open_portal(browser: Any, url: str, root: Path, port: int) -> Any:
    """The portal hosts the client itself, bound by its integrity hash (never loaded from
    the bridge's port)."""
    client = hosted_client()
    client.write(root / "js")
    import_map = client.import_map(f"/js/{client.filename}")
    (root / "index.html").write_text(
        PAGE.format(port=port, import_map=import_map), encoding="utf-8"
    )
    page = browser.new_page()
    page.goto(url + "/index.html")
    page.wait_for_function("window.clientReady === true", timeout=15000)
    return page


def test_portal_page_logs_in_and_reads_vitale(
    browser: Any,
    portal_site: tuple[str, Path],
    card_process: Callable[[str], CardProcess],
    agent: Callable[..., Agent],
) -> None:
    url, root = portal_site
    card_process("cps-doctor")
    card_process("vitale-family")
    running = agent(origins=(url,))
    page = open_portal(browser, url, root, running.port)

    status = page.evaluate("window.call('status')")
    assert {r["card"]["family"] for r in status["ok"]["readers"] if r["card"]} == {"cps", "vitale"}

    challenge = Challenge.new()
    store = MemoryNonceStore()
    store.issue(challenge)
    result = page.evaluate("n => window.call('authenticate', n)", challenge.nonce)
    token = result["ok"]
    validator = Validator(
        ValidatorConfig(pki.trust_anchors(), pki.intermediates(), revocation=RevocationPolicy.OFF)
    )
    # The token is bound to the page's origin, as the browser stated it.
    assert validator.validate(json.dumps(token), url, challenge.nonce, store).surname == "LEFEBVRE"

    card = page.evaluate("window.call('readVitale')")["ok"]
    assert card["beneficiaries"][2]["first_name"] == "LUCIE"
    page.close()


def test_errors_as_the_page_sees_them(
    browser: Any,
    portal_site: tuple[str, Path],
    card_process: Callable[[str], CardProcess],
    agent: Callable[..., Agent],
) -> None:
    url, root = portal_site
    card_process("cps-doctor")
    running = agent(pin="0000", origins=(url,))
    page = open_portal(browser, url, root, running.port)
    wrong = page.evaluate("n => window.call('authenticate', n)", Challenge.new().nonce)
    assert wrong["error"] == "pin_wrong" and wrong["triesLeft"] == 2
    short = page.evaluate("window.call('authenticate', 'abc')")
    assert short["error"] == "nonce_invalid"
    running.process.terminate()
    running.process.wait(15)
    gone = page.evaluate("window.call('status')")
    assert gone["error"] == "agent_not_running"
    page.close()


def test_a_foreign_site_cannot_read_the_bridge(
    browser: Any,
    portal_site: tuple[str, Path],
    card_process: Callable[[str], CardProcess],
    agent: Callable[..., Agent],
) -> None:
    url, root = portal_site
    card_process("cps-doctor")
    running = agent()  # the page's origin is not allowed
    (root / "evil.html").write_text("<!doctype html><title>x</title>", encoding="utf-8")
    page = browser.new_page()
    page.goto(url + "/evil.html")
    outcome = page.evaluate(
        """async (port) => {
            try {
              const r = await fetch(`http://127.0.0.1:${port}/v1/status`);
              return "read " + r.status;
            } catch (e) { return "blocked"; }
        }""",
        running.port,
    )
    assert outcome == "blocked"  # no CORS grant: the browser keeps the answer from the page
    nonce_post = page.evaluate(
        """async (port) => {
            try {
              await fetch(`http://127.0.0.1:${port}/v1/auth`, {method: "POST",
                headers: {"Content-Type": "application/json"}, body: '{"nonce": "x"}'});
              return "sent";
            } catch (e) { return "blocked"; }
        }""",
        running.port,
    )
    assert nonce_post == "blocked"  # the preflight was refused: the POST never went out
    assert [e["event"] for e in running.audit_lines()] == ["start"]
    page.close()


def test_a_tampered_client_is_refused_by_the_browser(
    browser: Any, portal_site: tuple[str, Path]
) -> None:
    """Subresource Integrity: a client file whose bytes changed never runs."""
    url, root = portal_site
    client = hosted_client()
    path = client.write(root / "js")
    path.write_text(client.text.replace("CardkitBridge", "EvilBridge", 1), encoding="utf-8")
    (root / "index.html").write_text(
        PAGE.format(port=1, import_map=client.import_map(f"/js/{client.filename}")),
        encoding="utf-8",
    )
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text))
    page.goto(url + "/index.html")
    page.wait_for_timeout(1500)
    assert page.evaluate("window.clientReady === true") is False
    assert any("integrity" in e.lower() for e in errors), errors
