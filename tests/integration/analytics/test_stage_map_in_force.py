"""The stream's sink stages every event with the stage map in force when its batch
commits (services/analytics/stage_map.py): a change of the map and a batch of the sink
never overlap, whichever begins first."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from services.analytics.recompute import apply_stage_map
from services.analytics.sink import AttributionSink
from services.analytics.stage_map import version_in_force
from services.db.migrate import upgrade
from services.db.models import Credit, EngagementEvent
from services.db.session import make_engine, make_sessionmaker
from services.domain import StageMap
from tests.conftest import a_database
from tests.integration.analytics.conftest import event, person

AT = datetime(2024, 3, 1, tzinfo=UTC)
# page.view leaves the map (it counts as "aware" in the default one)
NEW_MAP = StageMap.from_dict(
    {"aware": ["email.open", "link.click"], "use": ["resource.view"], "produce": ["story.shared"]}
)


@pytest.fixture
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh migrated PostgreSQL database."""
    with a_database("postgres", request, tmp_path) as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


def staged(sessions: sessionmaker[Session]) -> tuple[dict[str, str | None], set[str]]:
    """Every stored event's stage, and the events with credits."""
    with sessions() as s:
        stages = dict(s.execute(select(EngagementEvent.event_id, EngagementEvent.stage)).all())
        return stages, set(s.scalars(select(Credit.event_id)))


def change_map(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        apply_stage_map(s, NEW_MAP)


def test_an_event_stored_after_a_change_committed_is_staged_with_the_new_map(engine: Engine):
    sessions = make_sessionmaker(engine)
    sink = AttributionSink(sessions)
    sink.write([event("before", "page.view", AT, person(1))], [])  # the sink reads the map
    change_map(sessions)
    sink.write([event("after", "page.view", AT, person(2))], [])
    assert staged(sessions) == ({"before": None, "after": None}, set())


# --- PostgreSQL: the interleavings -----------------------------------------------------


def in_thread(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def until_waiting(engine: Engine, waiting: int, threads: list[threading.Thread]) -> None:
    """Until ``waiting`` sessions of this database wait for a lock, or one of ``threads``
    is done (then it did not wait: the assertions after say what it did)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 60  # a guard against a hang, not a timing assertion
    with engine.connect() as conn:
        while conn.execute(query).scalar_one() < waiting:
            if any(not t.is_alive() for t in threads):
                return
            assert time.monotonic() < deadline, "nothing waited and nothing finished"
            time.sleep(0.01)
            conn.rollback()  # a fresh snapshot of pg_stat_activity


@pytest.mark.postgres
def test_a_batch_begun_during_a_change_waits_for_it_and_uses_the_new_map(pg: Engine):
    sessions = make_sessionmaker(pg)
    sink = AttributionSink(sessions)
    sink.write([event("before", "page.view", AT, person(1))], [])  # the old map, cached
    with sessions() as change, change.begin():
        apply_stage_map(change, NEW_MAP)  # not committed yet
        batch = in_thread(lambda: sink.write([event("during", "page.view", AT, person(2))], []))
        until_waiting(pg, 1, [batch])
    batch.join()
    assert staged(sessions) == ({"before": None, "during": None}, set())


@pytest.mark.postgres
def test_a_change_begun_during_a_batch_waits_for_it_and_restages_its_events(pg: Engine):
    """The batch is held mid-way (after its first statement) by a transaction that
    inserts one of its events and has not committed; the change waits for the batch."""
    sessions = make_sessionmaker(pg)
    sink = AttributionSink(sessions)
    sink.write([event("before", "page.view", AT, person(1))], [])  # the old map, cached
    row = {"event_id": "held", "type": "page.view", "occurred_at": AT, "person": person(2)}
    with pg.connect() as holder:
        holder.execute(insert(EngagementEvent).values(row))
        records = [
            event("held", "page.view", AT, person(2)),
            event("y", "page.view", AT, person(3)),
        ]
        batch = in_thread(lambda: sink.write(records, []))
        until_waiting(pg, 1, [batch])
        change = in_thread(lambda: change_map(sessions))
        until_waiting(pg, 2, [batch, change])
        holder.rollback()  # the batch goes on; the change still waits for it
    batch.join()
    change.join()
    assert staged(sessions) == ({"before": None, "held": None, "y": None}, set())


# --- SQLite: one writer at a time --------------------------------------------------------


def test_on_sqlite_the_version_is_read_in_the_batchs_write_transaction(tmp_path: Path):
    """Read in a transaction of its own, the version could be followed by a change's
    commit before the batch writes: the read takes SQLite's write lock."""
    path = tmp_path / "winwin.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            version_in_force(s)
            other = sqlite3.connect(path, timeout=0)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            other.close()
    finally:
        engine.dispose()
