"""The console's outreach pages (issue 16, part 3) as each role sees them: Audiences,
Journeys, the guided campaign form and the Stage map, on SQLite and PostgreSQL. No Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.domain.roles import Role
from tests.integration.console.seen import Seen, seen
from tests.integration.test_accounts import cheap_argon2, make_account, sign_in_as
from tests.integration.test_security_sessions import Clock, client_on

__all__ = ["cheap_argon2"]
PAGES = ("/audiences", "/journeys", "/new-campaign", "/stage-map")


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with client_on(tmp_path, Clock(), database_url) as client:
        make_account(client, "ann@net.example", Role.ADMIN)
        make_account(client, "sam@net.example", Role.STAFF)
        make_account(client, "ali@net.example", Role.ANALYST)
        yield client


def labelled(page: Seen, start: str) -> bool:
    """A form control whose label starts so (a select's label holds its options too)."""
    return any(label.startswith(start) for label in page.labels)


def test_the_pages_need_a_sign_in(client: TestClient):
    for path in PAGES:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", path


def test_staff_build_a_segment_plan_a_campaign_and_edit_journeys(client: TestClient):
    sign_in_as(client, "sam@net.example")
    audiences = seen(client.get("/audiences").text)
    assert {"Roles (comma separated)", "Needs (comma separated)", "Audience name"} <= set(
        audiences.labels
    )
    assert any(label.startswith("Within the last") for label in audiences.labels)
    assert "people with consent match" in audiences.text and "Save audience" in audiences.buttons
    assert "Audiences" in audiences.links and "Campaigns" in audiences.links
    form = seen(client.get("/new-campaign").text)
    for label in (
        "Campaign name",
        "Channel",
        "Template",
        "Audience (email)",
        "Throttle",
        "Send at",
    ):
        assert labelled(form, label), label
    assert {"Send me a test", "Create campaign"} <= set(form.buttons)
    journeys = seen(client.get("/journeys").text)
    assert {"Simulate", "Save journey"} <= set(journeys.buttons)
    assert labelled(journeys, "Delay (days)") and labelled(journeys, "Exit when")
    stage_map = seen(client.get("/stage-map").text)
    assert "Save and recompute" not in stage_map.buttons  # the stage map is the admins'
    assert "New campaign" in seen(client.get("/campaigns").text).links


def test_an_analyst_is_shown_no_change_form(client: TestClient):
    sign_in_as(client, "ali@net.example")
    assert "Save audience" not in seen(client.get("/audiences").text).buttons
    assert "Create campaign" not in seen(client.get("/new-campaign").text).buttons
    journeys = seen(client.get("/journeys").text)
    assert not {"Simulate", "Save journey"} & set(journeys.buttons)
    controls = {"Schedule", "Cancel campaign", "Pause", "Resume", "Clone as a draft"}
    assert not controls & set(seen(client.get("/campaigns/c-1").text).buttons)
    assert "New campaign" not in seen(client.get("/campaigns").text).links
    sign_in_as(client, "sam@net.example")  # staff are shown them
    assert controls <= set(seen(client.get("/campaigns/c-1").text).buttons)
    assert "New campaign" in seen(client.get("/campaigns").text).links


def test_an_admin_edits_the_stage_map(client: TestClient):
    sign_in_as(client, "ann@net.example")
    page = seen(client.get("/stage-map").text)
    assert "Save and recompute" in page.buttons and "Stage map" in page.links
    assert "Event types that count for use (one a line)" in page.labels
    assert "What the recomputation changed" in page.text
