"""Small cells in a real headless Chromium (issue 18, part 3): on a small network an
analyst's dashboard and its downloaded CSV show a withheld count as ``<11``, while an
admin sees the exact count marked "not for sharing". No Kafka: the console's API
(uvicorn in a thread, SQLite) and facts written through the sink."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.analytics.sink import AttributionSink
from tests.e2e.test_browser import ARTIFACTS, _screenshot, browser, until
from tests.e2e.test_console_browser import _seed, _sign_in, console
from tests.integration.analytics.conftest import event

pytestmark = [pytest.mark.e2e]
__all__ = ["browser", "console"]  # the fixtures, used here by their names
PEOPLE = 3  # a small network this month: 3 people aware


def _facts(app: Any) -> str:
    """``PEOPLE`` people aware now; the month's label."""
    c = app.state.container
    now = datetime.now(UTC)
    AttributionSink(c.sessions).write(
        [event(f"e{i}", "resource.view", now, f"p{i:032x}") for i in range(PEOPLE)], []
    )
    return now.strftime("%Y-%m")


def _month_row(page: Any, month: str) -> list[str]:
    row = page.locator("#series tbody tr", has_text=month)
    until(lambda: row.count() == 1, 30, "the dashboard's monthly table")
    return [(cell or "").strip() for cell in row.locator("td").all_text_contents()]


def test_analyst_sees_less_than_eleven_and_admin_the_exact_count_not_for_sharing(
    console, browser, tmp_path: Path
):
    base, app = console
    _seed(base, app)
    month = _facts(app)
    ARTIFACTS.mkdir(exist_ok=True)

    analyst = browser.new_context(accept_downloads=True).new_page()
    _sign_in(analyst, base, "ali@net.example")
    until(lambda: "withheld" in analyst.inner_text("#disclosure"), 30, "the disclosure note")
    assert _month_row(analyst, month)[0] == "<11"  # aware: 3 people, withheld
    assert str(PEOPLE) not in _month_row(analyst, month)
    _screenshot(analyst, "dashboard-analyst-suppressed", full_page=True)
    with analyst.expect_download() as download:
        analyst.click("#csv")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    people = [r for r in csv.DictReader(io.StringIO(text)) if r["measure"] == "people"]
    cells = {(r["section"], r["key"], r["stage"]): r["value"] for r in people}
    assert cells[("monthly", month, "aware")] == "<11", text
    assert cells[("counters_month", month, "aware")] == "<11"
    assert str(PEOPLE) not in cells.values(), text  # no count of people shows

    admin = browser.new_context().new_page()
    _sign_in(admin, base, "ann@net.example")
    until(lambda: "not for sharing" in admin.inner_text("#disclosure"), 30, "the exact marker")
    assert _month_row(admin, month)[0] == str(PEOPLE)
    _screenshot(admin, "dashboard-admin-exact", full_page=True)
