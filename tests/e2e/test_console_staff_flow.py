"""The staff flow of issue 16's "Done when", in a real headless Chromium on the real stack
(Kafka, the stream worker, the relay, the dispatcher's round in a thread, the API over
HTTP): a ``staff`` account signs in and, making no API call of its own, imports contacts
from a CSV (the progress bar finishes; the rejected rows download), creates and edits a
resource and messengers, creates templates, builds an audience (its live count), creates
an email campaign and a toolkit campaign for two messengers and schedules both, sees the
emails in the outbox and the toolkit pages; a recipient follows a tracked link from an
email; the staff member sees the campaign credited on its page, and the Audit page shows
every change the test made, by the staff account.

Every console page is screenshot into test-artifacts/; with
``WINWIN_README_SCREENSHOT_DIR=docs`` the README's pictures are written there too.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services import accounts, passwords
from services.accounts_cli import cli_actor
from services.domain.roles import Role
from services.tracking.bots import TOO_SOON
from tests.e2e.test_browser import ARTIFACTS, Server, _screenshot, browser, served, until
from tests.e2e.test_console_browser import _accessible, _settled, _sign_in
from tests.integration.test_accounts import CHEAP, PASSWORD
from tests.stack import BROWSER, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]
__all__ = ["browser", "served"]  # fixtures, used here by their names
STAFF = "sam@net.example"
PEOPLE = (
    "external_id,email,name,role,consent_email\n"
    "fam-1,rosa@family.example,Rosa,parent,confirmed\n"
    "fam-2,ben@family.example,Ben,parent,confirmed\n"
    "fam-3,ode@clinic.example,Dr. Ode,clinician,confirmed\n"
    "fam-4,not-an-address,Eve,parent,confirmed\n"
)
#: Where the guide lives: the network's own site, stood in for by this server (the
#: recipient's browser resolves no other host, and Playwright routes no redirect).
GUIDE = "/healthz?guide=diet"
#: The README's pictures: (test-artifacts name, docs/ name).
README_SHOTS = (
    ("console-contacts-import", "console-import.png"),
    ("console-audiences-staff", "console-audience.png"),
    ("console-campaign-credited", "console-campaign.png"),
    ("console-audit-staff", "console-audit.png"),
)


@pytest.fixture
def dispatcher(served: tuple[Any, Server, Any]) -> Iterator[None]:
    """The dispatcher role's rounds (emails, toolkits, journeys) in a thread."""
    # lazy: the dispatcher's use cases (as in its own process)
    from services.dispatcher_role import run

    _, server, _ = served
    settings = server.server.config.app.state.container.settings  # links to this server
    stops: list[Callable[[], None]] = []
    thread = threading.Thread(
        target=run, args=(settings, 0.3, stops.append), name="dispatcher", daemon=True
    )
    thread.start()
    yield
    until(lambda: bool(stops), 10, "the dispatcher to start")
    stops[0]()
    thread.join(15)


def test_staff_run_outreach_from_the_browser_and_see_it_credited(
    served, dispatcher, browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    stack, server, _ = served
    monkeypatch.setattr(passwords, "HASHER", CHEAP)
    container = server.server.config.app.state.container
    accounts.create_account(container, STAFF, Role.STAFF, PASSWORD, cli_actor())
    base = server.base
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _sign_in(page, base, STAFF)

    _import_contacts(page, base, tmp_path)
    _resource_and_messengers(page, base)
    _templates(page, base)
    _audience(page, base)
    email_page = _campaign(page, base, "June news", "email", "Digest")
    until(lambda: "sent" in page.inner_text("#campaign-status"), 30, "the emails sent")
    sent = time.monotonic()
    toolkit_page = _campaign(page, base, "Diet kit", "toolkit", "Share kit", ["Maria", "Li"])
    link = _outbox_link(page, base)
    _toolkit_page(page, base, toolkit_page)
    # A click within TOO_SOON of its email's delivery is a scanner's (flagged, never
    # credited): a quick run reached it in under 2 s, and the credit never showed.
    time.sleep(max(0.0, sent + TOO_SOON.total_seconds() + 1 - time.monotonic()))
    _recipient_clicks(browser, link, base + GUIDE)
    _credited(page, email_page)
    _audit(page, base)
    if target := os.environ.get("WINWIN_README_SCREENSHOT_DIR"):
        for shot, name in README_SHOTS:
            shutil.copy(ARTIFACTS / f"{shot}.png", ROOT / target / name)


def _shot(page: Any, name: str) -> None:
    _accessible(page, name)
    _screenshot(page, name, full_page=True)


def _import_contacts(page: Any, base: str, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE)
    page.goto(base + "/contacts")
    _settled(page)
    page.get_by_label("CSV file").set_input_files(people)
    page.get_by_role("button", name="Import", exact=True).click()
    until(lambda: "Import finished" in page.inner_text("#import-status"), 30, "the import")
    said = page.inner_text("#import-status")
    assert "3 created" in said and "1 rejected" in said, said
    assert page.get_attribute("#i-progress", "value") == page.get_attribute("#i-progress", "max")
    until(lambda: "Rosa" in page.inner_text("#contacts"), 20, "the imported contacts listed")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download the rejected rows")).click()
    report = Path(download.value.path()).read_text()
    assert report.startswith("line,reason\n5,email:"), report
    _shot(page, "console-contacts-import")


def _resource_and_messengers(page: Any, base: str) -> None:
    page.goto(base + "/resources")
    _settled(page)
    page.get_by_label("Title").fill("Diet guide draft")
    page.get_by_label("Address (https://…)").fill(base + GUIDE)
    page.get_by_label("Kind").fill("guide")
    page.get_by_label("Topics (comma separated)").fill("diet, school")
    page.get_by_label("Id (optional; the same id updates)").fill("guide")
    page.get_by_role("button", name="Save resource").click()
    page.get_by_role("button", name="Edit Diet guide draft").click()
    page.get_by_label("Title").fill("Diet guide")
    page.get_by_role("button", name="Save resource").click()
    until(lambda: "Saved “Diet guide”" in page.inner_text("#save-status"), 20, "the edit")
    until(lambda: "draft" not in page.inner_text("#resources"), 20, "the resource edited")
    _shot(page, "console-resources-staff")
    page.goto(base + "/messengers")
    _settled(page)
    for messenger_id, name, role in (("maria", "Maria R.", "parent"), ("li", "Li", "nurse")):
        page.get_by_label("Name").fill(name)
        page.get_by_label("Role").fill(role)
        page.get_by_label("Id (optional; the same id updates)").fill(messenger_id)
        page.get_by_role("button", name="Save messenger").click()
        until(lambda n=name: n in page.inner_text("#messengers"), 20, "the messenger listed")
    page.get_by_role("button", name="Edit Maria R.").click()
    page.get_by_label("Name").fill("Maria")
    page.get_by_role("button", name="Save messenger").click()
    until(lambda: "Maria R." not in page.inner_text("#messengers"), 20, "the messenger edited")
    _shot(page, "console-messengers-staff")


def _templates(page: Any, base: str) -> None:
    page.goto(base + "/templates")
    _settled(page)
    for name, channel, text in (
        ("Digest", "email", "Hi {{ contact.first_name }}, read {{ resources[0].url }}"),
        ("Share kit", "toolkit", "From {{ messenger.name }}: {{ resources[0].url }}"),
    ):
        page.get_by_role("button", name="New template").click()
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Channel").select_option(channel)
        page.get_by_label("Subject").fill("News from the network")
        page.get_by_label(re.compile(r"^Text")).fill(text)
        page.get_by_role("button", name="Save template").click()
        until(lambda n=name: f"Saved “{n}”" in page.inner_text("#save-status"), 20, "saved")
    _shot(page, "console-templates-staff")


def _audience(page: Any, base: str) -> None:
    page.goto(base + "/audiences")
    _settled(page)
    until(lambda: page.inner_text("#count") == "3", 20, "everyone with consent counted")
    page.get_by_label("Roles (comma separated)").fill("parent")
    until(lambda: page.inner_text("#count") == "2", 20, "the live count of parents")
    page.get_by_label("Audience name").fill("Parents")
    page.get_by_role("button", name="Save audience").click()
    until(lambda: "Parents" in page.inner_text("#audiences"), 20, "the audience listed")
    _shot(page, "console-audiences-staff")


def _campaign(
    page: Any, base: str, name: str, channel: str, template: str, messengers: tuple = ()
) -> str:
    """Creates and schedules (now) the campaign with the guided form; its page's URL."""
    page.goto(base + "/new-campaign")
    page.get_by_label("Campaign name").fill(name)
    page.get_by_label("Channel").select_option(channel)
    page.get_by_label("Template").select_option(label=template)
    page.get_by_label("Diet guide").check()
    if channel == "email":
        page.get_by_label("Audience (email)").select_option(label="Parents")
    for messenger in messengers:
        page.get_by_label(messenger, exact=True).check()
    _shot(page, f"console-new-campaign-{channel}-staff")
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url("**/campaigns/*")
    until(lambda: page.inner_text("#campaign-status") != "draft", 20, "scheduled")
    return str(page.url)


def _outbox_link(page: Any, base: str) -> str:
    """The outbox holds an email to each parent; the tracked link of Rosa's."""
    page.goto(base + "/outbox")
    until(lambda: page.locator("tr").count() >= 2, 30, "the emails in the outbox")
    shown = page.inner_text("body")
    assert "rosa@family.example" in shown and "ben@family.example" in shown
    assert "ode@clinic.example" not in shown  # a clinician is not in the audience
    rows = page.locator("tr", has_text="rosa@family.example")
    text = rows.first.locator("pre").text_content()
    found = re.search(r"http://\S+/r/\S+", text or "")
    assert found, text
    _screenshot(page, "console-outbox")
    return found.group()


def _toolkit_page(page: Any, base: str, campaign_url: str) -> None:
    def built() -> bool:
        page.goto(campaign_url)
        until(lambda: "loading" not in page.inner_text("#toolkits"), 20, "the toolkits")
        return "ZIP for li" in page.inner_text("#toolkits")

    until(built, 30, "both toolkits built")
    assert "ZIP for maria" in page.inner_text("#toolkits")
    _screenshot(page, "console-campaign-toolkit-staff", full_page=True)
    page.locator("#toolkits a[href*='/t/']").first.click()
    until(lambda: "Diet guide" in page.inner_text("body"), 20, "the messenger's toolkit page")
    _screenshot(page, "console-toolkit-page", full_page=True)


def _recipient_clicks(browser: Any, link: str, guide: str) -> None:
    """A recipient (another browser, no session) follows the tracked link to the guide.
    Their browser is an everyday one: a headless agent's click counts as a bot's."""
    recipient = browser.new_context(user_agent=BROWSER).new_page()
    recipient.goto(link)
    assert recipient.url == guide
    recipient.context.close()


def _credited(page: Any, campaign_url: str) -> None:
    def credited() -> bool:
        page.get_by_role("button", name="Show credits").click()
        page.wait_for_timeout(300)
        return "aware" in page.inner_text("#credits")

    page.goto(campaign_url)
    try:
        # Once in CI (1 of 5 runs then) the credit had not shown: most likely the click
        # came within TOO_SOON of delivery (see above). A failure carries the worker's log.
        until(credited, 120, "the click credited to the campaign")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the page shows: {page.inner_text('main')}") from None
    _screenshot(page, "console-campaign-credited", full_page=True)


def _audit(page: Any, base: str) -> None:
    page.goto(base + "/audit")
    _settled(page)
    page.get_by_label("Who (email or token id)").fill(STAFF)
    page.get_by_role("button", name="Show").click()

    def rows() -> list[list[str]]:
        return [r.split("\t") for r in page.inner_text("#audit tbody").splitlines()]

    until(lambda: {row[1] for row in rows()} == {STAFF}, 20, "the staff's changes alone")
    done = sorted((action, kind) for _, _, action, kind, _ in rows())
    made = [("create", "audiences")] + 2 * [("create", "campaigns")]
    made += 3 * [("create", "messengers")] + 2 * [("create", "resources")]
    made += 2 * [("create", "templates"), ("schedule", "campaigns")]
    made += [("import", "contact_imports"), ("sign_in", "session")]
    assert done == sorted(made), done
    _screenshot(page, "console-audit-staff", full_page=True)
