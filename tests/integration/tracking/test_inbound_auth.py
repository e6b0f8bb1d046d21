"""Inbound Parse posts are unsigned: with WINWIN_INBOUND_PARSE_SECRET set, only a post to
the URL carrying the secret (basic auth or ?key=) is read; anything else is 401."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from services.api import create_app
from services.db.migrate import upgrade
from tests.integration.journeys.helpers import Clock, make_container
from tests.stack import GOOD_SECRET, GOOD_TOKEN

REPLY = {
    "to": "outreach@example.org",
    "from": "Parent <parent@example.net>",
    "subject": "Re: hello",
    "text": "Thank you",
    "headers": "Message-ID: <m1@mail.example.net>\n",
}


@pytest.fixture
def client(tmp_path):
    url = f"sqlite:///{tmp_path / 'inbound.db'}"
    upgrade(url)
    container = make_container(url, tmp_path, Clock(), inbound_parse_secret="parse-s3cret")
    with TestClient(create_app(container)) as client:
        yield client


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/webhooks/sendgrid/inbound", {}),
        ("/webhooks/sendgrid/inbound?key=wrong", {}),
        ("/webhooks/sendgrid/inbound", basic("parse", "wrong")),
        ("/webhooks/sendgrid/inbound", {"Authorization": "Basic !!not-base64"}),
    ],
)
def test_without_the_secret_nothing_is_read(client, path, headers):
    r = client.post(path, data=REPLY, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert "INBOUND_PARSE_SECRET" in r.json()["error"]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/webhooks/sendgrid/inbound?key=parse-s3cret", {}),
        ("/webhooks/sendgrid/inbound", basic("parse", "parse-s3cret")),
    ],
)
def test_with_the_secret_the_reply_is_read(client, path, headers):
    r = client.post(path, data=REPLY, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"matched": False, "duplicate": False}  # no send to match it to


def test_outside_dev_mode_an_unset_secret_refuses_every_post(tmp_path):
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    upgrade(url)
    container = make_container(
        url,
        tmp_path,
        Clock(),
        env="production",
        public_base_url="https://outreach.example.org",
        secret_key=GOOD_SECRET,
        api_token=GOOD_TOKEN,
    )
    with TestClient(create_app(container)) as client:
        assert client.post("/webhooks/sendgrid/inbound", data=REPLY).status_code == 401
