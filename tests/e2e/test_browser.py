"""The dashboard and staff pages in a real headless Chromium (Debian's ``chromium``,
driven by Playwright's Python package with the system browser: nothing is downloaded).

Real Kafka, the stream worker as a child process, the relay in a thread, the API served
over HTTP by uvicorn. Screenshots go to ``test-artifacts/`` (gitignored). With
``WINWIN_README_SCREENSHOT=docs/dashboard.png`` the laptop screenshot is also written
there (how the README's picture is made).
"""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stack import BROWSER, ROOT, TOKEN, Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("WINWIN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
MESSENGERS = [
    ("maria", "Maria (parent leader)", "parent"),
    ("dr-lee", "Dr. Lee", "clinician"),
    ("sam", "Sam (patient advocate)", "patient"),
    ("ana", "Ana (teen mentor)", "patient"),
]
CAMPAIGNS = [
    ("Monthly digest", "email", None),
    ("Clinic toolkit", "toolkit", "dr-lee"),
    ("Parent circle toolkit", "toolkit", "maria"),
    ("Story week", "social", "sam"),
    ("Teen mentors", "toolkit", "ana"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """The API app served by uvicorn in a thread, on a free loopback port."""

    def __init__(self, stack: Stack):
        import uvicorn

        from services.api import create_app
        from services.bootstrap import bootstrap

        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        settings = stack.settings.model_copy(update={"public_base_url": self.base})
        config = uvicorn.Config(
            create_app(bootstrap(settings)),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        wait_for(lambda: self.server.started, 30, what="uvicorn to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def served(kafka_bootstrap, tmp_path) -> Iterator[tuple[Stack, Server, httpx.Client]]:
    if not Path(CHROMIUM).exists():
        reason = (
            f"{CHROMIUM} is missing: apt-get install chromium chromium-driver (as .ci/run does)"
        )
        if os.environ.get("CI") or os.environ.get("WINWIN_TEST_REQUIRE_KAFKA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    stack = Stack(kafka_bootstrap, f"sqlite:///{tmp_path / 'winwin.db'}", tmp_path)
    stack.start_relay()
    stack.start_worker()
    try:
        with Server(stack) as server:
            headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": BROWSER}
            with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
                stack.wait_worker_consuming()
                yield stack, server, client
    finally:
        stack.close()


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# -- a small network with a year of history ----------------------------------------------


def _ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, (
        f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}"
    )
    return r.json()


def seed_network(client: httpx.Client, now: datetime, scale: int = 40) -> dict[str, str]:
    """Messengers, campaigns, and twelve months of growing activity posted as events."""
    for mid, name, role in MESSENGERS:
        _ok(client.post("/api/v1/messengers", json={"id": mid, "name": name, "role": role}))
    ids = {}
    for name, channel, messenger in CAMPAIGNS:
        template = _ok(
            client.post(
                "/api/v1/templates",
                json={
                    "name": name,
                    "channel": channel,
                    "subject": "News from the network" if channel == "email" else None,
                    "text": "Hi {{ contact.first_name }}, new resources from the network.",
                },
            )
        )
        body = {"name": name, "channel": channel, "template_id": template["id"]}
        if messenger:
            body["messengers"] = [messenger]
        ids[name] = _ok(client.post("/api/v1/campaigns", json=body))["id"]
    rng, events = random.Random(2017), []
    for back in range(11, -1, -1):
        month = (now.replace(day=1) - timedelta(days=30 * back)).replace(day=1, hour=9)
        for k in range(int(scale * (1 + (11 - back) * 0.32))):
            who, at = (
                f"fam-{rng.randrange(scale * 6)}",
                month + timedelta(days=rng.randrange(25), minutes=k),
            )
            # In the past, and this month's still in this month (also in its first minutes).
            at = min(at, max(now - timedelta(minutes=30), now.replace(day=1, hour=0, minute=0)))
            events += _journey(rng, ids, who, at, f"{back}-{k}")
    for start in range(0, len(events), 1000):
        _ok(client.post("/api/v1/events", json=events[start : start + 1000]))
    return ids


def _journey(
    rng: random.Random, ids: dict[str, str], who: str, at: datetime, key: str
) -> list[dict[str, Any]]:
    name, channel, messenger = rng.choices(CAMPAIGNS, weights=[6, 3, 3, 2, 1])[0]
    touch = {"campaign_id": ids[name], "channel": channel} | (
        {"messenger_id": messenger} if messenger else {}
    )
    out = [_event(f"t{key}", "link.click", who, at, **touch)]
    if rng.random() < 0.55:
        out.append(_event(f"u{key}", "resource.view", who, at + timedelta(minutes=5)))
    if rng.random() < 0.18:
        out.append(_event(f"p{key}", "story.shared", who, at + timedelta(minutes=20)))
    return out


def _event(event_id: str, kind: str, who: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": kind,
        "person_ref": who,
        "occurred_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **extra,
    }


def _flag_some_bots(client: httpx.Client, campaign_id: str) -> None:
    link = _ok(
        client.post(
            "/api/v1/links",
            json={
                "destination": "https://network.example.org/guide",
                "campaign_id": campaign_id,
                "channel": "email",
            },
        )
    )
    path = "/r/" + link["url"].rsplit("/r/", 1)[1]
    for _ in range(3):
        client.head(path)
    client.get(
        path,
        headers={"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"},
        follow_redirects=False,
    )


# -- the test ------------------------------------------------------------------------------


def test_dashboard_csv_neutralises_formulas(browser):
    """The dashboard's CSV (built in the browser by app.js) writes a messenger name that a
    spreadsheet would run as text (OWASP CSV injection); numbers stay numbers."""
    page = browser.new_page()
    page.set_content("<!doctype html><title>csv</title>")
    page.add_script_tag(content=(ROOT / "templates/web/app.js").read_text() + "\nwindow.WW = WW;")
    hostile = "maria +cmd|' /C calc'!A0"
    cells = ["+cmd|' /C calc'!A0", "=1+1", "@SUM(A1)", "-x", "\tx", -3, 2.5, hostile, "a,b"]
    text = page.evaluate("(cells) => WW.csvText([cells])", cells)
    assert list(csv.reader(io.StringIO(text))) == [
        ["'+cmd|' /C calc'!A0", "'=1+1", "'@SUM(A1)", "'-x", "'\tx", "-3", "2.5", hostile, "a,b"]
    ]


def test_dashboard_live_counters_model_switch_csv_and_staff_pages(served, browser):
    stack, server, client = served
    now = datetime.now(UTC)
    ids = seed_network(client, now)
    _flag_some_bots(client, ids["Monthly digest"])
    wait_for(
        lambda: (
            client.get(
                "/api/v1/metrics/stages",
                params={"from": now.strftime("%Y-%m"), "to": now.strftime("%Y-%m")},
            ).json()["rows"][0]["aware"]
            > 0
        ),
        90,
        what="seeded events counted",
    )

    page = browser.new_page(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page.goto(server.base + "/")
    page.fill("#token", "wrong-token")
    page.press("#token", "Enter")
    assert "not right" in page.inner_text("body")
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    page.wait_for_selector("#status.live", timeout=30_000)
    page.keyboard.press("Tab")  # keyboard users first reach the skip link
    assert page.evaluate("document.activeElement.className") == "skip"
    page.wait_for_selector("#attr tbody th", timeout=30_000)
    before = _number(page, "#d-aware")

    # Events posted through the API appear without a reload. All of them today (UTC),
    # also just after midnight, or today's counter would not move.
    person_a, person_b = "browser-fam-1", "browser-fam-2"
    now = datetime.now(UTC)  # not the test's start: the seeding may have crossed midnight
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    step = max(min(timedelta(hours=1), (now - today) / 4), timedelta(seconds=1))
    two_touches = [
        _event(
            "bt-1",
            "link.click",
            person_a,
            now - 3 * step,
            campaign_id=ids["Monthly digest"],
            channel="email",
        ),
        _event(
            "bt-2",
            "link.click",
            person_a,
            now - 2 * step,
            campaign_id=ids["Story week"],
            channel="social",
        ),
        _event("bt-3", "resource.view", person_a, now - step),
        _event("bt-4", "page.view", person_b, now - step / 12),
    ]
    _ok(client.post("/api/v1/events", json=two_touches))
    until(lambda: _number(page, "#d-aware") >= before + 2, 60, "today's counter to move")
    _screenshot(page, "dashboard-live")

    # The attribution table follows the model switch.
    page.wait_for_timeout(1600)  # the refresh that the counters triggered
    table = page.inner_text("#attr tbody")
    page.select_option("#model", "first_touch")
    until(lambda: page.inner_text("#attr tbody") != table, 30, "the table to follow the model")
    assert "first touch" in page.inner_text("#attr-label")
    assert "Maria" in page.inner_text("#board") and "Dr. Lee" in page.inner_text("#board")
    assert page.inner_text("#flagged") not in ("–", "0")

    # CSV of what is shown.
    with page.expect_download() as download:
        page.click("#csv")
    path = ARTIFACTS / download.value.suggested_filename
    download.value.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["section", "key", "stage", "measure", "value"]
    assert ["view", "model", "", "", "first_touch"] in rows
    sections = {r[0] for r in rows}
    assert {
        "counters_today",
        "monthly",
        "growth",
        "campaign",
        "channel",
        "messenger",
        "bots",
    } <= sections

    _staff_pages(page, server, ids)
    _phone(browser, page, server)
    _tables_fit_their_cards(browser, page, server)
    _readme_screenshot(browser, page, server)
    _sign_out(page, server)


def _staff_pages(page: Any, server: Server, ids: dict[str, str]) -> None:
    page.goto(server.base + "/campaigns")
    page.wait_for_selector("#campaigns tbody a")
    assert "Clinic toolkit" in page.inner_text("#campaigns")
    page.click("text=Monthly digest")
    page.wait_for_selector("#campaign-status")
    assert page.inner_text("#campaign-status") == "draft"
    until(lambda: "loading" not in page.inner_text("#toolkits"), 20, "toolkits")
    _screenshot(page, "campaign-detail")
    page.once("dialog", lambda d: d.accept())
    page.click("#cancel")
    until(
        lambda: page.inner_text("#campaign-status") == "cancelled",
        20,
        "the campaign to be cancelled",
    )
    page.goto(server.base + f"/campaigns/{ids['Clinic toolkit']}")
    until(lambda: "loading" not in page.inner_text("#toolkits"), 20, "toolkits")
    _screenshot(page, "campaign-toolkit")
    page.goto(server.base + "/preview")
    page.click("button[type=submit]")
    until(lambda: "Renders" in page.inner_text("#status"), 20, "the preview")
    assert "Hi " in page.inner_text("#out-text")
    page.fill("#text", "Hi {{ nobody.knows }}")
    page.click("button[type=submit]")
    until(lambda: "Does not render" in page.inner_text("#status"), 20, "the preview's refusal")
    _screenshot(page, "preview")


def _phone(browser: Any, page: Any, server: Server) -> None:
    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    phone.context.add_cookies(page.context.cookies())
    phone.goto(server.base + "/")
    phone.wait_for_selector("#status.live", timeout=30_000)
    phone.wait_for_selector("#attr tbody th")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    _screenshot(phone, "dashboard-phone", full_page=True)
    phone.close()


#: Each shown table's widest right edge (of every row's last cell) and its card's inner
#: right edge, in CSS pixels.
LAST_COLUMNS = """() => [...document.querySelectorAll('main section table')]
  .filter((t) => t.getBoundingClientRect().width > 0)
  .map((t) => {
    const card = t.closest('section'), box = card.getBoundingClientRect();
    const last = [...t.rows].map((r) => r.lastElementChild.getBoundingClientRect().right);
    return [t.id, Math.max(...last), box.right - parseFloat(getComputedStyle(card).paddingRight)];
  })"""


def _tables_fit_their_cards(browser: Any, page: Any, server: Server) -> None:
    """At 1400 px wide every table's last column is inside its card: none is cut off or
    hidden behind a sideways scroll (the growth factors and the channels' credit were)."""
    wide = browser.new_page(viewport={"width": 1400, "height": 1000})
    wide.context.add_cookies(page.context.cookies())
    wide.goto(server.base + "/")
    wide.wait_for_selector("#status.live", timeout=30_000)
    until(lambda: wide.locator("#channels tbody tr").count() >= 3, 20, "the channels")
    wide.wait_for_selector("#growth tbody tr")
    tables = wide.evaluate(LAST_COLUMNS)
    assert {"growth", "channels", "attr", "board", "bots"} <= {t[0] for t in tables}, tables
    cut = [
        (name, round(right), round(inner)) for name, right, inner in tables if right > inner + 0.5
    ]
    assert cut == [], f"last columns past their cards' edge (table, right, card): {cut}"
    wide.close()


def _readme_screenshot(browser: Any, page: Any, server: Server) -> None:
    laptop = browser.new_page(viewport={"width": 1366, "height": 900}, device_scale_factor=1)
    laptop.context.add_cookies(page.context.cookies())
    laptop.goto(server.base + "/")
    laptop.wait_for_selector("#status.live", timeout=30_000)
    until(lambda: laptop.locator("#board tbody tr").count() >= 3, 20, "the leaderboard")
    laptop.wait_for_timeout(800)  # counters' flash fades
    _screenshot(laptop, "dashboard", full_page=True)
    if target := os.environ.get("WINWIN_README_SCREENSHOT"):
        shutil.copy(ARTIFACTS / "dashboard.png", ROOT / target)
    laptop.close()


def _sign_out(page: Any, server: Server) -> None:
    """The Sign out form (with its CSRF field) ends the session on the server."""
    kept = {c["name"]: c["value"] for c in page.context.cookies()}
    campaigns = server.base + "/api/v1/campaigns"
    assert httpx.get(campaigns, cookies=kept).status_code == 200
    page.goto(server.base + "/campaigns")
    page.click("text=Sign out")
    page.wait_for_selector("#token")
    assert httpx.get(campaigns, cookies=kept).status_code == 401, "a copy of the cookie still works"


def until(predicate: Any, timeout: float, what: str) -> None:
    """Poll from Python: the pages' CSP forbids the eval behind Playwright's wait_for_function."""
    wait_for(predicate, timeout, 0.2, what)


def _number(page: Any, selector: str) -> int:
    text = page.inner_text(selector).replace(",", "")
    return int(text) if text.isdigit() else 0


def _screenshot(page: Any, name: str, full_page: bool = False) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
