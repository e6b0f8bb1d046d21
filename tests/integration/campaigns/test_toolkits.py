"""Toolkits on SQLite without Kafka: building, the page, QR codes, events, ZIPs, build_due."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import segno
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.analytics.sink import AttributionSink
from services.api import create_app
from services.bootstrap import bootstrap
from services.campaigns.cli import build_command
from services.campaigns.toolkits import build_due, ensure_toolkits, split_messages
from services.config import Settings
from services.db.migrate import upgrade
from services.db.models import Campaign, Link, OutboxMessage
from services.db.models_toolkits import Toolkit
from services.domain.pseudonyms import messenger_ref, pseudonymise
from services.errors import UsageError

TOKEN = "unit-test-api-token-0123456789"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
TEXT = """Please share: {{ campaign.name }}
--- sms ---
Hi! {{ messenger.name }} here. Diet tips: {{ resources[0].url }}
--- whatsapp ---
*{{ campaign.name }}* {% for r in resources %}{{ r.title }}: {{ r.url }} {% endfor %}
--- email ---
Dear friend,
{% for r in resources %}{{ r.title }}: {{ r.url }}
{% endfor %}More: {{ track("https://network.example.org/about") }}
{{ messenger.name }}"""


def settings_for(tmp_path: Path, **extra: Any) -> Settings:
    url = f"sqlite:///{tmp_path / 'toolkits.db'}"
    upgrade(url)
    return Settings(
        env="dev",
        database_url=url,
        secret_key="unit-secret-0123456789abcdef",
        api_token=TOKEN,
        public_base_url="http://testserver",
        state_dir=tmp_path / "state",
        **extra,
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(bootstrap(settings_for(tmp_path)))
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": BROWSER}) as c:
        yield c


def make_campaign(client: TestClient, messengers: list[str] | None = None, **template: Any) -> str:
    for rid, title in (("diet", "Diet tips"), ("school", "School plan")):
        r = client.post(
            "/api/v1/resources",
            json={
                "id": rid,
                "title": title,
                "kind": "guide",
                "url": f"https://network.example.org/{rid}",
            },
        )
        assert r.status_code == 201, r.text
    for mid, name in (("m1", "Ana Leader"), ("m2", "Dr. Bo <Clinic>"), ("m3", "Cy Advocate")):
        assert (
            client.post(
                "/api/v1/messengers", json={"id": mid, "name": name, "role": "parent"}
            ).status_code
            == 201
        )
    body = {"name": "Diet toolkit", "channel": "toolkit", "text": TEXT} | template
    tpl = client.post("/api/v1/templates", json=body)
    assert tpl.status_code == 201, tpl.text
    camp = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Diet month & more",
            "channel": "toolkit",
            "template_id": tpl.json()["id"],
            "resources": ["diet", "school"],
            "messengers": messengers or ["m1", "m2", "m3"],
        },
    )
    assert camp.status_code == 201, camp.text
    return str(camp.json()["id"])


def messenger_pseudonym(client: TestClient, messenger_id: str) -> str:
    secret = client.app.state.container.settings.secret_key  # type: ignore[attr-defined]
    return pseudonymise(secret.get_secret_value().encode(), messenger_ref(messenger_id))


def outbox_records(client: TestClient) -> list[dict[str, Any]]:
    c = client.app.state.container  # type: ignore[attr-defined]
    c.gatherer.stop()  # flush what the page views queued
    c.gatherer.start()
    with c.sessions() as s:
        return [r for rows in s.scalars(select(OutboxMessage.records)) for r in rows]


def test_split_messages_uses_the_common_text_for_kinds_without_a_section() -> None:
    assert split_messages("Hello\n--- SMS ---\nshort\n") == {
        "sms": "short",
        "whatsapp": "Hello",
        "email": "Hello",
        "social": "Hello",
    }
    assert split_messages("--- email ---\nonly mail") == {"email": "only mail"}
    assert split_messages("") == {}


def test_toolkits_are_built_once_with_each_messengers_own_links(client: TestClient) -> None:
    cid = make_campaign(client)
    first = client.get(f"/api/v1/campaigns/{cid}/toolkits")
    assert first.status_code == 200, first.text
    kits = first.json()
    assert [k["messenger_id"] for k in kits] == ["m1", "m2", "m3"]
    assert client.get(f"/api/v1/campaigns/{cid}/toolkits").json() == kits  # idempotent
    urls = [link["url"] for k in kits for link in k["links"]]
    assert len(set(urls)) == 6 and all(u.startswith("http://testserver/r/") for u in urls)
    assert kits[0]["url"] == f"http://testserver/t/{kits[0]['token']}"
    assert kits[0]["links"][0]["qr_svg_url"] == f"{kits[0]['url']}/qr/diet.svg"
    c = client.app.state.container  # type: ignore[attr-defined]
    with c.sessions() as s:
        links = s.scalars(select(Link).where(Link.campaign_id == cid)).all()
    assert {(x.channel, x.messenger_id) for x in links} == {
        ("toolkit", m) for m in ("m1", "m2", "m3")
    }
    assert len(links) == 9  # two resources and one track() URL per messenger
    assert client.get("/api/v1/campaigns/nope/toolkits").status_code == 404
    assert (
        client.get(
            f"/api/v1/campaigns/{cid}/toolkits", headers={"Authorization": "Bearer x"}
        ).status_code
        == 401
    )


def test_page_shows_messages_qr_codes_and_records_the_visit(client: TestClient) -> None:
    cid = make_campaign(client)
    kit = client.get(f"/api/v1/campaigns/{cid}/toolkits").json()[1]
    page = client.get(f"/t/{kit['token']}")
    assert page.status_code == 200
    html = page.text
    assert "Dr. Bo &lt;Clinic&gt;" in html and "<Clinic>" not in html
    assert kit["links"][0]["url"] in html and "Open in WhatsApp" in html and "Copy" in html
    assert "/flyer" in html and page.headers["referrer-policy"] == "no-referrer"
    assert "nonce-" in page.headers["content-security-policy"]
    svg = client.get(f"/t/{kit['token']}/qr/diet.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    expected = io.BytesIO()
    segno.make_qr(kit["links"][0]["url"], error="m").save(
        expected, kind="svg", scale=8, border=4, title=kit["links"][0]["url"]
    )
    assert svg.content == expected.getvalue()
    png = client.get(f"/t/{kit['token']}/qr/diet.png")
    assert png.content.startswith(b"\x89PNG")
    assert client.get(f"/t/{kit['token']}/qr/unknown.svg").status_code == 404
    flyer = client.get(f"/t/{kit['token']}/flyer")
    assert "@media print" in flyer.text and "@page" in flyer.text and "qr/school.svg" in flyer.text
    assert (
        client.post(f"/t/{kit['token']}/shared", content=b'{"via": "whatsapp"}').status_code == 204
    )
    assert client.get(f"/t/{kit['token']}x").status_code == 404
    records = outbox_records(client)
    kinds = {r["type"]: r for r in records}
    opened, shared = kinds["toolkit.opened"], kinds["toolkit.shared"]
    # The messenger's own visit: the messenger is the person, the campaign reached them,
    # and no messenger reached them (they did not reach themselves).
    assert (
        opened["campaign_id"] == cid
        and opened["messenger_id"] is None
        and opened["channel"] == "toolkit"
    )
    assert opened["person"] == messenger_pseudonym(client, "m2") and opened["bot"] is False
    assert shared["person"] == opened["person"] and shared["properties"] == {"via": "whatsapp"}


def test_a_messengers_own_shares_are_one_person_credited_to_the_campaign(
    client: TestClient,
) -> None:
    """Fifty share posts from fifty browsers are the messenger's: one person who produced,
    credited to the campaign; the messenger's leaderboard gains no one."""
    cid = make_campaign(client)
    kit = client.get(f"/api/v1/campaigns/{cid}/toolkits").json()[0]
    for _ in range(50):
        client.cookies.clear()
        assert client.get(f"/t/{kit['token']}").status_code == 200
        assert (
            client.post(f"/t/{kit['token']}/shared", content=b'{"via": "sms"}').status_code == 204
        )
    records = outbox_records(client)
    assert {(r["person"], r["messenger_id"], r["campaign_id"]) for r in records} == {
        (messenger_pseudonym(client, "m1"), None, cid)
    }
    c = client.app.state.container  # type: ignore[attr-defined]
    AttributionSink(c.sessions).write(records, [])  # what the stream worker does with them
    days = sorted({r["occurred_at"][:10] for r in records})
    span = {"period": "day", "from": days[0], "to": days[-1]}
    stages = client.get("/api/v1/metrics/stages", params=span).json()["rows"]
    assert {(r["aware"], r["use"], r["produce"]) for r in stages} == {(1, 1, 1)}
    by_messenger = client.get("/api/v1/attribution", params={"group_by": "messenger"}).json()
    assert {r["key"] for r in by_messenger["rows"]} == {"(none)"}
    by_campaign = client.get("/api/v1/attribution").json()["rows"]
    assert {(r["key"], r["stage"], r["people"], r["events"]) for r in by_campaign} == {
        (cid, "aware", 1, 50), (cid, "produce", 1, 50)}  # fmt: skip


def test_a_bot_view_is_flagged_and_a_cancelled_campaigns_page_is_gone(client: TestClient) -> None:
    cid = make_campaign(client)
    kit = client.get(f"/api/v1/campaigns/{cid}/toolkits").json()[0]
    assert (
        client.get(f"/t/{kit['token']}", headers={"User-Agent": "WhatsApp/2.23"}).status_code == 200
    )
    assert [r["bot"] for r in outbox_records(client) if r["type"] == "toolkit.opened"] == [True]
    assert client.post(f"/api/v1/campaigns/{cid}/cancel").status_code == 200
    assert client.get(f"/t/{kit['token']}").status_code == 404


def test_build_due_builds_scheduled_toolkit_campaigns_and_marks_them_sent(
    client: TestClient,
) -> None:
    cid = make_campaign(client, messengers=["m1", "m3", "ghost"])
    later = datetime.now(UTC) + timedelta(hours=1)
    assert (
        client.post(
            f"/api/v1/campaigns/{cid}/schedule", json={"send_at": later.isoformat()}
        ).status_code
        == 200
    )
    c = client.app.state.container  # type: ignore[attr-defined]
    assert build_due(c, datetime.now(UTC)) == 0
    assert build_due(c, later + timedelta(seconds=1)) == 2
    with c.sessions() as s:
        assert s.get_one(Campaign, cid).status == "sent"
        assert s.scalar(select(Toolkit.messages).where(Toolkit.messenger_id == "m3"))[
            "sms"
        ].startswith("Hi! Cy")
    assert build_due(c, later + timedelta(minutes=1)) == 0


def test_cli_writes_one_zip_per_messenger(
    client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cid = make_campaign(client, html="<p>Hello from <b>{{ messenger.name }}</b></p>")
    settings = client.app.state.container.settings  # type: ignore[attr-defined]
    out = tmp_path / "zips"
    assert (
        build_command(settings, SimpleNamespace(campaign_id=cid, messenger=None, out=str(out))) == 0
    )
    zips = sorted(out.glob("*.zip"))
    assert len(zips) == 3 and "[3/3]" in capsys.readouterr().err
    with zipfile.ZipFile(zips[0]) as z:
        assert sorted(z.namelist()) == [
            "flyer.html",
            "index.html",
            "messages.txt",
            "qr/diet.png",
            "qr/diet.svg",
            "qr/school.png",
            "qr/school.svg",
        ]
        assert "<p>Hello from Ana Leader</p>" in z.read("flyer.html").decode()
        assert 'src="qr/diet.svg"' in z.read("index.html").decode()
        assert "Hi! Ana Leader here." in z.read("messages.txt").decode()
    one = tmp_path / "one"
    assert (
        build_command(settings, SimpleNamespace(campaign_id=cid, messenger="m2", out=str(one))) == 0
    )
    assert [p.name for p in one.glob("*.zip")] == [f"toolkit-{cid}-m2.zip"]
    with pytest.raises(UsageError, match="not a messenger"):
        build_command(settings, SimpleNamespace(campaign_id=cid, messenger="zz", out=str(one)))
    with pytest.raises(UsageError, match="unknown campaign"):
        build_command(settings, SimpleNamespace(campaign_id="nope", messenger=None, out=str(one)))


def test_zip_flyer_is_escaped_and_carries_its_own_csp(client: TestClient, tmp_path: Path) -> None:
    """Opened from disk no header protects the flyer: the template's HTML arrives as
    escaped text, and a meta policy allows no script but the print button's."""
    hostile = (
        "<p>Dear <i>friend</i></p><script>alert('zip')</script>"
        '<img src="https://evil.example/x.gif" onerror="alert(1)">'
        '<a href="javascript:alert(2)">&lt;click&gt;</a><form action="https://evil.example">'
    )
    cid = make_campaign(client, html=hostile)
    settings = client.app.state.container.settings  # type: ignore[attr-defined]
    out = tmp_path / "zips"
    build_command(settings, SimpleNamespace(campaign_id=cid, messenger="m2", out=str(out)))
    with zipfile.ZipFile(next(out.glob("*.zip"))) as z:
        flyer = z.read("flyer.html").decode()
    head = flyer[: flyer.index("</head>")]
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', head)
    assert csp and head.index(csp[0]) < head.index("<style>")  # before anything it governs
    policy = unescape(csp[1])
    assert policy.startswith("default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'")
    script = re.search(r"<script>(.*?)</script>", flyer, re.S)
    digest = base64.b64encode(hashlib.sha256(script[1].encode()).digest()).decode()  # type: ignore[index]
    assert f"script-src 'sha256-{digest}'" in policy  # the print button, nothing else
    assert "<p>Dear friend</p>" in flyer and "<p>&lt;click&gt;</p>" in flyer
    for bad in ("alert", "evil.example", "javascript:", "onerror", "<form", "<Clinic>"):
        assert bad not in flyer, bad
    assert "Dr. Bo &lt;Clinic&gt;" in flyer
    assert 'src="data:image/svg+xml;base64,' in flyer and 'src="qr/' not in flyer
    kits = client.get(f"/api/v1/campaigns/{cid}/toolkits").json()
    served = client.get(f"/t/{next(k for k in kits if k['messenger_id'] == 'm2')['token']}/flyer")
    assert "<i>friend</i>" in served.text  # the page served under the route's CSP keeps its HTML


def test_ensure_refuses_other_channels(client: TestClient) -> None:
    from services.campaigns.toolkits import ToolkitError

    tpl = client.post(
        "/api/v1/templates", json={"name": "e", "channel": "email", "subject": "s", "text": "t"}
    ).json()
    cid = client.post(
        "/api/v1/campaigns", json={"name": "e", "channel": "email", "template_id": tpl["id"]}
    ).json()["id"]
    with pytest.raises(ToolkitError, match="not a toolkit campaign"):
        ensure_toolkits(client.app.state.container, cid)  # type: ignore[attr-defined]
    assert client.get(f"/api/v1/campaigns/{cid}/toolkits").status_code == 409
