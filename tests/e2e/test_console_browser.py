"""The staff console in a real headless Chromium (issue 16): an analyst reads every page,
is shown no change button and gets 403 on every changing API route; an admin edits a
template with its live preview and creates an account (password shown once). Every
console page passes axe-core's WCAG 2.1 AA rules and is screenshot into test-artifacts/.

No Kafka: the API (uvicorn, in a thread) on SQLite. axe-core is vendored in
tests/e2e/vendor/axe.min.js (MPL-2.0, 4.10.2), injected into pages whose CSP would
refuse it (a browser context that bypasses CSP, for the test only)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services import accounts, passwords
from services.accounts_cli import cli_actor
from services.domain.roles import Role
from tests.e2e.test_browser import ARTIFACTS, _free_port, _screenshot, browser, until
from tests.integration.test_accounts import CHEAP, PASSWORD
from tests.integration.test_security_access import api_v1_calls, local_settings
from tests.stack import BROWSER, TOKEN, wait_for

pytestmark = [pytest.mark.e2e]
__all__ = ["browser"]  # the fixture, used here by its name
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PAGES = ["contacts", "contacts/fam-1", "resources", "messengers", "templates"]
PEOPLE_PAGES = ["contacts", "contacts/fam-1"]
READING_BUTTONS = {"Sign out", "Search", "Previous page", "Next page", "Download CSV", "Show"}
READING_BUTTONS |= {"Older changes"}


@pytest.fixture
def console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    import uvicorn

    from services.api import create_app
    from services.bootstrap import bootstrap

    monkeypatch.setattr(passwords, "HASHER", CHEAP)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(bootstrap(local_settings(tmp_path, public_base_url=base)))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, what="uvicorn to start")
    try:
        yield base, app
    finally:
        server.should_exit = True
        thread.join(15)


def _seed(base: str, app: Any) -> None:
    c = app.state.container
    for email, role in (("ann@net.example", Role.ADMIN), ("ali@net.example", Role.ANALYST)):
        accounts.create_account(c, email, role, PASSWORD, cli_actor())
    headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": BROWSER}
    with httpx.Client(base_url=base, headers=headers) as api:
        for path, body in (
            ("/api/v1/contacts", [{"external_id": "fam-1", "name": "Rosa", "language": "es"}]),
            (
                "/api/v1/resources",
                {"title": "Guide", "url": "https://x.example/g", "kind": "guide"},
            ),
            ("/api/v1/messengers", {"id": "maria", "name": "Maria", "role": "parent"}),
            (
                "/api/v1/templates",
                {"name": "Digest", "subject": "Hi", "text": "Hi {{ contact.name }}"},
            ),
        ):
            assert api.post(path, json=body).status_code < 300, path


def _sign_in(page: Any, base: str, email: str) -> None:
    page.goto(base + "/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_selector("text=Signed in as")


def _settled(page: Any) -> None:
    until(lambda: "loading" not in page.inner_text("#status"), 20, "the page to load")


def _accessible(page: Any, name: str) -> None:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(r => r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target).join(' ')))",
        WCAG,
    )
    assert found == [], f"{name}: {found}"


def test_analyst_reads_every_page_and_may_change_nothing(console, browser):
    base, app = console
    _seed(base, app)
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900}).new_page()
    _sign_in(page, base, "ali@net.example")
    assert "which outreach caused it" in page.inner_text("main").lower()  # the reports
    assert "Accounts" not in page.inner_text("nav")
    for name in PEOPLE_PAGES:  # an analyst sees counts, never people
        page.goto(f"{base}/{name}")
        assert "never a person" in page.inner_text("main") and "Rosa" not in page.content()
    for name in [p for p in PAGES if p not in PEOPLE_PAGES] + ["campaigns", "audit"]:
        page.goto(f"{base}/{name}")
        _settled(page)
        shown = {b.strip() for b in page.locator("button:visible").all_inner_texts()}
        assert shown <= READING_BUTTONS, f"{name}: change buttons shown to an analyst: {shown}"
        if name in PAGES:
            _accessible(page, name)
            _screenshot(page, "console-analyst-" + name.replace("/", "-"), full_page=True)
    csrf = page.input_value("input[name=csrf_token] >> nth=0")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    headers = {"Origin": base, "X-CSRF-Token": csrf}
    with httpx.Client(base_url=base, cookies=cookies, headers=headers) as as_analyst:
        for method, path in api_v1_calls(app):
            if method in {"POST", "PUT", "PATCH", "DELETE"}:
                r = as_analyst.request(method, path, json={})
                assert r.status_code == 403, f"{method} {path}: {r.status_code}"


def test_admin_edits_a_template_live_and_creates_an_account(console, browser):
    base, app = console
    _seed(base, app)
    page = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900}).new_page()
    _sign_in(page, base, "ann@net.example")
    page.goto(base + "/templates")
    _settled(page)
    page.get_by_role("button", name="Edit Digest").click()
    page.fill("#t-text", "Hola {{ contact.name }}, bienvenida")
    until(lambda: "bienvenida" in page.inner_text("#out-text"), 20, "the live preview")
    page.get_by_role("button", name="Save template").click()
    until(lambda: "Saved" in page.inner_text("#save-status"), 20, "the template saved")
    page.get_by_role("button", name="Send me a test").click()
    until(lambda: "Test sent to ann@net.example" in page.inner_text("#save-status"), 20, "test")
    _accessible(page, "templates (editor)")
    _screenshot(page, "console-templates", full_page=True)
    page.goto(base + "/accounts")
    _settled(page)
    page.get_by_label("Email").fill("kim@net.example")
    page.get_by_role("button", name="Create account").click()
    until(lambda: "shown once" in page.inner_text("#account-made"), 20, "the new password")
    until(lambda: "kim@net.example" in page.inner_text("#accounts"), 20, "the account listed")
    _accessible(page, "accounts")
    _screenshot(page, "console-accounts", full_page=True)
    for name in ("resources", "messengers", "contacts", "contacts/fam-1"):
        page.goto(f"{base}/{name}")
        _settled(page)
        _screenshot(page, "console-" + name.replace("/", "-"), full_page=True)
