"""The pipeline bench's peer (streams/peer.py), without Kafka: record by record, one
transaction each, it stores the rows the sink stores for the same records (so the bench
compares ways of writing, not amounts of work)."""

from __future__ import annotations

from sqlalchemy import select

from services.analytics.credit_rows import model_weights
from services.analytics.sink import AttributionSink
from services.db.models import Credit, EngagementEvent, Touch
from streams.peer import write_record
from tests.integration.analytics.conftest import random_dataset

COLUMNS = ("event_id", "window_days", "touch_id", "campaign_id", "stage", "person")


def stored(sessions) -> tuple[set, set, dict]:
    with sessions() as s:
        events = set(s.scalars(select(EngagementEvent.event_id)))
        touches = set(s.scalars(select(Touch.touch_id)))
        credits = {
            tuple(c[k] for k in COLUMNS): tuple((m, round(w, 9)) for m, w in model_weights(c))
            for c in s.execute(select(Credit.__table__)).mappings()
        }
    return events, touches, credits


def test_the_peer_stores_what_the_sink_stores(tmp_path):
    from services.db.migrate import upgrade
    from services.db.session import make_engine, make_sessionmaker

    data = random_dataset(8, 200, 80)
    answers = []
    for name in ("peer", "sink"):
        url = f"sqlite:///{tmp_path / name}.db"
        upgrade(url)
        sessions = make_sessionmaker(make_engine(url))
        if name == "sink":
            AttributionSink(sessions).write([], data.touches)
            AttributionSink(sessions).write(data.events, [])
        else:
            in_time = sorted(data.events, key=lambda e: e["occurred_at"])  # a live stream
            for record in [*data.touches, *in_time, in_time[0]]:  # one twice
                write_record(sessions, record, 30, "UTC")
        answers.append(stored(sessions))
    assert answers[0] == answers[1]
    assert all(answers[0])
