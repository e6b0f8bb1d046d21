"""Issue 18, part 2, on SQLite and PostgreSQL (no Kafka): children under 13 and their
guardians, re-consent at 13 and 18, the preference centre, double opt-in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from services.api import create_app
from services.campaigns.dispatch import Dispatcher, make_sender
from services.db.models import ConsentChange, Contact, LocalEmail
from services.db.models_guardians import EmailConfirmation
from tests.integration import test_dispatch
from tests.integration.test_dispatch import NOW, TOKEN, make_container, sends_by_contact
from tests.stack import email_campaign

db_url = test_dispatch.db_url
TEMPLATE = {"subject": "News", "text": "Hello\nStop: {{ unsubscribe_url }}\n"}
OURS = "https://winwin.example.org"


@pytest.fixture
def w(db_url: str, tmp_path: Any) -> Iterator[SimpleNamespace]:
    c = make_container(db_url, tmp_path)  # no SendGrid key: the local outbox
    try:
        with TestClient(create_app(c), headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            yield SimpleNamespace(c=c, api=api)
    finally:
        c.close()


def contacts(w: SimpleNamespace, *items: dict[str, Any]) -> dict[str, Any]:
    r = w.api.post("/api/v1/contacts", json=list(items))
    assert r.status_code == 200, r.text
    return dict(r.json())


def person(ext: str, consent: str = "confirmed", **extra: Any) -> dict[str, Any]:
    return {
        "external_id": ext,
        "email": f"{ext}@example.net",
        "consent": {"email": consent},
    } | extra


def send(w: SimpleNamespace, runs: int = 1, **campaign: Any) -> tuple[str, dict[str, Any]]:
    """A campaign scheduled and dispatched; its id and who got it (address → send)."""
    cid = email_campaign(w.api, TEMPLATE, **campaign)
    assert w.api.post(f"/api/v1/campaigns/{cid}/schedule", json={}).status_code == 200
    for _ in range(runs):
        Dispatcher(w.c, make_sender(w.c)).dispatch_due(NOW)
    return cid, sends_by_contact(w.c, cid)


def got(sends: dict[str, Any]) -> set[str]:
    return {a.split("@")[0] for a, s in sends.items() if s.status == "sent"}


def progress(w: SimpleNamespace, cid: str) -> dict[str, int]:
    return dict(w.api.get(f"/api/v1/campaigns/{cid}").json()["progress"])


def test_a_child_under_13_is_skipped_or_reached_through_guardians_until_they_consent(
    w: SimpleNamespace,
) -> None:
    saved = contacts(
        w,
        person("mum", role="parent"),
        person("kid", role="child", birth_date="2015-06-01", guardians=["mum", "nobody"]),
        person("adult", role="parent", birth_year=1980),
    )
    assert saved["unknown_guardians"] == 1
    skip, sends = send(w)
    assert got(sends) == {"mum", "adult"}
    assert sends["kid@example.net"].error == "child under 13: no guardian consent"
    assert progress(w, skip)["skipped_under_13"] == 1

    kids_only = {"audience": {"attr": "role", "eq": "child"}, "children": "guardians"}
    to_guardians, sends = send(w, runs=2, **kids_only)
    assert got(sends) == {"mum"}
    assert progress(w, to_guardians)["sent_to_guardians"] == 1

    consent = {"guardian": "adult", "method": "signed form", "text": "I agree to ..."}
    refused = w.api.post("/api/v1/contacts/kid/guardian-consent", json=consent)
    assert refused.status_code == 422  # not one of kid's guardians
    given = w.api.post("/api/v1/contacts/kid/guardian-consent", json=consent | {"guardian": "mum"})
    assert given.status_code == 201, given.text
    _, sends = send(w, audience={"attr": "role", "eq": "child"})
    assert got(sends) == {"kid"}


def test_turning_13_or_18_after_consenting_stops_messages_until_consent_is_given_again(
    w: SimpleNamespace,
) -> None:
    contacts(
        w,
        person("teen", birth_date="2011-02-15"),  # 13 on 2024-02-15, before NOW
        person("young", birth_date="2006-02-20"),  # 18 on 2024-02-20
        person("grown", birth_date="2000-01-01"),
    )
    with w.c.sessions() as s, s.begin():  # all three consented on 1 January 2024
        s.execute(update(Contact).values(email_consent_at=NOW.replace(month=1, day=1)))
    _, sends = send(w)
    assert got(sends) == {"grown"}
    assert sends["teen@example.net"].error == "needs re-consent: turned 13"
    assert sends["young@example.net"].error == "needs re-consent: turned 18"
    listed = {r["external_id"]: r for r in w.api.get("/api/v1/contacts").json()}
    assert [listed[x]["needs_reconsent"] for x in ("teen", "young", "grown")] == [1, 1, 0]

    contacts(w, person("teen"))  # their own consent, recorded now
    _, sends = send(w)
    assert got(sends) == {"teen", "grown"}


def test_the_preference_centre_sets_topics_and_frequency_and_campaigns_honour_them(
    w: SimpleNamespace,
) -> None:
    for rid, topic in (("r-diet", "diet"), ("r-school", "school")):
        r = w.api.post("/api/v1/resources", json={"id": rid, "title": rid, "kind": "guide",
                                                  "url": f"https://ex.org/{rid}", "topics": [topic]})  # fmt: skip
        assert r.status_code == 201
    contacts(w, person("ana", language="es"), person("ben"))
    _, sends = send(w)
    token = w.c.tokens.sign("u", sends["ana@example.net"].id)
    page = w.api.get(f"/u/{token}").text
    assert "Preferencias de correo" in page and 'value="diet"' in page
    assert 'name="token"' in page and "birth" not in page  # no child data asked

    form = {"token": token, "topics": ["school"], "frequency": "as_sent"}
    url = f"/u/{token}/preferences"
    assert w.api.post(url, data=form | {"token": "other"}).status_code == 403
    evil = w.api.post(url, data=form, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    ok = w.api.post(url, data=form, headers={"Origin": OURS})
    assert ok.status_code == 200 and "Sus opciones están guardadas" in ok.text
    _, diet = send(w, resources=["r-diet"])
    _, both = send(w, resources=["r-diet", "r-school"])
    assert (got(diet), got(both)) == ({"ben"}, {"ana", "ben"})
    assert diet["ana@example.net"].error == "preferences: topics turned off"

    w.api.post(url, data=form | {"frequency": "monthly_digest"})
    _, news = send(w)
    _, digest = send(w, digest=True)
    assert (got(news), got(digest)) == ({"ben"}, {"ana", "ben"})
    w.api.post(url, data=form | {"frequency": "none"})
    with w.c.sessions() as s:
        assert s.scalar(select(Contact.email_consent).where(Contact.external_id == "ana")) == (
            "unsubscribed"
        )


def test_double_opt_in_sends_a_signed_link_and_nothing_else_until_it_is_confirmed(
    w: SimpleNamespace,
) -> None:
    contacts(
        w, person("new", consent="unconfirmed"), person("old"), person("quiet", "unsubscribed")
    )
    with w.c.sessions() as s:
        mails = s.execute(select(LocalEmail.to, LocalEmail.text)).all()
    assert [m.to for m in mails] == ["new@example.net"]
    link = re.search(r"https://winwin\.example\.org(/c/\S+)", mails[0].text)
    assert link is not None and "new" not in link.group(1)
    _, sends = send(w)
    assert got(sends) == {"old"}

    assert w.api.get(link.group(1)).status_code == 200  # a scanner's GET changes nothing
    with w.c.sessions() as s:
        assert s.scalar(select(Contact.email_consent).where(Contact.external_id == "new")) == (
            "unconfirmed"
        )
    assert w.api.post(link.group(1)).status_code == 200
    with w.c.sessions() as s:
        row = s.scalars(select(EmailConfirmation)).one()
        assert (row.method, row.confirmed_at is not None) == ("link", True)
        sources = s.scalars(select(ConsentChange.source).order_by(ConsentChange.id)).all()
        assert sources[-1] == "double-opt-in:link"
    Dispatcher(w.c, make_sender(w.c)).dispatch_due(NOW)  # sends no second confirmation
    with w.c.sessions() as s:
        assert (
            len(s.scalars(select(LocalEmail.to).where(LocalEmail.campaign_id.is_(None))).all()) == 1
        )
    _, sends = send(w)
    assert got(sends) == {"new", "old"}
