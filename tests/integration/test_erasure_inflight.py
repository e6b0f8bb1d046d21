"""Erasure vs events in flight (issue 18, part 3), on SQLite and PostgreSQL, through the sink.

An event already in Kafka (or an outbox) under an erased person's old pseudonym, stored
after the erasure, must not make a "new person" and change a published count: the sink
stores it under the erasure's random pseudonym while the map (a keyed hash of the old
pseudonym) lasts; the dispatcher's retention step forgets the map after the horizon.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.analytics.sink import AttributionSink
from services.api import create_app
from services.db.models import EngagementEvent
from services.db.models_consent import ErasedPseudonym
from services.dispatcher_role import due_work
from tests.integration.analytics.conftest import event, touch
from tests.integration.test_dispatch import NOW, SECRET, make_container
from tests.integration.test_privacy import AUTH, _counts, _seed
from tests.integration.test_privacy import db_url as db_url  # the migrated database fixture


def _stored_person(c, event_id: str) -> str:
    with c.sessions() as s:
        E = EngagementEvent
        return s.scalar(select(E.person).where(E.event_id == event_id))


def _map_rows(c) -> int:
    with c.sessions() as s:
        return s.scalar(select(func.count()).select_from(ErasedPseudonym))


def test_late_events_of_an_erased_person_keep_the_counts_and_the_map_is_forgotten(db_url, tmp_path):
    c = make_container(db_url, tmp_path, erasure_inflight_days=7)
    try:
        old = _seed(c)
        client = TestClient(create_app(c))
        before = _counts(c)
        assert client.delete("/api/v1/contacts/sentinel-ext", headers=AUTH).status_code == 200
        assert _map_rows(c) == 1
        with c.sessions() as s:
            assert old not in repr(s.execute(select(ErasedPseudonym)).all())  # a keyed hash

        sink = AttributionSink(c.sessions, secret=SECRET.encode())
        late = NOW - timedelta(minutes=5)  # happened before the erasure, stored after it
        sink.write([event("late-1", "resource.view", late, old),
                    event("late-2", "story.shared", late, old, campaign="c1")],
                   [touch("late-t", late, old, "c1")])  # fmt: skip
        assert _counts(c) == before  # no "new person"
        assert _stored_person(c, "late-1") not in (None, old)

        step = dict(due_work(c))["retention"]
        step(NOW + timedelta(days=1))
        assert _map_rows(c) == 1  # still within the horizon
        step(NOW + timedelta(days=8))
        assert _map_rows(c) == 0  # forgotten: the last link is gone
        sink.write([event("later", "resource.view", late, old)], [])
        assert _stored_person(c, "later") == old  # nothing left to tie it to the erased facts
    finally:
        c.close()
