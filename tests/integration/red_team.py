"""What the red-team test files share: an in-process API on a fresh SQLite database whose
webhooks are verified with the key sendgrid-go publishes (so fresh batches can be signed)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from services.api import create_app
from services.bootstrap import Container
from services.db.migrate import upgrade
from tests.fakes import sendgrid_artefacts as sg
from tests.integration.journeys.helpers import TOKEN, Clock, make_container

__all__ = ["STAFF", "client", "container", "journey", "meanwhile"]

STAFF = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    url = f"sqlite:///{tmp_path / 'red.db'}"
    upgrade(url)
    c = make_container(url, tmp_path, Clock(), sendgrid_webhook_public_key=sg.GO_NODE_PUBLIC_KEY)
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client


def journey(delay: str, template_id: str) -> dict[str, object]:
    """The body of an email journey "invite to share" with this ``delay``."""
    return {
        "name": "invite to share",
        "trigger": {"types": ["resource.view"]},
        "delay": delay,
        "exit": {"reached_stage": "produce"},
        "action": {"channel": "email", "template_id": template_id},
        "enabled": True,
    }


def meanwhile(engine: Engine, write: Callable[[], None]) -> None:
    """``write`` (another writer: the stream, a staff change) while a transaction on
    ``engine`` runs, between its reads and its writes. PostgreSQL: at once. SQLite: a
    window computation's step holds the one write lock from its first statement, so the
    write is refused at once, and done as the waiting writer's is, right after that
    transaction commits."""
    if engine.dialect.name != "sqlite":
        write()
        return
    other = sqlite3.connect(str(engine.url.database), timeout=0.1, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
    event.listen(Session, "after_commit", lambda _: write(), once=True)
