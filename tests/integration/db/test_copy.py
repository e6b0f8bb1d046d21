"""PostgreSQL's COPY path of the sink's bulk inserts: only new keys go in, and every
value comes back as it was sent (text COPY escapes, JSON, times)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, select

from services.analytics.bulk import BulkInsert
from services.db.migrate import upgrade
from services.db.models import EngagementEvent
from services.db.session import make_engine, make_sessionmaker

ODD = "tab\there, new\nline, back\\slash, quote \" ' and é 🙂"


def row(event_id: str) -> dict:
    return {
        "event_id": event_id,
        "type": ODD,
        "occurred_at": datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC),
        "person": "p1",
        "campaign_id": None,
        "channel": None,
        "messenger_id": None,
        "resource_id": None,
        "stage": "use",
        "bot": False,
        "bot_reason": None,
        "properties": {"big": 2**70, "text": ODD, "list": [1, None, True]},
    }


def test_copy_inserts_new_keys_only_and_keeps_every_value(postgres_url):
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    events = BulkInsert(cast(Table, EngagementEvent.__table__))
    try:
        with sessions() as s, s.begin():
            assert events.insert_new(s, [row("a"), row("b")], "event_id") == {"a", "b"}
            # Twice in one transaction (the staging table is emptied in between).
            assert events.insert_new(s, [row("b"), row("c")], "event_id") == {"c"}
            staged = "SELECT to_regclass('pg_temp.copy_engagement_events')"
            assert s.connection().exec_driver_sql(staged).scalar() is not None  # COPY's way
        with sessions() as s, s.begin():
            assert events.insert_new(s, [row("a"), row("c")], "event_id") == set()
        with sessions() as s:
            stored = s.scalars(select(EngagementEvent).order_by(EngagementEvent.event_id)).all()
        assert [e.event_id for e in stored] == ["a", "b", "c"]
        for e in stored:
            assert (e.type, e.occurred_at, e.properties) == (
                ODD,
                row("x")["occurred_at"],
                row("x")["properties"],
            )
    finally:
        engine.dispose()
