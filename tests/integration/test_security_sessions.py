"""Dashboard sign-ins and cross-site requests (issue 13, finding 4).

A sign-in is a server-side session: a new random id at each login (only its hash
stored), revoked at logout, ended when idle or too old. A change made with the session
cookie needs this site's Origin and the session's CSRF token; /api/v1 bodies must be
JSON. Bearer-token requests are unchanged. In process; the session store runs on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services import auth
from services.db.migrate import upgrade
from services.db.models_sessions import StaffSession
from services.sessions import digest
from tests.integration.test_security_access import TOKEN, local_client

BEARER = {"Authorization": f"Bearer {TOKEN}"}
SITE = "http://testserver"
EVIL = "https://evil.example"
FORM = "application/x-www-form-urlencoded"  # a <form> without fields


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


def client_on(tmp_path: Path, clock: Clock, database_url: str = "") -> TestClient:
    """A browser-like client (no bearer token) of an app whose clock the test moves."""
    if database_url:
        upgrade(database_url)
        return local_client(tmp_path, authorized=False, now=clock, database_url=database_url)
    return local_client(tmp_path, authorized=False, now=clock)


@pytest.fixture
def browser(tmp_path: Path, clock: Clock) -> Iterator[TestClient]:
    with client_on(tmp_path, clock) as client:
        yield client


@pytest.fixture
def browser_any_db(tmp_path: Path, clock: Clock, database_url: str) -> Iterator[TestClient]:
    with client_on(tmp_path, clock, database_url) as client:
        yield client


def sign_in(client: TestClient) -> str:
    """Logs in through the form; the cookie stays in the client's jar. The session id."""
    r = client.post(
        "/login", data={"token": TOKEN}, headers={"Origin": SITE}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return client.cookies[auth.SESSION_COOKIE]


def page_csrf(client: TestClient, path: str = "/campaigns") -> str:
    """The CSRF token the signed-in page carries (its forms, read by its scripts)."""
    page = client.get(path)
    assert page.status_code == 200 and "Sign out" in page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    return found.group(1) if found else ""


def same_site(csrf: str) -> dict[str, str]:
    return {"Origin": SITE, auth.CSRF_HEADER: csrf}


def draft_campaign(client: TestClient) -> str:
    tpl = client.post(
        "/api/v1/templates",
        json={
            "name": "digest",
            "channel": "email",
            "subject": "Hi",
            "text": "Hi {{ contact.name }}",
        },
        headers=BEARER,
    )
    assert tpl.status_code == 201, tpl.text
    body = {"name": "Digest", "channel": "email", "template_id": tpl.json()["id"]}
    camp = client.post("/api/v1/campaigns", json=body, headers=BEARER)
    assert camp.status_code == 201, camp.text
    return str(camp.json()["id"])


def status(client: TestClient, campaign_id: str) -> str:
    return str(client.get(f"/api/v1/campaigns/{campaign_id}", headers=BEARER).json()["status"])


def test_cross_site_and_tokenless_changes_with_the_cookie_are_refused(browser: TestClient):
    sign_in(browser)
    cid = draft_campaign(browser)
    schedule, cancel = f"/api/v1/campaigns/{cid}/schedule", f"/api/v1/campaigns/{cid}/cancel"
    # What got through before: a sibling site's auto-submitted form, a text/plain fetch.
    attacks: list[tuple[str, dict[str, Any]]] = [
        (schedule, {"content": b"", "headers": {"Origin": EVIL, "Content-Type": FORM}}),
        (cancel, {"content": b"{}", "headers": {"Origin": EVIL, "Content-Type": "text/plain"}}),
    ]
    csrf = page_csrf(browser)
    attacks += [
        # With the token (had it leaked), from another origin named by Origin or Referer.
        (schedule, {"json": {}, "headers": {"Origin": EVIL, auth.CSRF_HEADER: csrf}}),
        (cancel, {"json": {}, "headers": {"Referer": f"{EVIL}/page", auth.CSRF_HEADER: csrf}}),
        (cancel, {"json": {}, "headers": {"Origin": "null", auth.CSRF_HEADER: csrf}}),
        (cancel, {"json": {}, "headers": {"Origin": "http://testserver.evil.example"}}),
        # From this site but without the session's CSRF token, or with a wrong one.
        (schedule, {"json": {}, "headers": {"Origin": SITE}}),
        (cancel, {"content": b"", "headers": {"Origin": SITE, auth.CSRF_HEADER: csrf[:-1]}}),
        # Neither Origin nor Referer: refused too.
        (cancel, {"json": {}, "headers": {auth.CSRF_HEADER: csrf}}),
    ]
    for path, request in attacks:
        r = browser.post(path, **request)
        assert r.status_code == 403, (path, request, r.status_code, r.text)
        assert re.search(r"cross-site|CSRF", r.json()["detail"]), r.text
        assert status(browser, cid) == "draft", (path, request)
    assert csrf, "the signed-in page carries no CSRF token"
    stage_map = browser.get("/api/v1/stage-map").json()
    assert (
        browser.put("/api/v1/stage-map", json=stage_map, headers={"Origin": EVIL}).status_code
        == 403
    )
    # The same changes from this site with the token go through.
    assert browser.post(schedule, json={}, headers=same_site(csrf)).json()["status"] == "scheduled"
    r = browser.post(cancel, headers={"Referer": f"{SITE}/campaigns/{cid}", auth.CSRF_HEADER: csrf})
    assert r.status_code == 200 and status(browser, cid) == "cancelled"


def test_api_bodies_must_be_json_text_plain_events_are_refused(browser: TestClient):
    event = b'[{"event_id": "tp-1", "type": "page.view", "occurred_at": "2024-01-01T00:00:00Z", "person_ref": "v:a"}]'
    kinds = ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
             "multipart/form-data; boundary=x")  # fmt: skip
    for kind in kinds:
        r = browser.post("/api/v1/events", content=event, headers={**BEARER, "Content-Type": kind})
        assert r.status_code == 415, (kind, r.status_code, r.text)
    sign_in(browser)
    csrf = page_csrf(browser)
    for kind in kinds:
        for headers in (BEARER, same_site(csrf)):
            r = browser.post(
                "/api/v1/events", content=event, headers={**headers, "Content-Type": kind}
            )
            assert r.status_code == 415, (kind, headers, r.status_code, r.text)
            assert "application/json" in r.json()["detail"]
    r = browser.post(
        "/api/v1/events",
        content=event,
        headers={**same_site(csrf), "Content-Type": "application/json"},
    )
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text  # tp-1 was never taken before


def test_bearer_requests_need_no_origin_nor_csrf_token(browser: TestClient):
    cid = draft_campaign(browser)
    r = browser.post(
        f"/api/v1/campaigns/{cid}/schedule", json={}, headers={**BEARER, "Origin": EVIL}
    )
    assert r.status_code == 200 and status(browser, cid) == "scheduled"
    assert browser.post(f"/api/v1/campaigns/{cid}/cancel", headers=BEARER).status_code == 200


def test_logout_revokes_the_session_on_the_server(browser_any_db: TestClient):
    client = browser_any_db
    old = sign_in(client)
    csrf = page_csrf(client)
    r = client.post(
        "/logout", data={"csrf_token": csrf}, headers={"Origin": SITE}, follow_redirects=False
    )
    assert r.status_code == 303 and auth.SESSION_COOKIE not in client.cookies
    # A copy of the old cookie (kept by an attacker, or the browser) no longer works.
    client.cookies.set(auth.SESSION_COOKIE, old)
    assert client.get("/api/v1/campaigns").status_code == 401
    assert 'name="token"' in client.get("/").text  # the login page
    assert client.get("/preview", follow_redirects=False).status_code == 303
    # Logging out is a change too: another site cannot sign the user out.
    client.cookies.clear()
    sign_in(client)
    csrf = page_csrf(client)
    assert (
        client.post("/logout", data={"csrf_token": csrf}, headers={"Origin": EVIL}).status_code
        == 403
    )
    assert client.post("/logout", data={}, headers={"Origin": SITE}).status_code == 403
    assert client.get("/api/v1/campaigns").status_code == 200


def test_each_login_is_a_new_session_stored_only_as_a_hash(browser_any_db: TestClient):
    client = browser_any_db
    first = sign_in(client)
    second = sign_in(client)  # same browser signs in again: rotated
    assert first != second and len(second) >= 40
    client.cookies.clear()
    client.cookies.set(auth.SESSION_COOKIE, first)
    assert client.get("/api/v1/campaigns").status_code == 401  # the replaced one is revoked
    other = TestClient(client.app)  # a second staff member: a session of their own
    third = sign_in(other)
    assert len({first, second, third}) == 3
    with client.app.state.container.sessions() as session:
        rows = session.scalars(select(StaffSession)).all()
    assert {r.id_hash for r in rows} == {digest(first), digest(second), digest(third)}
    account = auth.token_session_account(client.app.state.container.settings)
    assert all(r.account == account and r.role == "admin" for r in rows)  # with its fingerprint
    assert not {first, second, third} & {r.id_hash for r in rows}  # ids are never stored
    assert len({r.csrf_token for r in rows}) == 3  # one CSRF token per session


def test_sessions_end_idle_and_at_their_maximum_age(browser_any_db: TestClient, clock: Clock):
    client, settings = browser_any_db, browser_any_db.app.state.container.settings
    r = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert f"Max-Age={int(settings.session_max_hours * 3600)}" in r.headers["set-cookie"]
    idle = timedelta(minutes=settings.session_idle_minutes)
    clock.at += idle - timedelta(minutes=1)
    assert client.get("/api/v1/campaigns").status_code == 200  # used in time: kept
    clock.at += idle - timedelta(minutes=1)
    assert client.get("/api/v1/campaigns").status_code == 200
    clock.at += idle + timedelta(seconds=1)  # left unused
    assert client.get("/api/v1/campaigns").status_code == 401
    sign_in(client)
    started = clock.at
    while clock.at < started + timedelta(hours=settings.session_max_hours) - idle / 2:
        assert client.get("/api/v1/campaigns").status_code == 200
        clock.at += idle / 2  # always in use...
    clock.at = started + timedelta(hours=settings.session_max_hours)
    assert client.get("/api/v1/campaigns").status_code == 401  # ...but too old


def test_a_login_form_posted_from_another_site_is_refused(browser: TestClient):
    r = browser.post(
        "/login", data={"token": TOKEN}, headers={"Origin": EVIL}, follow_redirects=False
    )
    assert r.status_code == 403 and "set-cookie" not in r.headers


def test_the_live_stream_of_a_session_ends_with_it(
    browser: TestClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
):
    from services.analytics import dashboard

    first_snapshot, calls = dashboard.snapshot, []

    def snapshot_then_expire(*args: Any) -> Any:
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("the stream outlived its session")
        snap = first_snapshot(*args)
        clock.at += timedelta(hours=browser.app.state.container.settings.session_max_hours)
        return snap

    monkeypatch.setattr(dashboard, "snapshot", snapshot_then_expire)
    monkeypatch.setattr(dashboard, "LIVE_INTERVAL", 0.0)
    sign_in(browser)
    body = browser.get("/api/v1/live").text  # ends by itself: the session is over
    assert body.index("event: counters") < body.index("event: signed-out")
