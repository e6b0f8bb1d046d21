"""Unsubscribe groups (SendGrid ASM groups; issue 14, item 5) on SQLite and PostgreSQL.

Campaigns name a group through the API and the Mail Send carries it as ``asm.group_id``
(the real ``sendgrid`` library, the fake SendGrid over HTTP). A signed
``group_unsubscribe`` naming its ``asm_group_id`` stops that group's campaigns for that
person only; ``group_resubscribe`` restores them, and a retried older event arriving
later does not undo it; a ``group_unsubscribe`` without a group still withdraws all
email, as before. The events are shaped like SendGrid's documented samples.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.api import create_app
from services.campaigns.dispatch import Dispatcher, make_sender
from services.db.models import ConsentChange, Contact, Suppression
from tests.fakes.sendgrid_server import FakeSendGrid, WebhookSigner
from tests.integration import test_dispatch
from tests.integration.test_dispatch import (
    KEY,
    NOW,
    TOKEN,
    add_contacts,
    make_container,
    plain,
    sends_by_contact,
)
from tests.stack import email_campaign

TEMPLATE = {"subject": "News", "text": "Hello {{ contact.name }}\nStop: {{ unsubscribe_url }}\n"}
AT = int(NOW.timestamp())  # event times, seconds (SendGrid's ``timestamp``)
NEWS, EVENTS = 101, 202
db_url = test_dispatch.db_url  # the fixture: a fresh migrated database, SQLite and PostgreSQL


@pytest.fixture
def world(db_url: str, tmp_path: Any) -> Iterator[SimpleNamespace]:
    signer = WebhookSigner()
    with FakeSendGrid(api_key=KEY) as fake:
        c = make_container(
            db_url,
            tmp_path,
            sendgrid_host=fake.host,
            sendgrid_webhook_public_key=signer.public_key_b64,
        )
        try:
            with TestClient(create_app(c), headers={"Authorization": f"Bearer {TOKEN}"}) as api:
                yield SimpleNamespace(c=c, fake=fake, api=api, signer=signer)
        finally:
            c.close()


def campaign(w: SimpleNamespace, name: str, group: int | None) -> str:
    """An email campaign (of ``group``) created and scheduled through the API."""
    extra = {} if group is None else {"unsubscribe_group": group}
    cid = email_campaign(w.api, TEMPLATE, name=name, **extra)
    scheduled = w.api.post(f"/api/v1/campaigns/{cid}/schedule", json={})
    assert scheduled.status_code == 200 and scheduled.json()["unsubscribe_group"] == group
    return cid


def dispatch(w: SimpleNamespace, *campaigns: str) -> dict[str, set[str]]:
    """Send what is due; who got each of ``campaigns``."""
    Dispatcher(w.c, make_sender(w.c)).dispatch_due(NOW)
    return {
        cid: {a for a, s in sends_by_contact(w.c, cid).items() if s.status == "sent"}
        for cid in campaigns
    }


def post_events(w: SimpleNamespace, *events: dict[str, Any]) -> None:
    body = json.dumps(list(events)).encode()
    r = w.api.post("/webhooks/sendgrid/events", content=body, headers=w.signer.sign(body))
    assert r.status_code == 200, r.text


def event(w: SimpleNamespace, kind: str, address: str, at: int, **extra: Any) -> dict[str, Any]:
    """A SendGrid event about the first email ``address`` got (its custom_args too)."""
    mail = next(d for d in w.fake.delivered if d.to == address)
    args = {k: mail.custom_args[k] for k in ("ww_campaign", "ww_person", "ww_send")}
    return {"email": address.upper(), "event": kind, "timestamp": at,
            "sg_event_id": f"{kind}-{address}-{at}", "sg_message_id": f"{mail.message_id}.f0",
            "useragent": "Mozilla/5.0", "ip": "192.0.2.1"} | args | extra  # fmt: skip


def test_a_group_unsubscribe_stops_that_groups_campaigns_only_and_resubscribe_restores(
    world: SimpleNamespace,
) -> None:
    w = world
    add_contacts(w.c, plain(3))
    ann, bob, cy = (f"c{i}@example.net" for i in range(3))
    first = campaign(w, "news 1", NEWS)
    assert dispatch(w, first) == {first: {ann, bob, cy}}
    assert [b["asm"] for b in w.fake.accepted_bodies] == [{"group_id": NEWS}]
    assert {d.asm_group_id for d in w.fake.delivered} == {NEWS}

    # Ann leaves the newsletter group; Cy's group unsubscribe names no group.
    post_events(
        w,
        event(w, "group_unsubscribe", ann, AT + 60, asm_group_id=NEWS),
        event(w, "group_unsubscribe", cy, AT + 60),
    )
    news, events_, plain_ = (campaign(w, n, g) for n, g in (("news 2", NEWS),
                                                           ("events", EVENTS), ("plain", None)))  # fmt: skip
    got = dispatch(w, news, events_, plain_)
    assert got == {news: {bob}, events_: {ann, bob}, plain_: {ann, bob}}
    assert sends_by_contact(w.c, news)[ann].error == f"unsubscribed from group {NEWS}"
    with w.c.sessions() as s:
        consent = dict(s.execute(select(Contact.email, Contact.email_consent)).all())
        assert consent == {ann: "confirmed", bob: "confirmed", cy: "unsubscribed"}
        assert s.scalars(select(Suppression.email_normalized)).all() == [cy]

    # Ann rejoins; a retried copy of an older unsubscribe arrives after it and changes nothing.
    post_events(w, event(w, "group_resubscribe", ann, AT + 120, asm_group_id=NEWS))
    post_events(w, event(w, "group_unsubscribe", ann, AT + 90, asm_group_id=NEWS))
    third = campaign(w, "news 3", NEWS)
    assert dispatch(w, third) == {third: {ann, bob}}
    with w.c.sessions() as s:
        history = s.execute(
            select(ConsentChange.channel, ConsentChange.status, ConsentChange.source)
            .join(Contact, Contact.id == ConsentChange.contact_id)
            .where(Contact.email == ann, ConsentChange.channel != "email")
            .order_by(ConsentChange.id)
        ).all()
    assert [tuple(h) for h in history] == [
        (f"group:{NEWS}", "unsubscribed", "sendgrid:group_unsubscribe"),
        (f"group:{NEWS}", "confirmed", "sendgrid:group_resubscribe"),
    ]


def test_unsubscribe_group_is_an_integer_group_id_of_an_email_campaign(
    world: SimpleNamespace,
) -> None:
    tpl = w_template(world)
    for channel, group in [("email", "101"), ("email", 0), ("email", 2**31), ("email", True),
                           ("email", 1.5), ("social", 7), ("toolkit", 7)]:  # fmt: skip
        body = {"name": "c", "channel": channel, "template_id": tpl, "unsubscribe_group": group}
        r = world.api.post("/api/v1/campaigns", json=body)
        assert r.status_code == 422 and "unsubscribe_group" in r.text, (channel, group, r.text)
    body = {"name": "c", "channel": "email", "template_id": tpl}
    assert world.api.post("/api/v1/campaigns", json=body).json()["unsubscribe_group"] is None
    made = world.api.post("/api/v1/campaigns", json=body | {"unsubscribe_group": 2**31 - 1})
    assert made.status_code == 201 and made.json()["unsubscribe_group"] == 2**31 - 1


def w_template(w: SimpleNamespace) -> str:
    tpl = w.api.post("/api/v1/templates", json={"name": "t", "channel": "email"} | TEMPLATE)
    return str(tpl.json()["id"])
