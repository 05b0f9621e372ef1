"""The doctor's HTML report, as an advisor opens it: rendered by Chromium, self-contained."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agent.installation import LocalAgent
from cardkit.doctor import Context, diagnose
from cardkit.doctor.render import render_html
from cardkit.transport.inprocess import InProcessBackend
from mocks.cards import build_card

#: Where the README's screenshot lives; rewritten when CARDKIT_UPDATE_SCREENSHOTS=1.
README_SHOT = Path(__file__).with_name("screenshots") / "doctor-report.png"


def test_html_report_renders_offline(browser: Any, tmp_path: Path) -> None:
    backend = InProcessBackend()
    backend.insert("Omnikey 3121 00 00", build_card("cps-pin-blocked"))
    backend.insert("Omnikey 3121 00 01", build_card("vitale-family"))
    agent = LocalAgent(runtime=tmp_path, home=tmp_path)
    report = diagnose(Context(backend_factory=lambda: backend, language="fr", agent=agent))
    page_file = tmp_path / "rapport.html"
    page_file.write_text(render_html(report), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_file.as_uri())
    assert requests == [page_file.as_uri()]  # no font, script or stylesheet fetched
    summary = page.locator(".summary")
    assert summary.is_visible() and "problème" in summary.inner_text()
    assert page.locator(".badge.error").count() >= 2  # blocked PIN, agent not running
    badge_colour = page.locator(".badge.error").first.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert badge_colour == "rgb(198, 40, 40)"  # the inline stylesheet applied
    shot = tmp_path / "doctor-report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("CARDKIT_UPDATE_SCREENSHOTS") == "1":
        README_SHOT.parent.mkdir(exist_ok=True)
        README_SHOT.write_bytes(shot.read_bytes())
