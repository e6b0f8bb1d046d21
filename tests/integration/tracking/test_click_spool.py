"""A redirect answered 302 means its click is stored or durably queued (red team round 5,
finding 6: a click whose commit outlasted WINWIN_CLICK_COMMIT_WAIT_SECONDS was answered
and then held only in the API's memory, so a SIGKILL of the API lost it). Past the wait,
the click is in the click spool (services/tracking/spool.py), stored once when SQL
answers, or at the API's next start."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from services.analytics.prometheus import EVENTS_DUPLICATE
from services.api import create_app
from services.bootstrap import Container
from services.db.migrate import upgrade
from services.db.models import AcceptedEvent, OutboxMessage
from services.tracking.spool import ClickSpool
from tests.integration.journeys.helpers import TOKEN, Clock, make_container

STAFF = {"Authorization": f"Bearer {TOKEN}"}
WAIT = 0.2  # WINWIN_CLICK_COMMIT_WAIT_SECONDS, short: the test waits it out once


def container(url: str, tmp_path: Path) -> Container:
    return make_container(url, tmp_path, Clock(), click_commit_wait_seconds=WAIT)


@contextlib.contextmanager
def writes_blocked(url: str) -> Iterator[None]:
    """Another connection holds the write lock (SQLite) or the ingest ledger (PostgreSQL)
    until the block ends: the API's commit waits on it."""
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("LOCK TABLE accepted_events IN ACCESS EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


def new_link(client: TestClient) -> dict[str, str]:
    link: dict[str, str] = client.post(
        "/api/v1/links", json={"destination": "https://example.org/a"}
    ).json()
    return link


def click(client: TestClient, link: dict[str, str]) -> None:
    response = client.get(urlsplit(link["url"]).path, follow_redirects=False)
    assert response.status_code == 302


def spooled(c: Container) -> list[dict[str, Any]]:
    folder = c.click_hand_over.spool.folder  # type: ignore[union-attr]
    return [json.loads(line) for f in folder.glob("*.jsonl") for line in f.read_text().split()]


def stored_clicks(c: Container, link_id: str) -> list[str]:
    """The event ids of the link's clicks in the outbox (each must be in the ledger)."""
    with c.sessions() as s:
        outbox = [r for row in s.scalars(select(OutboxMessage.records)) for r in row]
        ledger = set(s.scalars(select(AcceptedEvent.event_id)))
    ids = [r["event_id"] for r in outbox if r.get("link_id") == link_id]
    assert set(ids) <= ledger
    return ids


def test_a_click_answered_while_sql_is_locked_is_spooled_then_stored_once(
    database_url: str, tmp_path: Path
) -> None:
    upgrade(database_url)
    c = container(database_url, tmp_path)
    duplicates = EVENTS_DUPLICATE.value()
    try:
        with TestClient(create_app(c), headers=STAFF) as client:
            link = new_link(client)
            with writes_blocked(database_url):
                click(client, link)  # answered after WAIT, its commit still waiting
                [spooled_click] = spooled(c)
                assert spooled_click["link_id"] == link["id"]
        # SQL answered: the Gatherer stored the click, then the spool (a duplicate)
        assert stored_clicks(c, link["id"]) == [spooled_click["event_id"]]
        assert spooled(c) == []
        # ... which is our own replay, not a click sent twice: not counted as a duplicate
        assert EVENTS_DUPLICATE.value() == duplicates
    finally:
        c.close()


def test_a_spooled_click_is_stored_at_the_next_start_of_the_api(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'spool.db'}"
    upgrade(url)
    killed = container(url, tmp_path)
    # No lifespan: its Gatherer never runs, as in an API killed before its commit.
    client = TestClient(create_app(killed), headers=STAFF)
    click(client, link := new_link(client))
    [spooled_click] = spooled(killed)
    assert spooled_click["link_id"] == link["id"]
    killed.click_hand_over.spool.close()  # type: ignore[union-attr] # the kernel's part
    killed.engine.dispose()
    assert stored_clicks(restarted := container(url, tmp_path), link["id"]) == []
    try:
        with TestClient(create_app(restarted)):
            pass  # start and stop: the Gatherer stores the spool at start
        assert stored_clicks(restarted, link["id"]) == [spooled_click["event_id"]]
        assert spooled(restarted) == []
    finally:
        restarted.close()


def test_the_file_of_a_live_process_is_left_to_it(tmp_path: Path) -> None:
    """Each process appends to its own file, locked while it lives; another process
    stores it only once the lock is gone (the process died, or closed it)."""
    alive, other = (ClickSpool(tmp_path, "sqlite:///x.db") for _ in range(2))
    alive.append([{"event_id": "click:1"}, {"event_id": "click:2"}])
    stored: list[list[str]] = []
    assert other.store(lambda records: stored.append([r["event_id"] for r in records]))
    assert stored == []
    alive.close()
    assert other.store(lambda records: stored.append([r["event_id"] for r in records]))
    assert stored == [["click:1", "click:2"]]
    assert list(other.folder.glob("*.jsonl")) == []
