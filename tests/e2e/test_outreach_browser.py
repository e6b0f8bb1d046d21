"""The console's outreach pages in a real headless Chromium (issue 16, part 3): a staff
member builds an audience and sees its live count, creates an email campaign to it and a
toolkit campaign for two messengers with the guided form, and schedules both; then opens
Journeys and (as an admin) the Stage map. Every page passes axe-core's WCAG 2.1 AA rules
and is screenshot into test-artifacts/. The staff member makes no API call: the seed
(contacts, a resource, messengers, templates) goes through the bearer token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services import accounts
from services.accounts_cli import cli_actor
from services.domain.roles import Role
from tests.e2e.test_browser import _screenshot, browser, until
from tests.e2e.test_console_browser import _accessible, _settled, _sign_in, console
from tests.integration.test_accounts import PASSWORD
from tests.stack import BROWSER, TOKEN

pytestmark = [pytest.mark.e2e]
__all__ = ["browser", "console"]  # fixtures, used here by their names


def _seed(base: str, app: Any) -> None:
    c = app.state.container
    for email, role in (("sam@net.example", Role.STAFF), ("ann@net.example", Role.ADMIN)):
        accounts.create_account(c, email, role, PASSWORD, cli_actor())
    people = [
        {"external_id": f"fam-{n}", "email": f"fam{n}@family.example", "role": role}
        | {"consent": {"email": "confirmed"}}
        for n, role in enumerate(["parent", "parent", "clinician"], 1)
    ]
    headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": BROWSER}
    with httpx.Client(base_url=base, headers=headers) as api:
        for path, body in (
            ("/api/v1/contacts", people),
            ("/api/v1/resources", {"id": "guide", "title": "Diet guide",
                                   "url": "https://x.example/g", "kind": "guide"}),
            ("/api/v1/messengers", {"id": "maria", "name": "Maria", "role": "parent"}),
            ("/api/v1/messengers", {"id": "li", "name": "Li", "role": "nurse"}),
            ("/api/v1/templates", {"name": "Digest", "subject": "News",
                                   "text": "Hi {{ contact.first_name }}"}),
            ("/api/v1/templates", {"name": "Share kit", "channel": "toolkit",
                                   "text": "From {{ messenger.name }}: our diet guide"}),
        ):  # fmt: skip
            assert api.post(path, json=body).status_code < 300, path


def _campaign(page: Any, base: str, name: str, channel: str, template: str) -> None:
    page.goto(base + "/new-campaign")
    page.get_by_label("Campaign name").fill(name)
    page.get_by_label("Channel").select_option(channel)
    page.get_by_label("Template").select_option(label=template)
    page.get_by_label("Diet guide").check()


def test_staff_build_an_audience_and_schedule_an_email_and_a_toolkit_campaign(console, browser):
    base, app = console
    _seed(base, app)
    page = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900}).new_page()
    _sign_in(page, base, "sam@net.example")

    page.goto(base + "/audiences")
    _settled(page)
    until(lambda: page.inner_text("#count") == "3", 20, "everyone with consent counted")
    page.get_by_label("Roles (comma separated)").fill("parent")
    until(lambda: page.inner_text("#count") == "2", 20, "the live count of parents")
    assert page.inner_text("#sample") == "fam-1, fam-2"
    page.get_by_label("Audience name").fill("Parents")
    page.get_by_role("button", name="Save audience").click()
    until(lambda: "Parents" in page.inner_text("#audiences"), 20, "the audience listed")
    _accessible(page, "audiences")
    _screenshot(page, "console-audiences", full_page=True)

    _campaign(page, base, "June news", "email", "Digest")
    page.get_by_label("Audience (email)").select_option(label="Parents")
    until(lambda: "Hi Ann" in page.inner_text("#previews"), 20, "the email preview")
    _accessible(page, "new campaign (email)")
    _screenshot(page, "console-new-campaign-email", full_page=True)
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url("**/campaigns/*")
    until(lambda: page.inner_text("#campaign-status") != "draft", 20, "scheduled")

    _campaign(page, base, "Diet kit", "toolkit", "Share kit")
    page.get_by_label("Maria", exact=True).check()
    page.get_by_label("Li", exact=True).check()
    until(lambda: "From Li" in page.inner_text("#previews"), 20, "the share copy previews")
    _accessible(page, "new campaign (toolkit)")
    _screenshot(page, "console-new-campaign-toolkit", full_page=True)
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url("**/campaigns/*")
    until(lambda: "ZIP for li" in page.inner_text("#toolkits"), 20, "both toolkits")
    assert "ZIP for maria" in page.inner_text("#toolkits")
    _screenshot(page, "console-campaign-toolkit", full_page=True)

    page.goto(base + "/campaigns")
    until(lambda: "Diet kit" in page.inner_text("#campaigns"), 20, "the campaigns listed")
    listed = page.inner_text("#campaigns")
    assert "June news" in listed and "draft" not in listed

    page.goto(base + "/journeys")
    _settled(page)
    _accessible(page, "journeys")
    _screenshot(page, "console-journeys", full_page=True)
    page.context.clear_cookies()
    _sign_in(page, base, "ann@net.example")
    page.goto(base + "/stage-map")
    until(lambda: "in use" in page.inner_text("#status"), 20, "the stage map")
    page.get_by_role("button", name="Save and recompute").click()
    until(lambda: "recomputed" in page.inner_text("#status"), 20, "the recomputation")
    assert "People before" in page.inner_text("#changes")
    _accessible(page, "stage map")
    _screenshot(page, "console-stage-map", full_page=True)
