"""The composition root: the ports given to ``bootstrap`` are the ones the application
uses, from the dispatcher's email sender to the clicks answered on the hot path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from services.api import create_app
from services.bootstrap import bootstrap
from services.campaigns.channels.email import OutgoingEmail, SendResult
from services.campaigns.dispatch import make_sender
from services.campaigns.publishers import Post, PublishResult
from services.campaigns.social import publish_due
from services.config import Settings
from services.db.migrate import upgrade

TOKEN = "bootstrap-test-token-0123456789"
T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


def settings_for(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'bootstrap.db'}"
    upgrade(url)
    return Settings(
        env="dev",
        database_url=url,
        secret_key="bootstrap-secret-0123456789abcdef",
        api_token=TOKEN,
        public_base_url="http://testserver",
        state_dir=tmp_path / "state",
    )


class Recorder:
    """An event publisher that keeps what it is handed."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.running = False

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def start(self) -> None:
        self.running = True

    def later(self, task: Callable[[], None]) -> None:
        task()  # no thread of its own: at once, after what it was handed before

    def stop(self) -> None:
        self.running = False


class NoEmail:
    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        raise AssertionError("nothing is due")


class NoPosts:
    name = "none"

    def publish(self, post: Post, now: datetime) -> PublishResult:
        raise AssertionError("nothing is due")


def test_the_application_uses_the_ports_it_is_given(tmp_path: Path) -> None:
    sender, recorder, publisher = NoEmail(), Recorder(), NoPosts()
    c = bootstrap(
        settings_for(tmp_path),
        clock=lambda: T0,
        email_sender=sender,
        event_publisher=recorder,
        social_publishers=[publisher],
    )
    try:
        assert c.now() == T0
        assert make_sender(c) is sender
        assert c.gatherer is recorder and c.click_hand_over.gatherer is recorder
        assert publish_due(c, T0) == 0 and c.social_publishers == [publisher]
    finally:
        c.close()
    assert not recorder.running


def test_a_click_reaches_the_event_publisher_given_to_bootstrap(tmp_path: Path) -> None:
    recorder = Recorder()
    app = create_app(bootstrap(settings_for(tmp_path), event_publisher=recorder))
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        assert recorder.running
        link = client.post("/api/v1/links", json={"destination": "https://example.org/a"}).json()
        response = client.get(urlsplit(link["url"]).path, follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"] == "https://example.org/a"
    assert [(r["type"], r["link_id"]) for r in recorder.records] == [("link.click", link["id"])]
    assert not recorder.running
