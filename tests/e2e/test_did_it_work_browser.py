"""The "Did it work?" page in a real headless Chromium: an analyst opens it from the
Dashboard, reads a campaign's lift (forest plot and table, small counts withheld),
switches the run-chart rules with the keyboard only, and the page passes axe-core's
WCAG 2.1 AA rules. No Kafka: the console fixture (SQLite, uvicorn in a thread)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from services.campaigns.dispatch import Dispatcher, make_sender
from tests.e2e.test_browser import ARTIFACTS, _screenshot, until
from tests.e2e.test_console_browser import _accessible, _seed, _sign_in, browser, console
from tests.integration.journeys.helpers import add_contacts, add_template
from tests.stack import TOKEN

pytestmark = [pytest.mark.e2e]
__all__ = ["browser", "console"]  # the fixtures, used here by their names


def test_an_analyst_reads_did_it_work_by_keyboard(console, browser):
    base, app = console
    _seed(base, app)
    c = app.state.container
    # Arms are drawn by a keyed hash of the campaign's id, new in each run: with 78 people the
    # control arm (mean 16) fell under 11 in about 7 % of runs, and both arms were then
    # withheld. With 198 (control mean 40), about one run in 600 million.
    add_contacts(c, [f"fam-{i}" for i in range(2, 200)])
    api = TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})
    body = {"name": "Winter tips", "channel": "email", "template_id": add_template(c),
            "holdout": {"share": 0.2}}  # fmt: skip
    cid = api.post("/api/v1/campaigns", json=body).json()["id"]
    assert api.post(f"/api/v1/campaigns/{cid}/schedule", json={}).status_code == 200
    Dispatcher(c, make_sender(c)).dispatch_due(datetime.now(UTC))

    page = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900}).new_page()
    _sign_in(page, base, "ali@net.example")
    page.get_by_role("link", name="Did it work? Experiments and holdouts").click()
    page.wait_for_selector("#h-exp")
    table = page.inner_text("#exp-1")
    assert "campaign Winter tips (20% held out" in table and "<11" not in table.split("\n")[0]
    forest = page.locator("img[alt^='Forest plot']")
    until(lambda: forest.evaluate("i => i.complete"), 20, "the forest plot")
    assert forest.evaluate("i => i.naturalWidth") > 0
    assert "ihi rules" in page.inner_text("#h-run")
    page.get_by_label("Run-chart rules").focus()
    page.keyboard.press("ArrowDown")  # Anhøj
    page.get_by_label("Run-chart rules").press("Tab")
    page.keyboard.press("Enter")  # the focused "Show" button
    page.wait_for_url("**rules=anhoej**")
    assert "anhoej rules" in page.inner_text("#h-run")
    assert "rules=anhoej" in page.get_attribute("#csv", "href")
    for chart in ("#p-charts-png", "#run-chart-aware", "#run-chart-produce"):  # under the tables
        image = page.locator(chart)
        image.scroll_into_view_if_needed()
        until(lambda image=image: image.evaluate("i => i.complete"), 20, chart)
        assert image.evaluate("i => i.naturalWidth") > 0 and image.get_attribute("alt")
    assert "rules=anhoej" in page.get_attribute("#run-chart-use", "src")
    _accessible(page, "did it work")
    ARTIFACTS.mkdir(exist_ok=True)
    _screenshot(page, "console-did-it-work", full_page=True)
