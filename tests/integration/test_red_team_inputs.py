"""Red-team findings M3, M4, M5: odd or unstorable input answers 4xx or is skipped, never 500.

Copied from branch ``attack`` (tests/integration/test_red_team.py): SendGrid Event Webhook
events of the wrong shape or that PostgreSQL cannot store, bodies nested too deep, Inbound
Parse oddities, public toolkit shares with odd bodies, a malformed webhook public key, and
NUL characters in staff objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.api import create_app
from services.bootstrap import bootstrap
from services.config import Settings
from services.db.migrate import upgrade
from services.db.models_consent import Reply
from services.db.session import make_engine
from tests.integration import red_team
from tests.integration.campaigns.test_toolkits import BROWSER, make_campaign, settings_for
from tests.integration.campaigns.test_toolkits import TOKEN as TOOLKIT_TOKEN
from tests.integration.journeys.helpers import Clock, make_container
from tests.integration.journeys.helpers import person as contact_person
from tests.integration.tracking.test_sendgrid_webhooks import EVENTS, GO_SIGNER, INBOUND, post

STAFF = red_team.STAFF
container, client = red_team.container, red_team.client  # the shared fixtures

# --- HIGH: one person's history makes the credits grow quadratically ------------------------


def test_red_team_webhook_events_of_odd_shape_are_ignored_not_500(client, container):
    """RED TEAM (medium). ``item.get("event") not in TYPES`` raises TypeError for a list or
    an object: 500, so SendGrid retries the whole batch for 24 h and the good events in it
    are never kept. Reached unsigned in dev mode, signed in production."""
    good = {"event": "open", "timestamp": 1_700_000_000, "sg_event_id": "red-1"}
    good |= {"ww_person": contact_person("fam-1"), "email": "fam-1@example.net"}
    r = post(client, [{"event": ["open"]}, {"event": {"a": 1}}, good])
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "duplicates": 0, "ignored": 2}


def test_red_team_webhook_body_nested_too_deep_is_400_not_500(client):
    """RED TEAM (low). ``json.loads`` raises RecursionError (not a ValueError) on a body
    5,000 arrays deep: 500 (the events API answers 422 for the same body)."""
    body = b"[" * 5000 + b"]" * 5000
    r = client.post(EVENTS, content=body, headers=GO_SIGNER.sign(body))
    assert r.status_code == 400, r.status_code


def _multipart(fields: dict[str, bytes]) -> tuple[bytes, dict[str, str]]:
    out = b""
    for name, value in fields.items():
        out += b'--RT\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n'
        out += value + b"\r\n"
    return out + b"--RT--\r\n", {"content-type": "multipart/form-data; boundary=RT"}


@pytest.mark.parametrize(
    "fields",
    [
        {"envelope": b"[" * 5000 + b"]" * 5000, "text": b"hi"},
        {"email": b"From: a@b.example\r\nContent-Type: text/plain; charset=x-no-such\r\n\r\nhi"},
    ],
    ids=["envelope-nested-5000-deep", "raw-mime-unknown-charset"],
)
def test_red_team_inbound_parse_odd_posts_are_not_500(client, fields):
    """RED TEAM (medium). Inbound Parse: ``json.loads(envelope)`` only catches ValueError
    (RecursionError escapes), and a raw MIME message (``email`` field, "POST the raw,
    full MIME message") with an unknown charset raises LookupError in ``get_content``.
    Real mail carries odd charsets (``unknown-8bit``, ``x-user-defined``): 500, SendGrid
    retries for 3 days, then the reply is lost. Keep the reply (or 400), never 500."""
    body, headers = _multipart(fields)
    r = client.post(INBOUND, content=body, headers=headers)
    assert r.status_code < 500, r.status_code


@pytest.fixture
def toolkit_client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(bootstrap(settings_for(tmp_path)))
    headers = {"Authorization": f"Bearer {TOOLKIT_TOKEN}", "User-Agent": BROWSER}
    with TestClient(app, headers=headers, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    "body",
    [b'{"via": ["sms"]}', b'{"via": {"a": 1}}', b"[" * 1020 + b"]" * 1020],
    ids=["via-list", "via-object", "nested-1020-deep"],
)
def test_red_team_toolkit_share_with_odd_body_is_not_500(toolkit_client, body):
    """RED TEAM (medium, public). ``POST /t/{token}/shared`` takes any body up to 2 KB:
    ``given in VIA`` (a set) raises TypeError for a list or object, and ``json.loads``
    RecursionError for 1,020 nested arrays (2,040 bytes): 500. It should record the share
    (via "other") or refuse with 4xx."""
    cid = make_campaign(toolkit_client)
    kit = toolkit_client.get(f"/api/v1/campaigns/{cid}/toolkits").json()[0]
    r = toolkit_client.post(f"/t/{kit['token']}/shared", content=body)
    assert r.status_code < 500, r.status_code


def test_red_team_malformed_webhook_public_key_is_refused_at_startup(tmp_path):
    """RED TEAM (medium). A mistyped ``WINWIN_SENDGRID_WEBHOOK_PUBLIC_KEY`` (here a
    private key pasted by mistake would do too) is only parsed when SendGrid posts: the
    stack starts and reports ready, and every Event Webhook post then gets 500 (ValueError
    from ``_public_key``) until SendGrid gives up after 24 h. Refuse it when the settings
    are read, like weak secrets."""
    with pytest.raises(ValueError, match="(?i)public.?key"):
        Settings(
            env="production",
            database_url=f"sqlite:///{tmp_path / 'k.db'}",
            secret_key="9f0c2b7e4d1a8c3f6b5e0d9a2c7f4e1b8a3d6c0f",
            api_token="1e8d5a2f7c4b9e0d3a6f1c8b5e2d7a4f9c0b3e6d",
            sendgrid_webhook_public_key="not-a-public-key",
            state_dir=tmp_path / "state",
        )


@pytest.fixture
def staff_client(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    from tests.integration.journeys.helpers import add_template

    upgrade(database_url)
    c = make_container(database_url, tmp_path, Clock())
    tid = add_template(c)
    with TestClient(create_app(c), raise_server_exceptions=False) as client:
        yield client, tid
    c.close()


NUL_POSTS = {
    "campaign-name": ("/api/v1/campaigns", {"name": "n\0", "channel": "email"}),
    "contact-external-id": (
        "/api/v1/contacts",
        [{"external_id": "x\0", "consent": {"email": "confirmed"}}],
    ),
    "messenger-id": ("/api/v1/messengers", {"id": "m\0", "name": "n", "role": "parent"}),
    "messenger-name": ("/api/v1/messengers", {"id": "m1", "name": "n\0", "role": "parent"}),
    "resource-title": (
        "/api/v1/resources",
        {"title": "t\0", "url": "https://network.example.org/x", "kind": "guide"},
    ),
    "template-text": (
        "/api/v1/templates",
        {"name": "t", "channel": "email", "subject": "s", "text": "x\0 {{ unsubscribe_url }}"},
    ),
    "link-destination": ("/api/v1/links", {"destination": "https://network.example.org/\0"}),
    "journey-trigger-key": (
        "/api/v1/journeys",
        {"name": "j", "trigger": {"type\0": "x"}, "action": {"type": "email"}},
    ),
}
#: The field each 422 names (``loc`` without "body").
NUL_FIELDS = {"contact-external-id": "0.external_id", "messenger-id": "id", "resource-title": "title",
              "template-text": "text", "link-destination": "destination",
              "journey-trigger-key": "trigger"}  # fmt: skip


@pytest.mark.parametrize("case", list(NUL_POSTS), ids=list(NUL_POSTS))
def test_red_team_nul_in_staff_objects_is_not_500(staff_client, case):
    """RED TEAM (medium). Events refuse NUL ("contains a NUL character"), staff objects do
    not: SQLite stores it, PostgreSQL refuses it in text, so on PostgreSQL these 7 posts
    answer 500 (the schemathesis runs are in process on SQLite). Refuse NUL (422) or
    store it, the same on both databases; never 500."""
    client, tid = staff_client
    path, body = NUL_POSTS[case]
    if path == "/api/v1/campaigns":
        body = body | {"template_id": tid}
    r = client.post(path, json=body, headers=STAFF)
    assert r.status_code == 422, (case, r.status_code)
    field = NUL_FIELDS.get(case, "name")
    assert {
        "field": field,
        "error": "Value error, contains a NUL character or invalid Unicode",
    } in (r.json()["detail"])


WEBHOOK_POSTS = {
    "spamreport-address-with-nul": {"event": "spamreport", "email": "a\0@example.net"},
    "bounce-address-of-400-chars": {"event": "bounce", "email": "a" * 400 + "@example.net"},
    "group-unsubscribe-address-with-nul": {
        "event": "group_unsubscribe",
        "asm_group_id": 5,
        "email": "a\0@example.net",
    },
    "sg-event-id-with-nul": {"event": "open", "sg_event_id": "x\0"},
}


@pytest.mark.parametrize("case", list(WEBHOOK_POSTS), ids=list(WEBHOOK_POSTS))
def test_red_team_webhook_fields_postgres_cannot_store_are_not_500(staff_client, case, caplog):
    """RED TEAM (medium, PostgreSQL). An address with NUL or longer than the
    ``suppressions`` column (320), or an ``sg_event_id`` with NUL, makes the Event Webhook
    answer 500 on PostgreSQL (SQLite stores them): SendGrid retries the whole batch for
    24 h and the other events in it are lost with it."""
    client, _ = staff_client
    item = WEBHOOK_POSTS[case] | {"timestamp": 1_700_000_000, "ww_person": contact_person("a")}
    good = {"event": "open", "timestamp": 1_700_000_001, "ww_person": contact_person("b")}
    with caplog.at_level("WARNING", logger="services.tracking.webhooks"):
        r = client.post(EVENTS, json=[item, good])
    assert r.status_code == 200, r.status_code
    assert r.json() == {"accepted": 1, "duplicates": 0, "ignored": 1}  # the rest is kept
    skipped = [m for m in caplog.messages if m.startswith("SendGrid event 0 skipped: ")]
    assert skipped and not any("example.net" in m for m in caplog.messages), caplog.messages


def test_red_team_inbound_reply_with_nul_is_not_500(staff_client, database_url):
    """RED TEAM (medium, PostgreSQL, public). A reply whose text holds a NUL byte (anyone
    can email the reply address) answers 500 on PostgreSQL: SendGrid retries it for 3 days,
    then drops it."""
    client, _ = staff_client
    body, headers = _multipart({"from": b"a@example.net", "text": b"hi\0there"})
    r = client.post(INBOUND, content=body, headers=headers)
    assert r.status_code == 200, r.status_code
    engine = make_engine(database_url)
    with engine.connect() as db:
        assert db.scalars(select(Reply.text)).all() == ["hithere"]  # kept, NUL taken out
    engine.dispose()
