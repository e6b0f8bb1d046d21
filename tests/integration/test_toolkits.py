"""Trusted-messenger toolkits on real Kafka and SQLite/PostgreSQL: three messengers get
pages and ZIPs; a family's click on each messenger's QR link is credited to that
messenger, and the messenger's own page view records ``toolkit.opened`` as the
messenger's engagement, credited to the campaign and never to the messenger."""

from __future__ import annotations

import io
import zipfile
from types import SimpleNamespace

import pytest
import segno
from sqlalchemy import select

from services.campaigns.cli import build_command
from services.db.models import Credit, EngagementEvent
from services.domain.pseudonyms import messenger_ref, pseudonymise
from tests.stack import Stack, wait_for

pytestmark = pytest.mark.kafka
MESSENGERS = {"parent-ana": ("Ana", "parent leader"), "dr-bo": ("Dr. Bo", "clinician"),
              "cy-adv": ("Cy", "patient advocate")}  # fmt: skip
TEXT = """{{ campaign.name }}: {% for r in resources %}{{ r.title }} {{ r.url }} {% endfor %}
--- sms ---
{{ messenger.name }} recommends: {{ resources[0].url }}"""


@pytest.fixture
def stack(kafka_bootstrap, database_url, tmp_path):
    s = Stack(kafka_bootstrap, database_url, tmp_path)
    yield s
    s.close()


def _toolkit_campaign(client) -> str:
    for rid in ("diet", "school"):
        r = client.post(
            "/api/v1/resources",
            json={
                "id": rid,
                "title": rid.title(),
                "kind": "guide",
                "url": f"https://network.example.org/{rid}",
            },
        )
        assert r.status_code == 201, r.text
    for mid, (name, role) in MESSENGERS.items():
        assert (
            client.post(
                "/api/v1/messengers", json={"id": mid, "name": name, "role": role}
            ).status_code
            == 201
        )
    tpl = client.post("/api/v1/templates", json={"name": "kit", "channel": "toolkit", "text": TEXT})
    assert tpl.status_code == 201, tpl.text
    camp = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Diet month",
            "channel": "toolkit",
            "template_id": tpl.json()["id"],
            "resources": ["diet", "school"],
            "messengers": list(MESSENGERS),
        },
    )
    assert camp.status_code == 201, camp.text
    return camp.json()["id"]


def _qr_matches(client, kit_link: dict) -> bool:
    served = client.get(kit_link["qr_svg_url"].removeprefix("http://testserver")).content
    expected = io.BytesIO()
    segno.make_qr(kit_link["url"], error="m").save(
        expected, kind="svg", scale=8, border=4, title=kit_link["url"]
    )
    return served == expected.getvalue()


def test_each_messengers_qr_link_is_credited_to_that_messenger(stack: Stack, tmp_path):
    stack.start_relay()
    stack.start_worker()
    with stack.client() as client:
        cid = _toolkit_campaign(client)
        kits = client.get(f"/api/v1/campaigns/{cid}/toolkits").json()
        assert sorted(k["messenger_id"] for k in kits) == sorted(MESSENGERS)

        assert (
            build_command(
                stack.settings,
                SimpleNamespace(campaign_id=cid, messenger=None, out=str(tmp_path / "z")),
            )
            == 0
        )
        zips = sorted((tmp_path / "z").glob("*.zip"))
        assert len(zips) == 3
        for path in zips:
            with zipfile.ZipFile(path) as z:
                assert {
                    "index.html",
                    "flyer.html",
                    "messages.txt",
                    "qr/diet.svg",
                    "qr/diet.png",
                } <= set(z.namelist())

        for kit in kits:
            client.cookies.clear()  # the messenger opens their page
            page = client.get(kit["url"].removeprefix("http://testserver"))
            assert page.status_code == 200 and MESSENGERS[kit["messenger_id"]][0] in page.text
            link = kit["links"][0]
            assert (
                link["resource_id"] == "diet"
                and link["url"] in page.text
                and _qr_matches(client, link)
            )
            client.cookies.clear()  # a family scans the messenger's QR code
            r = client.get(link["url"].removeprefix("http://testserver"), follow_redirects=False)
            assert (
                r.status_code == 302 and r.headers["location"] == "https://network.example.org/diet"
            )

        def by_messenger() -> dict:
            rows = client.get("/api/v1/attribution", params={"group_by": "messenger"}).json()[
                "rows"
            ]
            return {row["key"]: row for row in rows if row["stage"] == "aware"}

        rows = wait_for(
            lambda: (
                (d := by_messenger())
                and all(d.get(m, {}).get("events") == 1 for m in MESSENGERS)
                and d.get("(none)", {}).get("events") == 3
                and d
            ),
            60,
            what="each messenger credited with the family's click, their own views with none",
        )
        for m in MESSENGERS:  # the family only: the messenger did not reach themselves
            assert rows[m]["credited"] == 1.0 and rows[m]["people"] == 1
        assert rows["(none)"]["people"] == 3  # the three messengers, by their own visits
        secret = stack.settings.secret_key.get_secret_value().encode()
        own = {pseudonymise(secret, messenger_ref(m)) for m in MESSENGERS}
        with stack.sessions() as s:
            opened = s.execute(
                select(EngagementEvent.messenger_id, EngagementEvent.channel).where(
                    EngagementEvent.type == "toolkit.opened"
                )
            ).all()
            viewers = set(
                s.scalars(
                    select(EngagementEvent.person).where(EngagementEvent.type == "toolkit.opened")
                )
            )
            views_credited = s.execute(
                select(Credit.messenger_id, Credit.campaign_id)
                .join(EngagementEvent, EngagementEvent.event_id == Credit.event_id)
                .where(EngagementEvent.type == "toolkit.opened")
            ).all()
            clicks = dict(
                s.execute(
                    select(EngagementEvent.event_id, EngagementEvent.messenger_id).where(
                        EngagementEvent.type == "link.click"
                    )
                ).all()
            )
            credited = s.execute(
                select(Credit.event_id, Credit.messenger_id, Credit.campaign_id).where(
                    Credit.w_last_touch > 0, Credit.event_id.in_(list(clicks))
                )
            ).all()
        assert sorted(opened) == [(None, "toolkit")] * 3 and viewers == own
        assert set(views_credited) == {(None, cid)}
        assert len(credited) == 3 and all(m == clicks[e] and c == cid for e, m, c in credited)
