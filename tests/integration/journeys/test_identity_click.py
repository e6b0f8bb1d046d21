"""A contact clicking their own email link in a browser known as a visitor merges them."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import select

from services.api import create_app
from services.db.migrate import upgrade
from services.db.models import Link, OutboxMessage
from services.db.models_journeys import IdentityMerge
from tests.integration.journeys.helpers import (
    DAY,
    T0,
    Clock,
    add_contacts,
    add_sent,
    make_container,
    person,
    visitor,
)

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def test_email_click_with_a_visitor_cookie_merges_the_visitor(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade(url)
    c = make_container(url, tmp_path, Clock(T0 + DAY))
    add_contacts(c, ["fam-1"])
    (send_id,) = add_sent(c, "news-1", [("fam-1", T0)])
    with c.sessions() as s, s.begin():
        s.add(
            Link(
                id="l1",
                token="l1",
                destination="https://network.example.org/",
                campaign_id="news-1",
                channel="email",
            )
        )
    token = c.tokens.sign("r", "l1", send_id)
    with TestClient(create_app(c), headers={"User-Agent": BROWSER}) as client:
        assert (
            client.get(f"/r/{token}", follow_redirects=False).status_code == 302
        )  # no cookie: nothing
        client.cookies.set("ww_vid", "browser42")
        assert client.get(f"/r/{token}", follow_redirects=False).status_code == 302
        deadline = time.monotonic() + 10
        merges = []
        while not merges and time.monotonic() < deadline:
            with c.sessions() as s:
                merges = s.scalars(select(IdentityMerge)).all()
            time.sleep(0.05)
        assert [(m.visitor_person, m.contact_person, m.source) for m in merges] == [
            (visitor("browser42"), person("fam-1"), "email-click")
        ]
        with c.sessions() as s:  # for the stream to apply (the API writes no read model)
            records = [r for m in s.scalars(select(OutboxMessage)) for r in m.records]
        assert [(r["kind"], r["person"], r["visitor"]) for r in records if "kind" in r] == [
            ("identity.merged", person("fam-1"), visitor("browser42"))
        ]
    c.close()
