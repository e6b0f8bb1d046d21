"""Touches that arrive late or at the same instant, on SQLite and PostgreSQL: every stored
window stays equal to the brute-force oracle, and the stream and a recomputation order
simultaneous touches alike (by arrival, then id)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from services.analytics.credit_rows import model_weights, weight_of
from services.analytics.metrics import attribution, ensure_window
from services.analytics.sink import AttributionSink
from services.db.migrate import upgrade
from services.db.models import Credit
from services.db.session import make_engine, make_sessionmaker
from services.domain import Model
from tests.bench.bench_measurement import same_attribution
from tests.bench.measurement_network import build_network, oracle
from tests.integration.analytics.conftest import event, person, touch

WINDOWS = (7, 14, 30, 60)  # shorter than the stream's (30), its own, and longer
BATCH = 400


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade(database_url)
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def write(sink: AttributionSink, arrivals: list[tuple[str, dict]]) -> None:
    for lo in range(0, len(arrivals), BATCH):
        part = arrivals[lo : lo + BATCH]
        sink.write([r for k, r in part if k == "e"], [r for k, r in part if k == "t"])


def answers(sessions: sessionmaker[Session], window: int) -> dict[str, dict]:
    """What a reader of ``window`` gets: the window filled in, then every model's rows."""
    with sessions() as s, s.begin():
        ensure_window(s, window)
        return {m.value: attribution(s, m.value, window) for m in Model}


def test_a_late_touch_makes_every_window_already_read_right(sessions):
    net = build_network(1000, 150, 4, seed=14)
    late = {t["touch_id"] for t in net.touches[::2]}  # half the touches come after the rest
    sink = AttributionSink(sessions)
    write(sink, [(k, r) for k, r in net.arrivals if k == "e" or r["touch_id"] not in late])
    before = {w: answers(sessions, w) for w in WINDOWS if w != 30}  # windows read early
    write(sink, [("t", r) for r in net.touches if r["touch_id"] in late])
    for window in WINDOWS:
        truth = oracle(net, "news-2017-08", window).attribution
        got = answers(sessions, window)
        for model in Model:
            assert same_attribution(got[model.value], truth[model.value]), (window, model)
            if window in before:  # the late touches did change what this window says
                assert not same_attribution(before[window][model.value], truth[model.value])


def campaigns_credited(sessions: sessionmaker[Session], model: Model, window: int = 30):
    with sessions() as s:
        rows = s.execute(
            select(Credit.event_id, Credit.campaign_id).where(
                Credit.window_days == window, weight_of(model.value).is_not(None)
            )
        ).all()
    return dict(rows)


def stored_credits(sessions: sessionmaker[Session]) -> set[tuple]:
    with sessions() as s:
        rows = s.execute(select(Credit.__table__).where(Credit.window_days == 30)).mappings()
        return {
            (c["event_id"], m, c["touch_id"], c["campaign_id"], round(w, 12))
            for c in rows
            for m, w in model_weights(c)
        }


def test_touches_of_one_instant_are_ordered_by_arrival_then_id(sessions):
    sink = AttributionSink(sessions)
    sent = datetime(2017, 9, 1, 9, tzinfo=UTC)
    later = sent + timedelta(hours=2)
    ann, bo = person(7), person(8)
    # Ann: "t-z" arrives first, then her event, then "t-a" of the same instant (late).
    sink.write([], [touch("t-z", sent, ann, "c1")])
    sink.write([event("ann-use", "resource.use", later, ann)], [])
    sink.write([], [touch("t-a", sent, ann, "c2")])
    # Bo: the same two touches arrive in that order before his event.
    sink.write([], [touch("b-z", sent, bo, "c1")])
    sink.write([], [touch("b-a", sent, bo, "c2")])
    sink.write([event("bo-use", "resource.use", later, bo)], [])
    # Both arrive together: then the touch id decides.
    cy = person(9)
    sink.write([event("cy-use", "resource.use", later, cy)],
               [touch("c-z", sent, cy, "c1"), touch("c-a", sent, cy, "c2")])  # fmt: skip
    first = campaigns_credited(sessions, Model.FIRST_TOUCH)
    last = campaigns_credited(sessions, Model.LAST_TOUCH)
    assert first == {"ann-use": "c1", "bo-use": "c1", "cy-use": "c2"}
    assert last == {"ann-use": "c2", "bo-use": "c2", "cy-use": "c1"}

    streamed = stored_credits(sessions)
    with sessions() as s, s.begin():  # the recomputation path gives the same rows
        s.execute(delete(Credit).where(Credit.window_days == 30))
        ensure_window(s, 30)
    assert stored_credits(sessions) == streamed
    with sessions() as s, s.begin():
        ensure_window(s, 7)
    assert campaigns_credited(sessions, Model.FIRST_TOUCH, 7) == first
    assert campaigns_credited(sessions, Model.LAST_TOUCH, 7) == last
