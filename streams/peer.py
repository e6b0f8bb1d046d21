"""The pipeline bench's peer: the agent a team would write by hand (``winwin bench
pipeline`` measures it against the worker; never run in production).

As the examples of Faust's issue tracker do: one agent reads the two topics, and each
record is written in a transaction of its own, one statement per row: the touch, or the
event, then each of its credits (the same rows as the sink's: same attribution, same
keys, so its numbers are as exact; only the way of writing differs).

``python -m streams.peer`` runs it with the environment's settings (its own consumer
group, so it reads both topics from the start); with ``WINWIN_PEER_GATE`` set to a path
it writes nothing until that file exists.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import faust
from sqlalchemy import Table
from sqlalchemy.orm import Session, sessionmaker

from services.analytics.credit_rows import credit_rows
from services.analytics.stage_map import load_stage_map
from services.analytics.window_credits import touches_of
from services.bus import envelopes, topics
from services.config import Settings
from services.db import models
from services.db.session import make_engine, make_sessionmaker
from services.db.upsert import insert_ignore, insert_new
from streams.app import create_app
from streams.worker import Worker


def write_record(
    sessions: sessionmaker[Session], record: dict[str, Any], window: int, timezone: str
) -> None:
    """One record, one transaction, one INSERT per row."""
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        if "touch_id" in record:
            keys = ("touch_id", "person", "campaign_id", "channel", "messenger_id", "kind")
            row = {k: record.get(k) for k in keys} | {"occurred_at": _time(record)}
            insert_ignore(
                session, cast(Table, models.Touch.__table__), [row | {"received_at": now}]
            )
            return
        stage = load_stage_map(session).stage_of(record["type"])
        keys = ("event_id", "type", "person", "campaign_id", "channel", "messenger_id")
        row = {k: record.get(k) for k in keys} | {"occurred_at": _time(record)}
        row |= {"stage": stage.value if stage else None, "bot": bool(record.get("bot", False))}
        new = insert_new(session, cast(Table, models.EngagementEvent.__table__), [row], "event_id")
        if not new or row["bot"]:
            return
        if row["campaign_id"]:  # an exposure too, as the sink stores it
            exposure = {k: row[k] for k in ("person", "campaign_id", "channel", "messenger_id")}
            exposure |= {"touch_id": f"e:{row['event_id']}", "kind": str(row["type"])[:50]}
            exposure |= {"occurred_at": row["occurred_at"], "received_at": now}
            insert_ignore(session, cast(Table, models.Touch.__table__), [exposure])
        if stage is None:
            return
        history = touches_of(session, [row], window).get(str(row["person"]))
        for credit in credit_rows(row, history if history is not None else (), window, timezone):
            insert_ignore(session, cast(Table, models.Credit.__table__), [credit])


def build(settings: Settings) -> faust.App:
    sessions = make_sessionmaker(make_engine(settings.database_url))
    app = create_app(settings, f"{settings.topic_prefix}winwin-peer")
    names = [topics.physical(t, settings.topic_prefix) for t in (topics.ENGAGEMENT, topics.TOUCHES)]
    source = app.topic(*names, key_serializer="raw", value_serializer="raw")
    window = settings.attribution_window_days
    gate = os.environ.get("WINWIN_PEER_GATE")

    @app.agent(source, name="peer")
    async def peer(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            if gate and not os.path.exists(gate):  # the bench's: start when it says
                Path(f"{gate}.waiting").touch()  # joined, its first message in hand
                while not os.path.exists(gate):
                    await asyncio.sleep(0.05)
            for record in envelopes.decode(value):
                write_record(sessions, record, window, settings.timezone)

    return app


def _time(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["occurred_at"].replace("Z", "+00:00"))


def main() -> None:
    app = build(Settings())
    Worker(app, loglevel="WARNING", quiet=True, override_logging=False).execute_from_commandline()


if __name__ == "__main__":
    main()
