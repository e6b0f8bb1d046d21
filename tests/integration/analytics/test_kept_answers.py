"""Answers kept until the data changes (services/analytics/answers.py), on SQLite and
PostgreSQL: a repeated read runs no query on the facts, and whatever changes a count
(a stream batch, a late touch, a window recomputed from scratch, an identity recount)
makes the next read compute again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services.analytics import windows
from services.analytics.metrics import attribution, campaign_attribution, stage_metrics
from services.analytics.sink import AttributionSink
from services.analytics.window_credits import ensure_window
from services.db.migrate import upgrade
from services.db.models_reads import CreditWindow
from services.db.session import make_engine, make_sessionmaker
from services.journeys.recount import apply_changes
from tests.integration.analytics.conftest import event as record
from tests.integration.analytics.conftest import person, touch
from tests.integration.analytics.test_read_paths import recorded, sessions  # noqa: F401

MAY = datetime(2019, 5, 1, tzinfo=UTC)


def facts_read(seen: list[tuple[str, object]]) -> list[str]:
    """The statements that read counted facts (not the generation lookup)."""
    return [sql for sql, _ in seen if "credits" in sql or "stage_facts" in sql]


def reads(s):  # type: ignore[no-untyped-def]
    return (
        attribution(s, "linear", 30),
        attribution(s, "last_touch", 30, "2017-06", "2018-03", "channel"),
        campaign_attribution(s, "c2", "first_touch", 30),
        stage_metrics(s, "month", "2017-06", "2018-03"),
        stage_metrics(s, "month", "2017-06", "2018-03", campaign_id="c2"),
    )


def test_a_repeated_read_runs_no_query_on_the_facts_and_answers_a_copy(engine, sessions):  # noqa: F811
    with sessions() as s:
        first = reads(s)
    with recorded(engine) as seen, sessions() as s:
        again = reads(s)
    assert again == first
    assert facts_read(seen) == []
    assert all("credit_windows" in sql for sql, _ in seen)
    again[0]["rows"].clear()  # a caller's copy: what is kept does not change
    with sessions() as s:
        assert reads(s) == first


def test_a_stream_batch_and_a_late_touch_are_counted_at_the_next_read(engine, sessions):  # noqa: F811
    sink = AttributionSink(sessions)
    with sessions() as s:
        before = attribution(s, "first_touch", 30, "2019-05")["rows"]
    assert before == []
    sink.write([record("kept-1", "resource.use", MAY, person(3), "c2")], [])
    with sessions() as s:
        keys = {
            (r["key"], r["events"]) for r in attribution(s, "first_touch", 30, "2019-05")["rows"]
        }
    assert keys == {("c2", 1)}
    sink.write([], [touch("kept-late", MAY - timedelta(days=2), person(3), "c4")])
    with sessions() as s:
        keys = {
            (r["key"], r["events"]) for r in attribution(s, "first_touch", 30, "2019-05")["rows"]
        }
    assert keys == {("c4", 1)}


def test_a_window_recomputed_from_scratch_is_read_again(engine, sessions):  # noqa: F811
    with sessions() as s, s.begin():
        ensure_window(s, 7)
    with sessions() as s:
        before = attribution(s, "linear", 7)
    with sessions() as s, s.begin():
        generation = windows.generation(s, 7)[0]
        ensure_window(s, 7, refresh=True)
    with sessions() as s:
        assert windows.generation(s, 7)[0] > generation
        with recorded(engine) as seen:
            assert attribution(s, "linear", 7) == before  # the same credits, computed again
    assert facts_read(seen)


def test_an_identity_change_bumps_the_generation(sessions):  # noqa: F811
    with sessions() as s:
        generation = windows.generation(s, 30)[0]
    apply_changes(sessions, [{"merge_id": "no-such-merge"}], "UTC", 30)
    with sessions() as s:
        assert s.scalar(select(CreditWindow.generation).where(CreditWindow.window_days == 0)) == (
            generation + 1
        )


def test_two_databases_at_the_same_generation_do_not_share_answers(tmp_path):
    answers = []
    for n in (1, 2):
        url = f"sqlite:///{tmp_path}/db{n}.sqlite3"
        upgrade(url)
        db_engine = make_engine(url)
        sessions_n = make_sessionmaker(db_engine)
        events = [record(f"e{n}-{i}", "resource.use", MAY, person(i), "c2") for i in range(n)]
        AttributionSink(sessions_n).write(events, [])
        with sessions_n() as s:
            assert windows.generation(s, 30)[0] == 1
            answers.append(attribution(s, "linear", 30)["rows"][0]["people"])
        db_engine.dispose()
    assert answers == [1, 2]
