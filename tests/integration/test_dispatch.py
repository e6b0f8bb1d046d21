"""The dispatcher end to end: SQL (SQLite and PostgreSQL) → rendering → SendGrid (fake
HTTP server, real library) or the local outbox."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update

import schemas
from services.bootstrap import Container, bootstrap
from services.bus import topics
from services.campaigns.channels.email import (
    EmailSender,
    LocalOutboxSender,
    OutgoingEmail,
    SendGridEmailSender,
    SendResult,
)
from services.campaigns.dispatch import Dispatcher, make_sender, progress
from services.campaigns.outbox_store import SqlOutboxStore, list_outbox
from services.config import Settings
from services.db.migrate import upgrade
from services.db.models import (
    Campaign,
    Contact,
    Link,
    OutboxMessage,
    Resource,
    Send,
    Suppression,
    Template,
)
from services.domain.pseudonyms import pseudonymise
from tests.fakes.sendgrid_server import FakeSendGrid

KEY = "SG.dispatch-test"
BASE = "https://winwin.example.org"
SECRET = "dispatch-test-secret-0123456789"
TOKEN = "dispatch-test-token-0123456789"
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
TRACKED = "https://network.example.org/tips?topic=diet"
SUBJECT = "News for {{ contact.first_name }}"
HTML = (
    "<html><body><p>Hello {{ contact.name }},</p>"
    '{% for r in resources %}<p><a href="{{ r.url }}">{{ r.title }}</a></p>{% endfor %}'
    '<p><a href="{{ track("' + TRACKED + '") }}">Tips</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · '
    '<a href="{{ preferences_url }}">Preferences</a></p></body></html>'
)
TEXT = (
    "Hello {{ contact.name }},\n"
    "{% for r in resources %}{{ r.title }}: {{ r.url }}\n{% endfor %}"
    'Tips: {{ track("' + TRACKED + '") }}\n'
    "Unsubscribe: {{ unsubscribe_url }}\n"
)
URL_RE = re.compile(r"https?://[^\s\"'<>]+")


# --- fixtures and helpers ----------------------------------------------------------


@pytest.fixture
def db_url(database_url: str) -> str:
    """A fresh database per test (SQLite and PostgreSQL, tests/conftest.py), migrated."""
    upgrade(database_url)
    return database_url


def make_container(
    url: str, tmp_path: Any, *, sendgrid_host: str | None = None, **overrides: Any
) -> Container:
    """A dev-mode container at ``NOW``; ``overrides`` replace any other setting."""
    settings = Settings(
        **{
            "env": "dev",
            "database_url": url,
            "secret_key": SECRET,
            "api_token": TOKEN,
            "public_base_url": BASE,
            "sendgrid_api_key": KEY if sendgrid_host else "",
            "sendgrid_api_host": sendgrid_host or "https://api.sendgrid.com",
            "state_dir": tmp_path / "state",
        }
        | overrides
    )
    return bootstrap(settings, now=lambda: NOW)


@pytest.fixture
def world(db_url: str, tmp_path: Any) -> Iterator[dict[str, Any]]:
    """A fake SendGrid and a container pointed at it."""
    with FakeSendGrid(api_key=KEY) as fake:
        container = make_container(db_url, tmp_path, sendgrid_host=fake.host)
        try:
            yield {"fake": fake, "c": container, "url": db_url}
        finally:
            container.close()


def add_contacts(c: Container, rows: Sequence[dict[str, Any]]) -> None:
    full = []
    for row in rows:
        email = row.get("email")
        full.append(
            {
                "external_id": row["external_id"],
                "pseudonym": pseudonymise(SECRET.encode(), row["external_id"]),
                "email": email,
                "email_normalized": email.strip().lower() if email else None,
                "name": row.get("name"),
                "role": row.get("role", "parent"),
                "language": row.get("language", "en"),
                "attributes": row.get("attributes", {}),
                "tags": row.get("tags", []),
                "needs": [],
                "email_consent": row.get("consent", "confirmed"),
            }
        )
    with c.sessions() as s, s.begin():
        s.execute(insert(Contact), full)


def plain(n: int, prefix: str = "c", **extra: Any) -> list[dict[str, Any]]:
    return [
        {"external_id": f"{prefix}{i}", "email": f"{prefix}{i}@example.net"}
        | {"name": f"Person {prefix}{i}"}
        | extra
        for i in range(n)
    ]


def add_campaign(
    c: Container,
    *,
    audience: dict[str, Any] | None = None,
    html: str | None = HTML,
    text_: str = TEXT,
    subject: str = SUBJECT,
    campaign_id: str = "cmp-1",
) -> str:
    with c.sessions() as s, s.begin():
        if s.get(Resource, "res-diet") is None:
            s.add(
                Resource(id="res-diet", title="Diet tips", url="https://ex.org/diet", kind="guide")
            )
            s.add(
                Resource(
                    id="res-school", title="School plan", url="https://ex.org/school", kind="tool"
                )
            )
        s.add(
            Template(
                id=f"tpl-{campaign_id}",
                name="n",
                channel="email",
                subject=subject,
                html=html,
                text=text_,
            )
        )
        s.flush()
        s.add(
            Campaign(
                id=campaign_id,
                name="Spring newsletter",
                channel="email",
                template_id=f"tpl-{campaign_id}",
                audience=audience,
                resources=["res-diet", "res-school"],
                send_at=NOW - timedelta(minutes=1),
                status="scheduled",
            )
        )
    return campaign_id


class Recording:
    """An EmailSender that remembers what it was given and can act between batches."""

    def __init__(self, inner: EmailSender, before_call: Any = None) -> None:
        self.inner = inner
        self.calls: list[list[OutgoingEmail]] = []
        self.before_call = before_call

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        self.calls.append(list(emails))
        if self.before_call:
            self.before_call(len(self.calls), emails)
        return self.inner.send(emails)

    @property
    def by_send(self) -> dict[str, OutgoingEmail]:
        return {e.send_id: e for call in self.calls for e in call}


def touches(c: Container) -> list[dict[str, Any]]:
    with c.sessions() as s:
        rows = s.scalars(select(OutboxMessage.records).where(OutboxMessage.topic == topics.TOUCHES))
        return [r for records in rows for r in records]


def sends_by_contact(c: Container, campaign_id: str) -> dict[str, Send]:
    with c.sessions() as s:
        rows = s.execute(
            select(Contact.email, Send)
            .join(Contact, Contact.id == Send.contact_id)
            .where(Send.campaign_id == campaign_id)
        ).all()
        return {email: send for email, send in rows}


def status_of(c: Container, campaign_id: str) -> str:
    with c.sessions() as s:
        return s.get_one(Campaign, campaign_id).status


def sendgrid_sender(fake: FakeSendGrid) -> SendGridEmailSender:
    return SendGridEmailSender(KEY, "outreach@example.org", fake.host)


# --- the tests -----------------------------------------------------------------------


def test_campaign_reaches_each_confirmed_contact_once(world: dict[str, Any]) -> None:
    c, fake = world["c"], world["fake"]
    deliverable = plain(2500)
    add_contacts(c, deliverable)
    add_contacts(
        c,
        [
            *plain(3, prefix="unconf", consent="unconfirmed"),
            *plain(1, prefix="unsub", consent="unsubscribed"),
            *plain(1, prefix="supp"),
            *plain(2, prefix="clin", role="clinician"),
            {"external_id": "noaddr", "email": None, "name": "No Address"},
        ],
    )
    with c.sessions() as s, s.begin():
        s.add(Suppression(email_normalized="supp0@example.net", reason="bounce"))
    campaign_id = add_campaign(c, audience={"attr": "role", "in": ["parent"]})
    sender = make_sender(c)
    assert isinstance(sender, SendGridEmailSender)
    recording = Recording(sender)

    sent = Dispatcher(c, recording).dispatch_due(NOW)

    assert sent == 2500
    assert fake.request_count == 3  # one request per batch of 1000: skeletons + substitutions
    delivered = fake.delivered
    assert Counter(d.to for d in delivered) == Counter(r["email"] for r in deliverable)
    sends = sends_by_contact(c, campaign_id)
    by_send = recording.by_send
    with c.sessions() as s:
        links = {link.id: link for link in s.scalars(select(Link))}
    assert sorted((lk.resource_id or "", lk.destination) for lk in links.values()) == [
        ("", TRACKED),
        ("res-diet", "https://ex.org/diet"),
        ("res-school", "https://ex.org/school"),
    ]
    assert all(lk.campaign_id == campaign_id and lk.channel == "email" for lk in links.values())
    for d in delivered:
        send = sends[d.to]
        assert d.custom_args == {
            "ww_campaign": campaign_id,
            "ww_person": pseudonymise(SECRET.encode(), d.to.split("@")[0]),
            "ww_send": send.id,
            "ww_batch": d.custom_args["ww_batch"],  # the in-flight batch (crash safety)
        }
        assert send.person == d.custom_args["ww_person"]
        # What the recipient sees is exactly what was rendered for them.
        assert (d.html, d.text, d.subject) == (
            by_send[send.id].html,
            by_send[send.id].text,
            by_send[send.id].subject,
        )
        check_personal_urls(c, d.html, d.text, d.headers, send.id, d.to, links)
        assert f"Hello Person {d.to.split('@')[0]}," in d.text
    with c.sessions() as s:
        assert progress(s, campaign_id) == {
            "total": 2501,
            "sent": 2500,
            "suppressed": 1,
            "failed": 0,
        }
    assert status_of(c, campaign_id) == "sent"
    check_touches(c, campaign_id, sends)

    # A second run sends nothing more and enqueues nothing more.
    assert Dispatcher(c, sender).dispatch_due(NOW + timedelta(hours=1)) == 0
    assert fake.request_count == 3
    assert len(touches(c)) == 2500


def check_personal_urls(
    c: Container,
    html: str,
    text_: str,
    headers: dict[str, str],
    send_id: str,
    address: str,
    links: dict[str, Link],
) -> None:
    urls = URL_RE.findall(html) + URL_RE.findall(text_) + [headers["List-Unsubscribe"][1:-1]]
    assert not [u for u in urls if "@" in u or "%40" in u or address in u]
    tracked = [u for u in urls if u.startswith(f"{BASE}/r/")]
    assert len(tracked) == 6  # 2 resources + 1 track() in each part
    for url in tracked:
        claims = c.tokens.verify(url.rsplit("/", 1)[1], "r")
        assert claims is not None and claims.send_id == send_id and claims.ref in links
    pixel = re.search(
        rf'<img src="{BASE}/o/([^"]+)\.gif" width="1" height="1" alt=""></body>', html
    )
    assert pixel and c.tokens.verify(pixel.group(1), "o").ref == send_id  # type: ignore[union-attr]
    unsubscribe = re.fullmatch(rf"<{BASE}/u/([^>]+)>", headers["List-Unsubscribe"])
    assert unsubscribe and c.tokens.verify(unsubscribe.group(1), "u").ref == send_id  # type: ignore[union-attr]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f'href="{BASE}/u/{unsubscribe.group(1)}">Unsubscribe' in html


def check_touches(c: Container, campaign_id: str, sends: dict[str, Send]) -> None:
    records = touches(c)
    sent = {s.id: s for s in sends.values() if s.status == "sent"}
    assert sorted(r["touch_id"] for r in records) == sorted(f"send:{i}" for i in sent)
    for record in records:
        assert schemas.errors_of("touch.v1", record) is None
        send = sent[record["touch_id"].removeprefix("send:")]
        assert record["person"] == send.person
        assert (record["campaign_id"], record["channel"], record["kind"]) == (
            campaign_id,
            "email",
            "email.sent",
        )
        assert record["occurred_at"] == "2024-03-01T12:00:00Z"


def test_contact_suppressed_between_batches_is_not_sent(world: dict[str, Any]) -> None:
    c, fake = world["c"], world["fake"]
    add_contacts(c, plain(10))
    campaign_id = add_campaign(c)
    changed: list[str] = []

    def between(call: int, emails: Sequence[OutgoingEmail]) -> None:
        if call != 1:
            return
        batch = {e.to_email for e in emails}
        later = sorted(f"c{i}@example.net" for i in range(10) if f"c{i}@example.net" not in batch)
        with c.sessions() as s, s.begin():  # an unsubscribe and a bounce arrive meanwhile
            s.add(Suppression(email_normalized=later[0], reason="bounce"))
            s.execute(
                update(Contact)
                .where(Contact.email == later[1])
                .values(email_consent="unsubscribed")
            )
        changed.extend(later[:2])

    recording = Recording(sendgrid_sender(fake), before_call=between)
    assert Dispatcher(c, recording, batch_size=3).dispatch_due(NOW) == 8

    assert len(recording.calls) >= 3 and all(len(call) <= 3 for call in recording.calls)
    delivered = Counter(d.to for d in fake.delivered)
    assert sum(delivered.values()) == 8 and set(delivered.values()) == {1}
    assert not set(changed) & set(delivered)
    with c.sessions() as s:
        assert progress(s, campaign_id) == {"total": 10, "sent": 8, "suppressed": 2, "failed": 0}
    assert status_of(c, campaign_id) == "sent"
    sends = sends_by_contact(c, campaign_id)
    assert {sends[a].error for a in changed} == {"suppressed: bounce", "consent: unsubscribed"}


def test_rate_limits_slow_down_and_still_deliver_each_once(world: dict[str, Any]) -> None:
    c, fake = world["c"], world["fake"]
    # Three groups render differently, so each batch needs three requests: a 429 in the
    # middle of a batch leaves part of it accepted and part to retry.
    add_contacts(c, [r | {"attributes": {"g": f"group {i % 3}"}} for i, r in enumerate(plain(30))])
    campaign_id = add_campaign(c, html=HTML.replace("</body>", "{{ contact.attributes.g }}</body>"))
    fake.rate_limit(2, 0.4)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    recording = Recording(sendgrid_sender(fake))
    assert Dispatcher(c, recording, batch_size=15, sleep=sleep).dispatch_due(NOW) == 30

    assert waits and all(0 < w <= 1.5 for w in waits)
    # Retries carry only what SendGrid had not accepted yet.
    assert any(0 < len(call) < 15 for call in recording.calls)
    assert fake.request_count > len(fake.accepted_bodies)  # some requests were refused
    delivered = Counter(d.to for d in fake.delivered)
    assert len(delivered) == 30 and set(delivered.values()) == {1}
    with c.sessions() as s:
        assert progress(s, campaign_id) == {"total": 30, "sent": 30, "suppressed": 0, "failed": 0}
    assert len(touches(c)) == 30


def test_sendgrid_outage_leaves_sends_pending_for_the_next_run(world: dict[str, Any]) -> None:
    c, fake = world["c"], world["fake"]
    add_contacts(c, plain(5))
    campaign_id = add_campaign(c)
    fake.fail_next(3, 503)
    waits: list[float] = []
    dispatcher = Dispatcher(
        c, sendgrid_sender(fake), sleep=waits.append, transient_retries=2, backoff_seconds=0.5
    )

    assert dispatcher.dispatch_due(NOW) == 0
    assert waits == [0.5, 1.0]
    assert status_of(c, campaign_id) == "sending"
    with c.sessions() as s:
        assert progress(s, campaign_id) == {"total": 5, "sent": 0, "suppressed": 0, "failed": 0}

    assert dispatcher.dispatch_due(NOW) == 5
    assert status_of(c, campaign_id) == "sent"
    assert len(fake.delivered) == 5 and len(touches(c)) == 5


def test_local_outbox_keeps_exactly_the_rendered_messages(db_url: str, tmp_path: Any) -> None:
    c = make_container(db_url, tmp_path, reply_domain="replies.example.org")
    try:
        add_contacts(
            c,
            [
                *plain(4),
                {
                    "external_id": "x",
                    "email": "x@example.net",
                    "name": "<script>alert(1)</script> Eve",
                },
            ],
        )
        add_contacts(c, plain(2, prefix="unconf", consent="unconfirmed"))
        campaign_id = add_campaign(c)
        add_campaign(c, campaign_id="cmp-2", audience={"attr": "external_id", "eq": "c0"})
        assert isinstance(make_sender(c), LocalOutboxSender)
        recording = Recording(LocalOutboxSender(SqlOutboxStore(c.sessions)))

        assert Dispatcher(c, recording).dispatch_due(NOW) == 6

        with c.sessions() as s:
            outbox = list_outbox(s, campaign_id=campaign_id)
            assert len(list_outbox(s)) == 6 and len(list_outbox(s, limit=2)) == 2
            assert [m["to"] for m in list_outbox(s, campaign_id="cmp-2")] == ["c0@example.net"]
            assert progress(s, campaign_id)["sent"] == 5
        emails = recording.by_send
        assert len(outbox) == 5
        for message in outbox:
            email = emails[message["send_id"]]
            assert message == {
                "send_id": email.send_id,
                "to": email.to_email,
                "subject": email.subject,
                "html": email.html,
                "text": email.text,
                "headers": dict(email.headers),
                "custom_args": dict(email.custom_args),
                "reply_to": email.reply_to,
                "asm": None,  # the campaign names no unsubscribe group
                "created_at": message["created_at"],
            }
            assert message["created_at"].endswith("Z")
            # What SendGrid would have got: the ids that map its events back, the reply address.
            assert {"ww_campaign", "ww_person", "ww_send"} <= set(message["custom_args"])
            assert message["custom_args"]["ww_send"] == message["send_id"]
            assert message["reply_to"].startswith("reply+")
            assert message["reply_to"].endswith("@replies.example.org")
        assert _outbox_over_http(c, campaign_id) == outbox
        with c.sessions() as s, s.begin():  # with a group, the outbox shows the asm SendGrid gets
            s.get(Campaign, campaign_id).unsubscribe_group = 42
        assert {m["asm"]["group_id"] for m in _outbox_over_http(c, campaign_id)} == {42}
        eve = next(m for m in outbox if m["to"] == "x@example.net")
        assert (
            "<script>" not in eve["html"]
            and "&lt;script&gt;alert(1)&lt;/script&gt; Eve" in eve["html"]
        )
        assert eve["subject"] == "News for <script>alert(1)</script>"  # subjects are plain text
        assert len(touches(c)) == 6
        assert status_of(c, campaign_id) == status_of(c, "cmp-2") == "sent"
        # Stored again (a crash before the sends were marked): nothing is added twice.
        SqlOutboxStore(c.sessions).add(list(emails.values()))
        with c.sessions() as s:
            assert len(list_outbox(s, limit=1000)) == 6
    finally:
        c.close()


def _outbox_over_http(c: Container, campaign_id: str) -> list[dict[str, Any]]:
    """``GET /api/v1/outbox?campaign_id=`` on the API of ``c``."""
    from fastapi.testclient import TestClient

    from services.api import create_app

    token = c.settings.api_token.get_secret_value()
    with TestClient(create_app(c), headers={"Authorization": f"Bearer {token}"}) as client:
        response = client.get("/api/v1/outbox", params={"campaign_id": campaign_id})
    assert response.status_code == 200, response.text
    return list(response.json())


def test_a_template_that_fails_for_a_recipient_marks_that_send_failed(
    world: dict[str, Any],
) -> None:
    c, fake = world["c"], world["fake"]
    add_contacts(
        c,
        [
            *plain(2),
            {"external_id": "z", "email": "z@example.net", "name": "Zed", "attributes": {"n": 0}},
        ],
    )
    campaign_id = add_campaign(
        c, text_="{{ 10 // contact.attributes.n if contact.attributes.n is defined else 1 }}"
    )
    assert Dispatcher(c, sendgrid_sender(fake)).dispatch_due(NOW) == 2
    with c.sessions() as s:
        assert progress(s, campaign_id) == {"total": 3, "sent": 2, "suppressed": 0, "failed": 1}
    assert "ZeroDivisionError" in (sends_by_contact(c, campaign_id)["z@example.net"].error or "")
    assert status_of(c, campaign_id) == "sent"


def test_a_template_too_slow_for_some_recipients_fails_their_sends_only(
    db_url: str, tmp_path: Any
) -> None:
    """Fast on the sample context (so it passes the save check), slow for a recipient with
    many children: that send fails with the reason, the others and another campaign go."""
    slow = (
        "{% if contact.attributes.kids is defined and contact.attributes.kids > 2 %}"
        "{% for i in range(100000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}"
        "{% endif %}Hello {{ contact.name }}"
    )
    with FakeSendGrid(api_key=KEY) as fake:
        c = make_container(db_url, tmp_path, sendgrid_host=fake.host, render_timeout_seconds=1)
        try:
            c.renderer.check(SUBJECT, HTML, slow)  # what saving the template checks
            big = {"external_id": "big", "email": "big@example.net", "attributes": {"kids": 3}}
            add_contacts(c, [*plain(2), big])
            slow_id = add_campaign(c, text_=slow, campaign_id="cmp-slow")
            other_id = add_campaign(c, campaign_id="cmp-other")
            assert Dispatcher(c, sendgrid_sender(fake)).dispatch_due(NOW) == 5
            with c.sessions() as s:
                assert progress(s, slow_id) == {"total": 3, "sent": 2, "suppressed": 0, "failed": 1}
                assert progress(s, other_id) == {
                    "total": 3,
                    "sent": 3,
                    "suppressed": 0,
                    "failed": 0,
                }
            error = sends_by_contact(c, slow_id)["big@example.net"].error
            assert (
                error == "rendering took longer than the 1 s limit (WINWIN_RENDER_TIMEOUT_SECONDS)"
            )
            assert status_of(c, slow_id) == status_of(c, other_id) == "sent"
            assert len(fake.delivered) == 5
        finally:
            c.close()


def test_track_refuses_non_http_urls(world: dict[str, Any]) -> None:
    c, fake = world["c"], world["fake"]
    add_contacts(c, plain(1))
    campaign_id = add_campaign(c, text_='{{ track("javascript:alert(1)") }}')
    assert Dispatcher(c, sendgrid_sender(fake)).dispatch_due(NOW) == 0
    send = sends_by_contact(c, campaign_id)["c0@example.net"]
    assert send.status == "failed" and "http(s)" in (send.error or "")
    assert fake.request_count == 0


def test_sql_statements_do_not_grow_with_recipients(world: dict[str, Any]) -> None:
    c, fake = world["c"], world["fake"]
    add_contacts(c, [*plain(5, prefix="s", tags=["small"]), *plain(295)])
    dispatcher = Dispatcher(c, sendgrid_sender(fake))
    counts = []
    for campaign_id, audience, n in (("cmp-s", {"tag": "small"}, 5), ("cmp-all", None, 300)):
        add_campaign(c, campaign_id=campaign_id, audience=audience)
        statements: list[str] = []

        def count(*args: Any, statements: list[str] = statements) -> None:
            statements.append(args[2])

        event.listen(c.engine, "before_cursor_execute", count)
        try:
            assert dispatcher.dispatch_due(NOW) == n
        finally:
            event.remove(c.engine, "before_cursor_execute", count)
        counts.append(len(statements))
    # Claim, materialise, links, one batch, results, finish: the same for 5 or 300.
    assert counts[0] == counts[1], counts


def test_not_yet_due_and_cancelled_campaigns_are_left_alone(world: dict[str, Any]) -> None:
    c, fake = world["c"], world["fake"]
    add_contacts(c, plain(2))
    add_campaign(c)
    dispatcher = Dispatcher(c, sendgrid_sender(fake))
    assert dispatcher.dispatch_due(NOW - timedelta(hours=1)) == 0
    assert status_of(c, "cmp-1") == "scheduled"
    with c.sessions() as s, s.begin():
        s.execute(update(Campaign).values(status="cancelled"))
    assert dispatcher.dispatch_due(NOW) == 0
    assert fake.request_count == 0


def test_templates_get_each_recipients_recommended_resources_behind_tracked_links(db_url, tmp_path):
    """`recommended` in the template context: resources matching the contact's needs,
    not yet used, each behind the recipient's own tracked link, with the reason."""
    c = make_container(db_url, tmp_path)
    try:
        add_contacts(c, plain(2))
        with c.sessions() as s, s.begin():
            s.execute(update(Contact).where(Contact.external_id == "c0").values(needs=["school"]))
        text_ = (
            "{% for r in recommended %}REC {{ r.title }} {{ r.url }} ({{ r.reason }})\n{% endfor %}"
        )
        add_campaign(c, html=None, text_=text_)
        with c.sessions() as s, s.begin():
            s.execute(update(Resource).where(Resource.id == "res-school").values(topics=["school"]))
        Dispatcher(c, make_sender(c)).dispatch_due(NOW)
        with c.sessions() as s:
            mails = {m["to"]: m for m in list_outbox(s, limit=10)}
    finally:
        c.close()
    recommended = re.findall(r"REC School plan (\S+) \((.*)\)", mails["c0@example.net"]["text"])
    assert len(recommended) == 1 and recommended[0][0].startswith(f"{BASE}/r/")
    assert "school" in recommended[0][1]
    claims = c.tokens.verify(recommended[0][0].rsplit("/", 1)[1], "r")
    assert claims is not None and claims.send_id is not None
    assert "REC" not in mails["c1@example.net"]["text"]  # no stated need, nothing used: nothing


def test_a_throttled_campaign_sends_at_most_its_hourly_share(db_url: str, tmp_path: Any):
    """Issue 16: a campaign's throttle (``throttle_per_hour``) caps its emails in any
    hour; the rest go in the next hours, each person once, and the campaign ends sent."""
    clock = {"at": NOW}
    with FakeSendGrid(api_key=KEY) as fake:
        settings = make_container(db_url, tmp_path, sendgrid_host=fake.host)
        c = bootstrap(settings.settings, now=lambda: clock["at"])
        settings.close()
        try:
            add_contacts(c, plain(25))
            cid = add_campaign(c)
            with c.sessions() as s, s.begin():
                s.execute(update(Campaign).where(Campaign.id == cid).values(throttle_per_hour=10))
            dispatcher = Dispatcher(c, make_sender(c), batch_size=4)
            assert dispatcher.dispatch_due(clock["at"]) == 10  # three batches, the last cut to 2
            clock["at"] += timedelta(minutes=59)
            assert dispatcher.dispatch_due(clock["at"]) == 0  # the hour is not over
            clock["at"] += timedelta(minutes=2)
            assert dispatcher.dispatch_due(clock["at"]) == 10
            clock["at"] += timedelta(hours=1, minutes=1)
            assert dispatcher.dispatch_due(clock["at"]) == 5
            with c.sessions() as s:
                status = s.get(Campaign, cid).status
            assert status == "sent" and progress_of(c, cid)["sent"] == 25
            assert sorted(m.to for m in fake.delivered) == sorted({m.to for m in fake.delivered})
            assert len(fake.delivered) == 25  # each person once
        finally:
            c.close()


def progress_of(c: Container, campaign_id: str) -> dict[str, int]:
    with c.sessions() as s:
        return progress(s, campaign_id)
