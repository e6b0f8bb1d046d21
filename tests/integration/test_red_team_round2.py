"""Red team, round 2: attacks on what landed with issues 16, 17 and 18 (accounts and roles,
the console, small cells, people's rights, children and guardians). Each test is one
finding and fails on the code it was found on. In process, on a fresh SQLite database
(``tests.integration.red_team``); no Kafka."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.api import create_app
from services.bootstrap import Container
from services.db.models_experiments import HoldoutAssignment, HoldoutRow
from services.domain.roles import Role
from tests.integration.journeys.helpers import Clock, make_container
from tests.integration.red_team import STAFF, client, container  # noqa: F401 (fixtures)
from tests.integration.test_accounts import (  # noqa: F401 (cheap_argon2: autouse)
    cheap_argon2,
    make_account,
    sign_in_as,
)
from tests.integration.test_privacy import _everything
from tests.integration.test_security_sessions import SITE

SENTINEL_EMAIL = "sentinel.round2@family.example"
SENTINEL_NAME = "Quetzal Roundtwo"
CHILD_BIRTH = "2016-02-29"
CONSENT_TEXT = "I, SENTINEL-GUARDIAN-TEXT, agree for my son"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def analyst_token(client: TestClient) -> dict[str, str]:  # noqa: F811
    r = client.post("/api/v1/tokens", json={"name": "reports", "role": "analyst"}, headers=STAFF)
    assert r.status_code == 201, r.text
    return bearer(r.json()["token"])


def save_family(client: TestClient) -> None:  # noqa: F811
    """A parent (sentinel address and name) and her child under 13, with a guardian's
    consent whose text names the guardian."""
    contacts = [
        {"external_id": "mum", "email": SENTINEL_EMAIL, "name": SENTINEL_NAME,
         "role": "parent", "consent": {"email": "confirmed"}},
        {"external_id": "kid", "email": "kid.round2@family.example", "role": "child",
         "birth_date": CHILD_BIRTH, "guardians": ["mum"], "consent": {"email": "confirmed"}},
    ]  # fmt: skip
    r = client.post("/api/v1/contacts", json=contacts, headers=STAFF)
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    consent = {"guardian": "mum", "method": "signed form", "text": CONSENT_TEXT}
    r = client.post("/api/v1/contacts/kid/guardian-consent", json=consent, headers=STAFF)
    assert r.status_code == 201, r.text


# --- Small cells -----------------------------------------------------------------------


def test_an_analyst_service_token_gets_the_shared_counts_not_the_exact_ones(
    client: TestClient,  # noqa: F811
):
    """Issue 18: the API as seen by the analyst role "and by service tokens of that role"
    withholds small counts. ``auth.role_of`` looks only at a cookie session and calls
    every bearer token an admin: an analyst token reads exact counts, marked "exact; not
    for sharing"."""
    analyst = analyst_token(client)
    r = client.get("/api/v1/metrics/stages?from=2026-01-01&to=2026-03-31", headers=analyst)
    assert r.status_code == 200, r.text
    assert "exact" not in r.headers.get("X-WinWin-Disclosure", "")
    assert r.json()["disclosure"] == {"exact": False, "min_cell": 11}


# --- Roles ------------------------------------------------------------------------------


def test_an_analyst_reads_no_contact_addresses_names_or_a_persons_export(
    client: TestClient,  # noqa: F811
):
    """The analyst is the role whose counts of 1 to 10 people are withheld, yet it may
    list every contact with address and name (a count of one, with the person attached)
    and download any person's full access export (consent history, events, replies)."""
    save_family(client)
    analyst = analyst_token(client)
    listed = client.get("/api/v1/contacts", headers=analyst)
    assert SENTINEL_EMAIL not in listed.text and SENTINEL_NAME not in listed.text
    one = client.get("/api/v1/contacts/mum", headers=analyst)
    assert SENTINEL_EMAIL not in one.text
    assert client.get("/api/v1/contacts/mum/export", headers=analyst).status_code == 403


# --- Sessions ---------------------------------------------------------------------------


def test_rotating_the_api_token_ends_the_sessions_signed_in_with_the_old_one(
    client: TestClient,  # noqa: F811
    container: Container,  # noqa: F811
    tmp_path,
):
    """Rotating ``WINWIN_API_TOKEN`` is what an operator does when it leaked. A console
    session opened with the leaked token is stored as account ``api-token`` and stays an
    admin after the restart with the new token, until it expires (hours)."""
    r = client.post("/login", data={"token": container.settings.api_token.get_secret_value()},
                    headers={"Origin": SITE}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text
    rotated = make_container(
        container.settings.database_url, tmp_path, Clock(), api_token="rotated-" + "x" * 40
    )
    try:
        with TestClient(create_app(rotated), raise_server_exceptions=False) as after:
            after.cookies.update(client.cookies)
            assert after.get("/api/v1/tokens").status_code == 401
    finally:
        rotated.close()


# --- Erasure and access -----------------------------------------------------------------


def test_erasure_forgets_a_childs_birth_date(client: TestClient, container: Container):  # noqa: F811
    """Issue 18: erasure removes what identifies the person. The contact row keeps
    ``birth_date`` (and ``birth_year``) of an erased child: with the role "child" and the
    guardian link, a date of birth identifies a child in a small disease network."""
    save_family(client)
    assert client.delete("/api/v1/contacts/kid", headers=STAFF).status_code == 200
    held = _everything(container)
    assert CHILD_BIRTH not in held and "date(2016, 2, 29)" not in held


def test_erasure_removes_the_guardian_consent_text_and_the_guardian_link(
    client: TestClient,  # noqa: F811
    container: Container,  # noqa: F811
):
    """Erasing the guardian (or the child) leaves ``guardian_consents.text`` (free text
    written by the family, often naming them) and the child-guardian link in SQL."""
    save_family(client)
    assert client.delete("/api/v1/contacts/mum", headers=STAFF).status_code == 200
    assert client.delete("/api/v1/contacts/kid", headers=STAFF).status_code == 200
    assert "SENTINEL-GUARDIAN-TEXT" not in _everything(container)


def test_the_access_export_holds_guardian_consents_and_holdout_assignments(
    client: TestClient,  # noqa: F811
):
    """Issue 18: the access export is "everything WINWIN holds about one person",
    naming holdout assignments. It has no holdout assignments, no guardian links or
    guardian consents and no double opt-in record."""
    save_family(client)
    export = client.get("/api/v1/contacts/kid/export", headers=STAFF)
    assert export.status_code == 200, export.text
    held = export.json()
    assert "holdout_assignments" in held
    assert CONSENT_TEXT in export.text


def test_lift_tables_withhold_small_arms_from_an_analyst(
    client: TestClient,  # noqa: F811
    container: Container,  # noqa: F811
):
    """Issue 18 names "experiment lift tables" among the outputs whose counts of 1 to 10
    people are withheld. ``GET /api/v1/journeys/{id}/lift`` gives an analyst (signed in,
    the role that must not see them) the exact people and converters of each arm."""
    with container.sessions() as session, session.begin():
        session.add(HoldoutRow(kind="journey", subject_id="j-small", share=0.2, window_days=30))
        session.add_all(
            HoldoutAssignment(kind="journey", subject_id="j-small", person=f"p{i:031d}",
                              arm="control" if i < 3 else "treatment", assigned_at=container.now())
            for i in range(40)
        )  # fmt: skip
    make_account(client, "analyst@net.example", Role.ANALYST)
    sign_in_as(client, "analyst@net.example")
    r = client.get("/api/v1/journeys/j-small/lift")
    assert r.status_code == 200, r.text
    assert r.json()["arms"]["control"]["people"] is None  # 3 people: withheld
