"""Consent and replies on real Kafka and SQLite/PostgreSQL: a one-click unsubscribe and
SendGrid's suppression events that land mid-campaign stop every later send; the
preference page changes nothing; replies are mapped to their send and counted
(``reply.received``) while their text stays in SQL."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from services.campaigns.channels.email import OutgoingEmail, SendGridEmailSender, SendResult
from services.campaigns.dispatch import Dispatcher
from services.db.models import (
    ConsentChange,
    Contact,
    EngagementEvent,
    OutboxMessage,
    Send,
    Suppression,
)
from services.db.models_consent import Reply
from services.tracking.inbound import reply_address
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.stack import Stack, wait_for

pytestmark = pytest.mark.kafka
KEY = "SG.consent-test"
REPLY_DOMAIN = "replies.example.org"
SECRET = b"test-secret-key-0123456789abcdef"  # tests/stack.py


class BeforeEachCall:
    def __init__(self, inner: SendGridEmailSender, hook: Any) -> None:
        self.inner, self.hook, self.calls = inner, hook, 0

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        self.calls += 1
        self.hook(self.calls, emails)
        return self.inner.send(emails)


def _campaign(client: Any, name: str) -> str:
    tpl = client.post("/api/v1/templates", json={
        "name": name, "channel": "email", "subject": "Hello {{ contact.first_name }}",
        "text": "Hi {{ contact.name }}\nStop: {{ unsubscribe_url }}\n"})  # fmt: skip
    assert tpl.status_code == 201, tpl.text
    camp = client.post(
        "/api/v1/campaigns",
        json={"name": name, "channel": "email", "template_id": tpl.json()["id"]},
    )
    cid = camp.json()["id"]
    assert client.post(f"/api/v1/campaigns/{cid}/schedule", json={}).status_code == 200
    return cid


def _unsubscribe_path(mail: Any) -> str:
    return re.fullmatch(r"<http://testserver(/u/[^>]+)>", mail.headers["List-Unsubscribe"]).group(1)


def _webhook(kind: str, address: str, mail: Any, **extra: Any) -> dict[str, Any]:
    return {"email": address, "event": kind, "timestamp": 1709294400, "sg_event_id": f"ev-{kind}-{address}",
            "sg_message_id": f"{mail.message_id}.f", **{k: mail.custom_args[k] for k in ("ww_campaign", "ww_person", "ww_send")},
            **extra}  # fmt: skip


def test_unsubscribe_and_suppression_mid_campaign_stop_later_sends_and_replies_are_counted(
    kafka_bootstrap: str, database_url: str, tmp_path: Any
) -> None:
    with FakeSendGrid(KEY) as sendgrid:
        stack = Stack(kafka_bootstrap, database_url, tmp_path, sendgrid_api_key=KEY,
                      sendgrid_api_host=sendgrid.host, reply_domain=REPLY_DOMAIN)  # fmt: skip
        try:
            (tmp_path / "state").mkdir(
                parents=True, exist_ok=True
            )  # the worker's data dir lives there
            stack.start_relay()
            stack.start_worker()
            with stack.client() as client:
                run(stack, client, sendgrid)
        finally:
            stack.close()


def run(stack: Stack, client: Any, sendgrid: FakeSendGrid) -> None:
    contacts = [{"external_id": f"fam-{i}", "email": f"Family{i}@Example.NET", "name": f"Parent {i}",
                 "consent": {"email": "confirmed"}} for i in range(20)]  # fmt: skip
    assert client.post("/api/v1/contacts", json=contacts).status_code == 200
    container = client.app.state.container
    sender = SendGridEmailSender(KEY, "outreach@example.org", sendgrid.host)
    first = _campaign(client, "first")
    assert Dispatcher(container, sender).dispatch_due(datetime.now(UTC)) == 20
    by_address = {m.to.lower(): m for m in sendgrid.delivered}

    second = _campaign(client, "second")
    stopped: dict[str, str] = {}
    soft: list[str] = []

    def mid_campaign(call: int, emails: Sequence[OutgoingEmail]) -> None:
        if call != 1:
            return  # the first batch is loaded; everything below lands before the next ones
        later = sorted(set(by_address) - {e.to_email.lower() for e in emails})
        x, z, w, v, u = later[:5]
        # The preference page shows the state and changes nothing (link scanners GET it).
        page = client.get(_unsubscribe_path(by_address[x]))
        assert page.status_code == 200 and '<form method="post"' in page.text
        assert stack.count(ConsentChange) == 20 and stack.count(Suppression) == 0  # 20: import
        stopped.update({x: "suppressed: unsubscribe", z: "suppressed: bounce",
                        w: "suppressed: spamreport", v: "suppressed: group_unsubscribe"})  # fmt: skip
        soft.append(u)
        r = client.post(_unsubscribe_path(by_address[x]), data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 200
        assert client.post(_unsubscribe_path(by_address[x])).status_code == 200  # idempotent
        events = [
            _webhook("bounce", z.upper(), by_address[z], type="bounce"),
            _webhook("spamreport", w.replace("family", "FAMILY"), by_address[w]),
            _webhook("group_unsubscribe", v.title(), by_address[v]),
            _webhook("bounce", u, by_address[u], type="blocked"),
        ]
        assert (
            client.post("/webhooks/sendgrid/events", content=json.dumps(events)).status_code == 200
        )

    before = len(sendgrid.delivered)
    hooked = BeforeEachCall(sender, mid_campaign)
    assert Dispatcher(container, hooked, batch_size=5).dispatch_due(datetime.now(UTC)) == 16
    got = Counter(m.to.lower() for m in sendgrid.delivered[before:])
    assert not set(got) & set(stopped) and set(got.values()) == {1} and len(got) == 16
    assert soft[0] in got  # a blocked (soft) bounce suppresses nothing
    progress = client.get(f"/api/v1/campaigns/{second}").json()["progress"]
    assert progress == {"total": 20, "sent": 16, "suppressed": 4, "failed": 0}
    with stack.sessions() as s:
        errors = dict(s.execute(select(Contact.email_normalized, Send.error)
                                .join(Contact, Contact.id == Send.contact_id)
                                .where(Send.campaign_id == second, Send.status == "suppressed")).all())  # fmt: skip
        assert errors == stopped
        history = Counter(
            s.scalars(select(ConsentChange.source).where(ConsentChange.status == "unsubscribed"))
        )
        assert history == {
            "one-click": 1,
            "sendgrid:spamreport": 1,
            "sendgrid:group_unsubscribe": 1,
        }
        z = next(a for a, why in stopped.items() if why == "suppressed: bounce")
        bounced = s.scalar(select(Contact.email_consent).where(Contact.email_normalized == z))
        assert (
            bounced == "confirmed"
        )  # a bounce is not the person's choice; the address is suppressed
    x = next(a for a, why in stopped.items() if why == "suppressed: unsubscribe")
    assert "You are unsubscribed" in client.get(_unsubscribe_path(by_address[x])).text
    assert stack.count(ConsentChange) == 23  # GETs and the second POST added nothing

    replies(stack, client, sendgrid, second, first)


def replies(stack: Stack, client: Any, sendgrid: FakeSendGrid, second: str, first: str) -> None:
    with stack.sessions() as s:
        sends = {e: (i, p) for e, i, p in s.execute(
            select(Contact.email_normalized, Send.id, Send.person).join(Contact, Contact.id == Send.contact_id)
            .where(Send.campaign_id == second))}  # fmt: skip
    send_id, person = sends["family3@example.net"]
    text = "Thank you, the diet guide helped our daughter a lot"
    by_address = {
        "to": f"Outreach <{reply_address(SECRET, send_id, REPLY_DOMAIN).upper()}>",  # case folded on the way
        "from": "Parent 3 <family3@example.net>", "subject": "Re: Hello Parent", "text": text,
        "html": f"<p>{text}</p>", "headers": "Message-ID: <r1@mail.example.net>\nSubject: Re: Hello\n",
        "envelope": json.dumps({"to": ["x@" + REPLY_DOMAIN], "from": "family3@example.net"}),
    }  # fmt: skip
    r = client.post(
        "/webhooks/sendgrid/inbound", data=by_address, files={"attachment1": ("a.txt", b"x")}
    )
    assert r.status_code == 200 and r.json() == {"matched": True, "duplicate": False}
    again = client.post("/webhooks/sendgrid/inbound", data=by_address)
    assert again.json() == {"matched": True, "duplicate": True}  # Inbound Parse retried
    mail = next(
        m
        for m in sendgrid.delivered
        if m.to.lower() == "family4@example.net" and m.custom_args["ww_campaign"] == first
    )
    by_headers = {"to": "outreach@example.org", "from": "family4@example.net", "subject": "Re: hi", "text": "Can we talk?",
                  "headers": f"Message-ID: <r2@x>\nIn-Reply-To: <{mail.message_id}.filter0001.3.0@geopod.sendgrid.net>\n"}  # fmt: skip
    assert client.post("/webhooks/sendgrid/inbound", data=by_headers).json()["matched"] is True
    forged = by_address | {"to": f"reply+{send_id.encode().hex()}.000000000000@{REPLY_DOMAIN}",
                           "headers": "Message-ID: <r3@x>\n", "from": "stranger@example.com"}  # fmt: skip
    assert client.post("/webhooks/sendgrid/inbound", data=forged).json()["matched"] is False

    def reply_events() -> list[EngagementEvent]:
        with stack.sessions() as s:
            return list(
                s.scalars(select(EngagementEvent).where(EngagementEvent.type == "reply.received"))
            )

    events = wait_for(lambda: len(got := reply_events()) == 2 and got, 60, what="2 replies in SQL")
    assert {(e.person, e.campaign_id, e.stage) for e in events} >= {(person, second, "use")}
    assert {e.campaign_id for e in events} == {second, first}
    with stack.sessions() as s:
        stored = s.scalars(select(Reply).order_by(Reply.id)).all()
        assert [(r.matched_by, r.send_id) for r in stored][:1] == [("address", send_id)]
        assert [r.matched_by for r in stored] == ["address", "headers", None] and stored[
            0
        ].text == text
        outbox = json.dumps([m.records for m in s.scalars(select(OutboxMessage))])
    assert text not in outbox and "Can we talk" not in outbox and "family3@" not in outbox
    wait_for(lambda: stack.count(EngagementEvent, EngagementEvent.type == "email.unsubscribed") >= 2, 60,
             what="the unsubscribes in SQL")  # fmt: skip
