"""The console's pages over HTTP (issue 16), on SQLite and PostgreSQL: who sees which
page, the one navigation, and which buttons a role is shown. No Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.domain.roles import Role
from tests.integration.console.seen import seen
from tests.integration.test_accounts import cheap_argon2, make_account, sign_in_as
from tests.integration.test_security_sessions import Clock, client_on

__all__ = ["cheap_argon2"]  # the fixture, used here by its name
NAV = ["Dashboard", "Campaigns", "Journeys", "Audiences", "Templates", "Contacts"]
NAV += ["Resources", "Messengers", "Audit"]
PAGES = ["/contacts", "/contacts/fam-1", "/resources", "/messengers", "/templates"]
OLD_PAGES = ["/", "/campaigns", "/audit", "/preview"]


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with client_on(tmp_path, Clock(), database_url) as client:
        for email, role in (("ann@net.example", Role.ADMIN), ("sam@net.example", Role.STAFF)):
            make_account(client, email, role)
        make_account(client, "ali@net.example", Role.ANALYST)
        yield client


def test_signed_out_visitors_are_sent_to_the_sign_in_page(client: TestClient):
    for path in [*PAGES, "/accounts"]:
        r = client.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/"), path
    assert "Password" in seen(client.get("/contacts").text).labels


def test_every_page_shows_one_navigation_the_role_and_sign_out(client: TestClient):
    sign_in_as(client, "sam@net.example")
    for path in PAGES + OLD_PAGES:
        page = seen(client.get(path).text)
        assert [name for name in page.links if name in NAV + ["Accounts"]] == NAV, path
        assert "Sign out" in page.buttons, path
        assert "Signed in as sam@net.example" in page.text and "Not for sharing" in page.text
        assert "Skip to the" in page.text, path


def test_accounts_is_for_admins_only(client: TestClient):
    sign_in_as(client, "ann@net.example")
    page = seen(client.get("/contacts").text)
    assert page.links["Accounts"] == "/accounts"
    assert client.get("/accounts").status_code == 200
    sign_in_as(client, "sam@net.example")
    r = client.get("/accounts")
    assert r.status_code == 403 and "only an admin may see this" in seen(r.text).text
    assert "Accounts" not in seen(client.get("/templates").text).links


def test_console_assets_are_served_and_nothing_else(client: TestClient):
    assert client.get("/ui/console/console.css").headers["content-type"].startswith("text/css")
    assert client.get("/ui/console/layout.html").status_code == 404
    assert client.get("/ui/console/..%2Fweb%2Fapp.js").status_code == 404
