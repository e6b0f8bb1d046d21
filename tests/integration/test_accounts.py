"""Named accounts, roles, service tokens and the audit log (issue 16). In process, on
SQLite and PostgreSQL (``database_url``); no Kafka."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from services import accounts, auth, passwords
from services.accounts_cli import DEV_ADMIN, cli_actor, dev_admin_sign_in, users_command
from services.cli import build_parser
from services.db.models_accounts import AuditEntry, ServiceToken, StaffAccount
from services.domain.roles import Role
from services.signin import PER_CLIENT, PER_EMAIL
from tests.integration.test_security_access import all_routes
from tests.integration.test_security_sessions import (
    BEARER,
    EVIL,
    FORM,
    SITE,
    TOKEN,
    Clock,
    client_on,
    page_csrf,
    same_site,
)

PASSWORD = "a long enough password"
CHANGES = {"POST", "PUT", "PATCH", "DELETE"}
SENTINEL = "sentinel.contact@family.example"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2id with cheaper parameters than production's: seconds, not minutes."""
    monkeypatch.setattr(passwords, "HASHER", CHEAP)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_client(tmp_path: Path, clock: Clock, database_url: str) -> Iterator[TestClient]:
    with client_on(tmp_path, clock, database_url) as client:
        yield client


@pytest.fixture
def sqlite_client(tmp_path: Path, clock: Clock) -> Iterator[TestClient]:
    """For what does not depend on the database (rules in memory, in the request path)."""
    with client_on(tmp_path, clock) as client:
        yield client


def make_account(client: TestClient, email: str, role: Role) -> None:
    accounts.create_account(client.app.state.container, email, role, PASSWORD, cli_actor())


def sign_in_as(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Signs in through the form; the CSRF token of the signed-in pages."""
    r = client.post(
        "/login",
        data={"email": email, "password": password},
        headers={"Origin": SITE},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return page_csrf(client)


def new_token(client: TestClient, role: str, name: str = "site") -> dict[str, str]:
    r = client.post("/api/v1/tokens", json={"name": name, "role": role}, headers=BEARER)
    assert r.status_code == 201, r.text
    return r.json()


def audit_rows(client: TestClient) -> list[AuditEntry]:
    with client.app.state.container.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.entry_id)))


def test_users_cli_creates_lists_and_disables_accounts(
    tmp_path: Path, clock: Clock, database_url: str, capsys: pytest.CaptureFixture[str]
):
    with client_on(tmp_path, clock, database_url) as client:
        settings = client.app.state.container.settings
        parse = build_parser().parse_args
        given = io.StringIO(PASSWORD + "\n")
        assert (
            users_command(
                settings, parse(["users", "create", "Ann@Net.example", "--role", "staff"]), given
            )
            == 0
        )
        assert (
            users_command(
                settings,
                parse(["users", "create", "bo@net.example", "--role", "analyst"]),
                io.StringIO(""),
            )
            == 0
        )
        out = capsys.readouterr().out
        generated = re.search(r"password \(shown once\): (\S+)", out)
        assert "created ann@net.example (staff)" in out and generated
        assert users_command(settings, parse(["users", "list"])) == 0
        listed = capsys.readouterr().out
        assert "ann@net.example\tstaff" in listed and "bo@net.example\tanalyst" in listed
        with client.app.state.container.sessions() as session:
            stored = {a.email: a.password_hash for a in session.scalars(select(StaffAccount))}
        assert all(h.startswith("$argon2id$") for h in stored.values())
        assert PASSWORD not in str(stored) and generated.group(1) not in str(stored)
        sign_in_as(client, "ANN@net.example")  # emails are compared lowercased
        assert client.get("/api/v1/campaigns").status_code == 200
        assert users_command(settings, parse(["users", "disable", "ann@net.example"])) == 0
        assert client.get("/api/v1/campaigns").status_code == 401  # its sessions ended
        r = client.post("/login", data={"email": "ann@net.example", "password": PASSWORD})
        assert r.status_code == 401
        assert "disabled" in (
            users_command(settings, parse(["users", "list"])) or capsys.readouterr().out
        )
        actions = [(r.actor_kind, r.action, r.object_id) for r in audit_rows(client)]
        assert ("cli", "create", "ann@net.example") in actions
        assert ("cli", "disable", "ann@net.example") in actions


def test_users_help_teaches_with_examples(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["users", "create", "--help"])
    text = capsys.readouterr().out
    assert "winwin users create" in text and "--generate" in text and "analyst" in text


def test_an_account_signs_in_with_a_locked_down_expiring_cookie(app_client: TestClient):
    make_account(app_client, "staff@net.example", Role.STAFF)
    page = app_client.get("/").text
    assert re.search(r'<label for="email">Email</label>', page)
    assert re.search(r'<label for="password">Password</label>', page)
    r = app_client.post(
        "/login",
        data={"email": "staff@net.example", "password": PASSWORD},
        headers={"Origin": SITE},
        follow_redirects=False,
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and re.search(r"SameSite=(strict|lax)", cookie, re.I)
    assert re.search(r"Max-Age=\d+", cookie)
    wrong = app_client.post("/login", data={"email": "staff@net.example", "password": "nope"})
    assert wrong.status_code == 401 and "do not match" in wrong.text


def test_a_hash_with_old_parameters_is_renewed_at_sign_in(
    sqlite_client: TestClient, monkeypatch: pytest.MonkeyPatch
):
    make_account(sqlite_client, "staff@net.example", Role.STAFF)
    stronger = PasswordHasher(time_cost=2, memory_cost=8 * 1024, parallelism=1)
    monkeypatch.setattr(passwords, "HASHER", stronger)  # the parameters changed
    sign_in_as(sqlite_client, "staff@net.example")
    with sqlite_client.app.state.container.sessions() as session:
        stored = session.get(StaffAccount, "staff@net.example").password_hash
    assert "t=2" in stored and not stronger.check_needs_rehash(stored)
    sqlite_client.cookies.clear()
    sign_in_as(sqlite_client, "staff@net.example")  # the renewed hash checks the same password


def test_secure_cookie_under_https(tmp_path: Path, clock: Clock):
    with client_on(tmp_path, clock) as client:
        client.app.state.container.settings.public_base_url = "https://winwin.example"
        make_account(client, "staff@net.example", Role.STAFF)
        r = client.post(
            "/login",
            data={"email": "staff@net.example", "password": PASSWORD},
            follow_redirects=False,
        )
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_sign_in_attempts_are_limited_per_email_and_per_client(
    sqlite_client: TestClient, clock: Clock
):
    make_account(sqlite_client, "staff@net.example", Role.STAFF)
    wrong = {"email": "staff@net.example", "password": "not the password"}
    for _ in range(PER_EMAIL):
        assert sqlite_client.post("/login", data=wrong).status_code == 401
    right = {"email": "staff@net.example", "password": PASSWORD}
    limited = sqlite_client.post("/login", data=right, follow_redirects=False)
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Too many" in limited.text
    clock.at += timedelta(seconds=61)
    assert sqlite_client.post("/login", data=right, follow_redirects=False).status_code == 303
    # Per client address: wrong tokens, whatever the email, until the address waits too.
    for _ in range(PER_CLIENT):
        assert sqlite_client.post("/login", data={"token": "wrong"}).status_code in (401, 429)
    r = sqlite_client.post("/login", data=right, follow_redirects=False)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def changing_routes(app: object) -> list[tuple[str, str]]:
    found = []
    for route in all_routes(app.routes):  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        for method in sorted(set(getattr(route, "methods", None) or ()) & CHANGES):
            if path.startswith("/api/v1/"):
                found.append((method, re.sub(r"\{[^}]+\}", "x", path)))
    return found


def test_an_analyst_gets_403_on_every_changing_api_route(sqlite_client: TestClient):
    routes = changing_routes(sqlite_client.app)
    assert len(routes) >= 20 and ("POST", "/api/v1/tokens") in routes
    analyst_token = new_token(sqlite_client, "analyst")["token"]
    make_account(sqlite_client, "analyst@net.example", Role.ANALYST)
    csrf = sign_in_as(sqlite_client, "analyst@net.example")
    as_token = {"Authorization": f"Bearer {analyst_token}"}
    for method, path in routes:
        for headers in (as_token, same_site(csrf)):
            r = sqlite_client.request(method, path, json={}, headers=headers)
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert "analyst" in r.json()["detail"], r.text
    # Reading is allowed.
    assert sqlite_client.get("/api/v1/campaigns").status_code == 200
    assert sqlite_client.get("/api/v1/campaigns", headers=as_token).status_code == 200


def test_staff_cannot_manage_tokens_or_the_stage_map(sqlite_client: TestClient):
    token_id = new_token(sqlite_client, "analyst")["id"]
    make_account(sqlite_client, "staff@net.example", Role.STAFF)
    csrf = sign_in_as(sqlite_client, "staff@net.example")
    mine = same_site(csrf)
    stage_map = sqlite_client.get("/api/v1/stage-map").json()  # reading it is allowed
    refused = [
        sqlite_client.post("/api/v1/tokens", json={"name": "x", "role": "admin"}, headers=mine),
        sqlite_client.get("/api/v1/tokens"),
        sqlite_client.delete(f"/api/v1/tokens/{token_id}", headers=mine),
        sqlite_client.put("/api/v1/stage-map", json=stage_map, headers=mine),
    ]
    for r in refused:
        assert r.status_code == 403 and "only an admin" in r.json()["detail"], r.text
    tpl = {"name": "t", "channel": "email", "subject": "Hi", "text": "Hi"}
    assert sqlite_client.post("/api/v1/templates", json=tpl, headers=mine).status_code == 201


def test_a_service_token_is_shown_once_listed_without_secret_and_revocable(
    app_client: TestClient,
):
    made = new_token(app_client, "staff", name="network site")
    secret, token_id = made["token"], made["id"]
    assert made["role"] == "staff" and made["name"] == "network site"
    listed = app_client.get("/api/v1/tokens", headers=BEARER)
    assert (
        listed.status_code == 200 and secret not in listed.text and "token" not in listed.json()[0]
    )
    with app_client.app.state.container.sessions() as session:
        assert secret not in str([r.secret_hash for r in session.scalars(select(ServiceToken))])
    bearer = {"Authorization": f"Bearer {secret}"}
    app_client.cookies.clear()
    assert app_client.get("/api/v1/campaigns", headers=bearer).status_code == 200
    assert app_client.get("/api/v1/tokens", headers=bearer).status_code == 403  # staff role
    assert app_client.delete(f"/api/v1/tokens/{token_id}", headers=BEARER).status_code == 200
    assert app_client.get("/api/v1/campaigns", headers=bearer).status_code == 401
    assert app_client.delete("/api/v1/tokens/nope", headers=BEARER).status_code == 404


def test_a_cross_site_form_post_with_an_accounts_cookie_is_refused(sqlite_client: TestClient):
    make_account(sqlite_client, "staff@net.example", Role.STAFF)
    sign_in_as(sqlite_client, "staff@net.example")
    body = b"name=x&channel=email&subject=Hi&text=Hi"
    r = sqlite_client.post(
        "/api/v1/templates", content=body, headers={"Origin": EVIL, "Content-Type": FORM}
    )
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    r = sqlite_client.post(
        "/api/v1/templates", json={"name": "x"}, headers={"Origin": SITE}
    )  # this site, but no CSRF token
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert sqlite_client.get("/api/v1/audit").json()["entries"][0]["action"] == "sign_in"


def test_every_change_is_audited_by_its_actor_without_contact_pii(app_client: TestClient):
    make_account(app_client, "staff@net.example", Role.STAFF)
    csrf = sign_in_as(app_client, "staff@net.example")
    mine = same_site(csrf)
    contact = [{"external_id": "fam-1", "email": SENTINEL, "name": "Sentinel Family"}]
    assert app_client.post("/api/v1/contacts", json=contact, headers=mine).status_code == 200
    tpl = {"name": "t", "channel": "email", "subject": "Hi", "text": "Hi {{ contact.name }}"}
    template_id = app_client.post("/api/v1/templates", json=tpl, headers=mine).json()["id"]
    body = {"name": "Digest", "channel": "email", "template_id": template_id}
    campaign_id = app_client.post("/api/v1/campaigns", json=body, headers=mine).json()["id"]
    r = app_client.post(f"/api/v1/campaigns/{campaign_id}/schedule", json={}, headers=mine)
    assert r.status_code == 200
    preview = {"template_id": template_id}
    app_client.post("/api/v1/templates/preview", json=preview, headers=mine)  # not a change
    token_id = new_token(app_client, "analyst")["id"]  # by the API token
    refused = app_client.post("/api/v1/campaigns", json=body, headers={"Origin": SITE})
    assert refused.status_code == 403  # refused changes are not audited
    app_client.post("/logout", data={"csrf_token": csrf}, headers={"Origin": SITE})

    rows = [
        (r.actor_kind, r.actor_id, r.action, r.object_kind, r.object_id)
        for r in audit_rows(app_client)
    ]
    staff = ("account", "staff@net.example")
    assert rows == [
        ("cli", rows[0][1], "create", "account", "staff@net.example"),
        (*staff, "sign_in", "session", "staff@net.example"),
        (*staff, "create", "contacts", ""),
        (*staff, "create", "templates", template_id),
        (*staff, "create", "campaigns", campaign_id),
        (*staff, "schedule", "campaigns", campaign_id),
        ("token", auth.TOKEN_ACCOUNT, "create", "tokens", token_id),
        (*staff, "sign_out", "session", "staff@net.example"),
    ]
    everything = " ".join(" ".join(map(str, r)) for r in rows).lower()
    assert SENTINEL not in everything and "sentinel family" not in everything

    # GET /api/v1/audit: filters and pages.
    page = app_client.get(
        "/api/v1/audit", params={"actor": "staff@net.example", "limit": 2}, headers=BEARER
    ).json()
    assert [e["action"] for e in page["entries"]] == ["sign_out", "schedule"]
    older = app_client.get(
        "/api/v1/audit",
        params={"actor": "staff@net.example", "limit": 10, "cursor": page["next_cursor"]},
        headers=BEARER,
    ).json()
    assert [e["action"] for e in older["entries"]] == ["create", "create", "create", "sign_in"]
    assert older["next_cursor"] is None
    kinds = app_client.get(
        "/api/v1/audit", params={"object_kind": "campaigns", "action": "schedule"}, headers=BEARER
    ).json()
    assert [e["object_id"] for e in kinds["entries"]] == [campaign_id]
    future = app_client.get(
        "/api/v1/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=BEARER
    )
    assert future.json()["entries"] == []


def test_the_audit_page_is_linked_and_has_labelled_filters(sqlite_client: TestClient):
    sqlite_client.post("/login", data={"token": TOKEN}, headers={"Origin": SITE})
    assert 'href="/audit"' in sqlite_client.get("/campaigns").text
    page = sqlite_client.get("/audit").text
    for label in ("Who", "Object kind", "Action", "Since", "Until"):
        assert re.search(rf"<label>{label}[^<]*<input", page), label
    assert sqlite_client.get("/ui/audit.js").status_code == 200


def test_dev_mode_makes_a_first_admin_once_and_prints_its_sign_in(sqlite_client: TestClient):
    settings = sqlite_client.app.state.container.settings
    first = dev_admin_sign_in(settings)
    assert first.startswith(f"{DEV_ADMIN} / ") and first == dev_admin_sign_in(settings)
    sign_in_as(sqlite_client, DEV_ADMIN, first.split(" / ")[1])
    assert sqlite_client.get("/api/v1/tokens").status_code == 200  # an admin
    assert dev_admin_sign_in(settings.model_copy(update={"env": "production"})) == ""
    assert [a.email for a in accounts.list_accounts(sqlite_client.app.state.container)] == [
        DEV_ADMIN
    ]
