"""Reads that stay fast, on SQLite and PostgreSQL: a computed window is read with one
lookup (no anti-join), and the read queries' plans use the intended index."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.analytics import window_credits as computing
from services.analytics import windows
from services.analytics.metrics import (
    attribution,
    campaign_attribution,
    ensure_window,
    stage_metrics,
)
from services.analytics.sink import AttributionSink
from services.analytics.window_credits import other_window_ready
from services.analytics.windows import Kept, generation
from services.config import Settings
from services.db.models import Credit, EngagementEvent
from services.db.session import make_sessionmaker
from services.db.values import utc
from tests.integration.analytics.conftest import (
    Dataset,
    person,
    random_dataset,
    touch,
    write_shuffled,
)
from tests.integration.analytics.conftest import event as record

Statements = list[tuple[str, object]]

#: Each read, and the index its queries must use (either name: PostgreSQL and SQLite
#: weigh the two attribution indexes differently, both serve it without a full scan).
CREDITS_KEY = ("sqlite_autoindex_credits_1", "credits_pkey")
READS: dict[str, tuple[Callable[[Session], object], tuple[str, ...]]] = {
    "stage metrics": (
        lambda s: stage_metrics(s, "month", "2017-06", "2018-03"),
        ("sqlite_autoindex_stage_facts_1", "stage_facts_pkey"),
    ),
    "stage metrics of a campaign": (
        lambda s: stage_metrics(s, "month", "2017-06", "2018-03", campaign_id="c2"),
        ("ix_credits_campaign", "ix_credits_attribution_day"),
    ),
    "attribution": (
        lambda s: attribution(s, "linear", 30, "2017-06", "2018-03"),
        ("ix_credits_attribution_day", "ix_credits_window_month"),
    ),
    "attribution, every month": (
        lambda s: attribution(s, "time_decay", 30),
        ("ix_credits_attribution_day", "ix_credits_window_month"),
    ),
    "campaign attribution": (
        lambda s: campaign_attribution(s, "c2", "linear", 30),
        ("ix_credits_campaign", "ix_credits_attribution_day"),
    ),
}


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    sessions = make_sessionmaker(engine)
    write_shuffled(AttributionSink(sessions), random_dataset(19, 300, 120), 19, batches=3)
    return sessions


@contextmanager
def recorded(engine: Engine) -> Iterator[Statements]:
    """The statements run on ``engine`` meanwhile, with their parameters."""
    seen: Statements = []

    def note(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def reads_events(statements: Statements) -> list[str]:
    return [sql for sql, _ in statements if "engagement_events" in sql]


def test_a_computed_window_is_read_with_one_lookup(engine, sessions):
    with sessions() as s, s.begin():
        assert ensure_window(s, 7) > 0
    with recorded(engine) as seen, sessions() as s, s.begin():
        assert ensure_window(s, 7) == 0
    selects = [sql for sql, _ in seen if sql.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and "credit_windows" in selects[0]
    assert reads_events(seen) == []
    # A stage event stored since, and a late touch that drops credits: the stream
    # credits them in the computed window too, which stays one lookup and exact.
    moment = datetime(2019, 5, 1, tzinfo=UTC)
    sink = AttributionSink(sessions)
    sink.write([record("new-1", "resource.use", moment, person(3), "c2")], [])
    assert_complete_with_one_lookup(engine, sessions, 7)
    sink.write([], [touch("late-1", moment - timedelta(days=2), person(3), "c4")])
    assert_complete_with_one_lookup(engine, sessions, 7)
    with sessions() as s:
        keys = {r["key"] for r in attribution(s, "first_touch", 7, "2019-05")["rows"]}
    assert keys == {"c4"}  # new-1 credited anew, with the late touch
    assert window_credits(sessions, 7) == recomputed(sessions, 7)


def assert_complete_with_one_lookup(engine: Engine, sessions: sessionmaker[Session], days: int):
    with recorded(engine) as seen, sessions() as s, s.begin():
        assert ensure_window(s, days) == 0
    assert reads_events(seen) == [] and len(seen) == 1


def window_credits(sessions: sessionmaker[Session], days: int) -> set[tuple[object, ...]]:
    with sessions() as s:
        rows = s.execute(select(Credit.__table__).where(Credit.window_days == days))
        return {tuple(round(v, 12) if isinstance(v, float) else v for v in r) for r in rows}


def recomputed(sessions: sessionmaker[Session], days: int) -> set[tuple[object, ...]]:
    with sessions() as s, s.begin():
        ensure_window(s, days, refresh=True)
    return window_credits(sessions, days)


def test_the_stream_keeps_every_computed_window_exact(engine, sessions):
    """Windows narrower and wider than the stream's, through late touches that drop
    credits in every window and in the wider ones only."""
    with sessions() as s, s.begin():
        ensure_window(s, 7)
        ensure_window(s, 90)
    more = random_dataset(23, 200, 150)  # the same people, new events and touches
    events = [e | {"event_id": f"more-{e['event_id']}"} for e in more.events]
    touches = [t | {"touch_id": f"more-{t['touch_id']}"} for t in more.touches]
    with sessions() as s:
        before = windows.generation(s, 0)[0]
    write_shuffled(AttributionSink(sessions), Dataset(events, touches), 23, batches=6)
    with sessions() as s:
        assert windows.generation(s, 0)[0] > before  # the batches changed credits
    for days in (7, 90):
        assert_complete_with_one_lookup(engine, sessions, days)
    for days in (7, 90):  # (a refresh bumps the generation: both checked first)
        assert window_credits(sessions, days) == recomputed(sessions, days)


def test_a_window_recorded_while_a_batch_runs_is_looked_at_again(engine, sessions):
    """PostgreSQL: a window computed while a batch runs (its last step waits for the
    batch to commit) was not in the batch's recorded windows, so the batch did not credit
    it and must not carry it on; the next read looks and finds the batch's event. SQLite:
    a batch holds the write lock from its first statement (the stage map's version), so
    no window can be recorded meanwhile."""
    computed: list[object] = []
    reader: list[threading.Thread] = []

    def compute_14() -> None:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA busy_timeout = 200")  # not 30 s
                conn.commit()
            try:
                with Session(bind=conn) as other, other.begin():
                    computed.append(ensure_window(other, 14))
            except OperationalError:
                computed.append("locked")

    def record_meanwhile(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM credit_windows" in statement and not reader:
            reader.append(threading.Thread(target=compute_14))
            reader[0].start()
            if engine.dialect.name == "sqlite":
                reader[0].join()  # refused at once: the batch holds the write lock

    event.listen(engine, "after_cursor_execute", record_meanwhile)
    try:
        moment = datetime(2019, 5, 1, tzinfo=UTC)
        AttributionSink(sessions).write([record("new-2", "resource.use", moment, person(4))], [])
    finally:
        event.remove(engine, "after_cursor_execute", record_meanwhile)
    reader[0].join(60)
    with sessions() as s, s.begin():
        looked = ensure_window(s, 14)
    if engine.dialect.name == "sqlite":
        assert computed == ["locked"] and looked > 1  # computed whole, after the batch
    else:
        assert len(computed) == 1 and isinstance(computed[0], int) and computed[0] > 0
    with sessions() as s:  # the batch's event, which the batch did not credit in window 14
        found = s.scalars(select(Credit.window_days).where(Credit.event_id == "new-2"))
        assert set(found) == {14, 30}
    assert window_credits(sessions, 14) == recomputed(sessions, 14)


def test_the_read_queries_use_the_intended_index(engine, sessions):
    with sessions() as s, s.begin():
        ensure_window(s, 30)  # computed for the stream's window already: the lookup only
        with recorded(engine) as seen:
            ensure_window(s, 7, refresh=True)
    anti_join = next(q for q in seen if "NOT" in q[0] and "engagement_events" in q[0])
    assert_plan(engine, [anti_join], CREDITS_KEY)
    touched = [q for q in seen if "FROM touches" in q[0] and "received_at >=" in q[0]]
    assert_plan(engine, touched, ("ix_touches_received_at",))  # holding off the stream
    lookup = [q for q in seen if "FROM credit_windows" in q[0]]
    assert_plan(engine, lookup, ("credit_windows_pkey", "INTEGER PRIMARY KEY"))  # SQLite: rowid
    for name, (read, indexes) in READS.items():
        with recorded(engine) as seen, sessions() as s:
            read(s)
        kept = [q for q in seen if "FROM credit_windows" in q[0]]  # is a kept answer current?
        assert_plan(engine, kept, ("credit_windows_pkey", "INTEGER PRIMARY KEY"), name)
        seen = [q for q in seen if q not in kept]
        assert seen, name
        assert_plan(engine, seen, indexes, name)


def assert_plan(engine: Engine, statements: Statements, indexes: tuple[str, ...], name=""):
    """Each statement's plan names one of ``indexes``. On PostgreSQL with statistics (as
    in production) and sequential scans priced out: these tables are small, where a
    sequential scan is cheapest; at scale it is not."""
    with engine.connect() as conn:
        pg = conn.dialect.name == "postgresql"
        if pg:
            conn.exec_driver_sql("ANALYZE")
            conn.exec_driver_sql("SET enable_seqscan = off")
        for sql, params in statements:
            explain = ("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + sql
            plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(explain, params))
            assert any(f" {index}" in plan for index in indexes), f"{name}: {sql}\n{plan}"


def test_the_anti_join_probes_the_key_while_its_window_is_empty(engine, sessions):
    """Statistics taken before a window is computed say it holds no credits: PostgreSQL
    then probed ``ix_credits_window_month`` (window = 7, a filter on the event), a scan of
    the window's credits so far for every event — 60 s at 150k events, minutes at 1M."""
    with recorded(engine) as seen, sessions() as s, s.begin():
        ensure_window(s, 7)
    anti_join = next(q for q in seen if "NOT" in q[0] and "engagement_events" in q[0])
    with sessions() as s, s.begin():
        s.execute(delete(Credit).where(Credit.window_days == 7))  # as before it was computed
    assert_plan(engine, [anti_join], CREDITS_KEY)
    touched = [q for q in seen if "FROM touches" in q[0] and "received_at >=" in q[0]]
    assert_plan(engine, touched, ("ix_touches_received_at",))  # holding off the stream


def credits_of(s: Session, window_days: int) -> set[tuple[object, ...]]:
    C = Credit
    stmt = select(C.event_id, C.touch_id, C.campaign_id, C.day, C.w_linear, C.w_first_touch)
    return set(s.execute(stmt.where(C.window_days == window_days)).tuples())


def kept_windows(s: Session) -> set[int]:
    return set(s.scalars(select(Credit.window_days).distinct())) - {30}


def test_the_least_recently_read_window_is_dropped_and_computed_again_exactly(sessions):
    """At most ``Kept.most`` windows besides the stream's keep their credits: one more
    drops the one read longest ago (a read, not a computation, counts), and a dropped
    window read again is computed anew, to the same credits and answer. While dropped,
    its answer kept in memory is not served (its tag says incomplete)."""
    kept, t0 = Kept(stream=30, most=2), datetime(2024, 1, 1, tzinfo=UTC)

    def read(window: int, minutes: int) -> int:
        with sessions() as s, s.begin():
            return ensure_window(s, window, kept=kept, now=t0 + timedelta(minutes=minutes))

    assert read(7, 0) > 0
    with sessions() as s:
        credits, answer = credits_of(s, 7), attribution(s, "linear", 7, "2017-06", "2018-03")
        tag = generation(s, 7)
    assert credits and answer["rows"]
    assert read(14, 1) > 0
    assert read(7, 2) == 0  # read again: now 14 is the least recently read
    assert read(21, 3) > 0
    with sessions() as s:
        assert kept_windows(s) == {7, 21}
    assert read(45, 4) > 0
    with sessions() as s:
        assert kept_windows(s) == {21, 45}
        assert generation(s, 7) != tag
        assert attribution(s, "linear", 7, "2017-06", "2018-03")["rows"] == []
    assert read(7, 5) > 0
    with sessions() as s:
        assert credits_of(s, 7) == credits
        assert attribution(s, "linear", 7, "2017-06", "2018-03") == answer
        assert kept_windows(s) == {7, 45}


def test_a_window_is_carried_while_another_batch_holds_it_too(engine, sessions):
    """Two workers' batches both hold the recorded windows (``FOR KEY SHARE``): each must
    still carry them on (it used to skip a window another batch held, so with two workers
    the next read walked every event again)."""
    with sessions() as s, s.begin():
        ensure_window(s, 7)
    with sessions() as other, other.begin():
        assert 7 in windows.recorded(other)  # another batch, still running
        moment = datetime(2019, 5, 1, tzinfo=UTC)
        AttributionSink(sessions).write([record("new-3", "resource.use", moment, person(5))], [])
    assert_complete_with_one_lookup(engine, sessions, 7)


def test_a_new_window_is_computed_in_steps_and_the_stream_writes_between_them(
    database_url, engine, sessions, monkeypatch
):
    """A new window's first read credited every event in one transaction: on SQLite it
    held the one write lock all along (over two minutes at 1M events) and the stream's
    batches waited. It is credited in steps of ``STEP`` events now, a transaction each,
    and a batch commits between two of them: a new event behind the steps' cursor, and
    a late touch just before an event the first step credited. The last step finds the
    first (it walks again) and credits the second's person again: exact."""
    monkeypatch.setattr(computing, "STEP", 40)
    reader = make_sessionmaker(engine)  # the read's sessions; the stream has its own
    credited_per_commit: list[int] = []
    stream: list[tuple[str, str]] = []

    def after_commit(session: Session) -> None:
        with sessions() as s:
            credited_per_commit.append(len(s.scalars(select(Credit.event_id).where(
                Credit.window_days == 7)).all()))  # fmt: skip
        if len(credited_per_commit) == 2:  # between the first steps: the stream writes
            event_id, who, at = credited_event(sessions)
            early = record("0-early", "resource.use", at, person(999_999))  # no touch
            late = touch("late-9", at - timedelta(hours=1), who, "c4")
            AttributionSink(sessions).write([early], [late])
            stream.append((event_id, who))

    event.listen(reader, "after_commit", after_commit)
    other_window_ready(reader, Settings(database_url=database_url), 7, datetime.now(UTC))
    steps = [n for n in credited_per_commit if n]
    assert len(steps) >= 4 and steps == sorted(steps), credited_per_commit  # several commits
    [(touched_event, _)] = stream
    with sessions() as s:
        assert windows.generation(s, 7)[1]  # complete
        of = s.execute(select(Credit.event_id, Credit.touch_id).where(
            Credit.event_id.in_(("0-early", touched_event)), Credit.window_days == 7)).all()  # fmt: skip
    assert {e for e, _ in of} == {"0-early", touched_event}
    assert (touched_event, "late-9") in of
    assert window_credits(sessions, 7) == recomputed(sessions, 7)


def credited_event(sessions: sessionmaker[Session]) -> tuple[str, str, datetime]:
    """An event the first step credited in window 7: its id, person and time."""
    E = EngagementEvent
    with sessions() as s:
        credited = select(Credit.event_id).where(Credit.window_days == 7)
        row = s.execute(select(E.event_id, E.person, E.occurred_at).where(
            E.event_id.in_(credited)).order_by(E.event_id).limit(1)).one()  # fmt: skip
    return row.event_id, row.person, utc(row.occurred_at)
