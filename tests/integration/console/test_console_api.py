"""The API routes the console added (issue 16), on SQLite and PostgreSQL: accounts,
templates (list, edit, send me a test), contact search and a contact's profile; and the
change forms each role is shown. No Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.domain.roles import Role
from tests.integration.console.seen import seen
from tests.integration.test_accounts import (
    PASSWORD,
    audit_rows,
    cheap_argon2,
    make_account,
    sign_in_as,
)
from tests.integration.test_security_sessions import BEARER, Clock, client_on, same_site

__all__ = ["cheap_argon2"]
TEMPLATE = {"name": "digest", "channel": "email", "subject": "Hi {{ contact.name }}"}
TEMPLATE |= {"text": "Hello {{ contact.name }}"}


@pytest.fixture
def client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    with client_on(tmp_path, Clock(), database_url) as client:
        make_account(client, "ann@net.example", Role.ADMIN)
        make_account(client, "sam@net.example", Role.STAFF)
        make_account(client, "ali@net.example", Role.ANALYST)
        yield client


def test_an_admin_creates_lists_and_disables_accounts(client: TestClient):
    csrf = sign_in_as(client, "ann@net.example")
    made = client.post(
        "/api/v1/accounts",
        json={"email": "Kim@Net.example", "role": "staff"},
        headers=same_site(csrf),
    )
    assert made.status_code == 201 and len(made.json()["password"]) >= 16
    assert made.json()["email"] == "kim@net.example"
    again = client.post(
        "/api/v1/accounts",
        json={"email": "kim@net.example", "role": "staff"},
        headers=same_site(csrf),
    )
    assert again.status_code == 422 and "exists" in again.text
    chosen = {"email": "lu@net.example", "role": "analyst", "password": PASSWORD}
    assert "password" not in client.post("/api/v1/accounts", json=chosen, headers=BEARER).json()
    listed = {a["email"]: a for a in client.get("/api/v1/accounts").json()}
    assert listed["kim@net.example"]["role"] == "staff" and "password_hash" not in str(listed)
    gone = client.delete("/api/v1/accounts/kim@net.example", headers=same_site(csrf))
    assert gone.status_code == 200 and gone.json()["disabled_at"]
    assert client.delete("/api/v1/accounts/no@net.example", headers=BEARER).status_code == 404
    kinds = [(e.actor_id, e.action, e.object_kind) for e in audit_rows(client)]
    assert kinds.count(("ann@net.example", "create", "account")) == 1  # once, not twice
    assert ("ann@net.example", "disable", "account") in kinds
    sign_in_as(client, "sam@net.example")
    assert client.get("/api/v1/accounts").status_code == 403


def test_templates_are_listed_edited_in_the_sandbox_and_sent_as_a_test(client: TestClient):
    csrf = sign_in_as(client, "sam@net.example")
    made = client.post("/api/v1/templates", json=TEMPLATE, headers=same_site(csrf)).json()
    url = f"/api/v1/templates/{made['id']}"
    edited = client.put(url, json=TEMPLATE | {"name": "digest v2"}, headers=same_site(csrf))
    assert edited.status_code == 200 and client.get(url).json()["name"] == "digest v2"
    assert [t["name"] for t in client.get("/api/v1/templates").json()] == ["digest v2"]
    bad = client.put(url, json=TEMPLATE | {"text": "{{ x.__class__ }}"}, headers=same_site(csrf))
    assert bad.status_code == 422 and client.get(url).json()["text"] == TEMPLATE["text"]
    other = client.put(url, json=TEMPLATE | {"channel": "social"}, headers=same_site(csrf))
    assert other.status_code == 422
    sent = client.post(f"{url}/test", headers=same_site(csrf))
    assert sent.status_code == 200 and sent.json()["to"] == "sam@net.example"
    outbox = client.get("/api/v1/outbox").json()
    assert [(m["to"], m["subject"][:7]) for m in outbox] == [("sam@net.example", "[test] ")]
    assert client.post(f"{url}/test", headers=BEARER).status_code == 422  # no email of its own


def test_contacts_are_searched_and_one_contact_shows_its_history(client: TestClient):
    people = [
        {"external_id": "fam-1", "email": "Rosa@Family.example", "name": "Rosa Diaz"},
        {"external_id": "fam-2", "email": "ben@family.example", "name": "Ben Ode"},
        {"external_id": "clinic-3", "name": "Dr. Rosalind", "consent": {"email": "confirmed"}},
    ]
    assert client.post("/api/v1/contacts", json=people, headers=BEARER).status_code == 200
    sign_in_as(client, "ali@net.example")  # an analyst sees counts, never people
    assert client.get("/api/v1/contacts?q=rosa").status_code == 403
    assert client.get("/api/v1/contacts/clinic-3").status_code == 403
    sign_in_as(client, "sam@net.example")  # staff do
    found = lambda q: [c["external_id"] for c in client.get(f"/api/v1/contacts?q={q}").json()]  # noqa: E731
    assert found("rosa") == ["fam-1", "clinic-3"]
    assert found("ROSA@family") == ["fam-1"] and found("clinic") == ["clinic-3"]
    assert found("") == ["fam-1", "fam-2", "clinic-3"]
    one = client.get("/api/v1/contacts/clinic-3").json()
    assert one["name"] == "Dr. Rosalind"
    assert [(h["channel"], h["status"]) for h in one["consent_history"]] == [("email", "confirmed")]
    assert one["touches"] == [] and one["stages_by_month"] == [] and one["journeys"] == []
    assert client.get("/api/v1/contacts/nobody").status_code == 404


@pytest.mark.parametrize(
    ("path", "form_button"),
    [
        ("/resources", "Save resource"),
        ("/messengers", "Save messenger"),
        ("/templates", "Save template"),
    ],
)
def test_only_roles_that_may_change_are_shown_the_forms(
    client: TestClient, path: str, form_button: str
):
    sign_in_as(client, "sam@net.example")
    assert form_button in seen(client.get(path).text).buttons
    sign_in_as(client, "ali@net.example")
    page = seen(client.get(path).text)
    assert page.buttons == ["Sign out"], path
    assert not [label for label in page.labels if label], path
