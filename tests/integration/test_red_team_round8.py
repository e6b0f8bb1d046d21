"""Red team, round 8: a window other than the stream's computed in steps again (1295aac,
798e7bb), with its row kept between steps as generation ``COMPUTING`` (-1). Each test is
one finding and fails on the code it was found on. In process, on SQLite and PostgreSQL
(``database_url``; the deadlock on PostgreSQL only: SQLite has one writer); no Kafka."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from services.analytics import window_credits as computing
from services.analytics import windows
from services.analytics.sink import AttributionSink
from services.analytics.window_credits import other_window_ready, read_window
from services.config import Settings
from services.db.models import Credit
from services.db.models_reads import CreditWindow
from services.db.session import make_sessionmaker
from tests.integration.analytics.conftest import event as record
from tests.integration.analytics.conftest import person, touch
from tests.integration.analytics.test_read_paths import recomputed, window_credits

MAY = datetime(2019, 5, 1, tzinfo=UTC)
NOW = MAY + timedelta(days=30)
EVENTS = ("r8-a", "r8-b", "r8-c")  # of people 81, 82, 83, in this (event id) order


def stored(engine: Engine) -> sessionmaker[Session]:
    """Three people's stage events, each touched by c1 two days before."""
    sessions = make_sessionmaker(engine)
    AttributionSink(sessions).write(
        [record(e, "resource.use", MAY, person(81 + i)) for i, e in enumerate(EVENTS)],
        [touch(f"{e}-t", MAY - timedelta(days=2), person(81 + i), "c1")
         for i, e in enumerate(EVENTS)],
    )  # fmt: skip
    return sessions


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return stored(engine)


@pytest.fixture
def one_event_a_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(computing, "STEP", 1)  # r8-a, r8-b, r8-c: a step each, then the last


def in_one_step(read: Callable[[], None]) -> Callable[[], None]:
    """``read`` with steps of 20,000 events (production's): a window of these few events
    is computed in one transaction, as any window of fewer events is."""

    def one_step() -> None:
        step, computing.STEP = computing.STEP, 20_000
        try:
            read()
        finally:
            computing.STEP = step

    return one_step


def kept_rows(sessions: sessionmaker[Session]) -> set[int]:
    with sessions() as s:
        return set(s.scalars(select(CreditWindow.window_days))) - {windows.STORED}


def credited_events(s: Session, days: int) -> int:
    stmt = select(func.count(Credit.event_id.distinct())).where(Credit.window_days == days)
    return s.execute(stmt).scalar_one()


def after_commits(sessions: sessionmaker[Session], n: int, then: Callable[[], None]) -> list[int]:
    """``then()`` once, right after the ``n``-th commit of ``sessions`` (between steps)."""
    commits: list[int] = []

    def count(_: Session) -> None:
        commits.append(1)
        if len(commits) == n:
            then()

    event.listen(sessions, "after_commit", count)
    return commits


# --- 1. PostgreSQL: a stream batch and a window's last step deadlock ------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # row locks: PostgreSQL's
def test_a_stream_batch_and_a_windows_last_step_do_not_deadlock(database_url, engine):
    """Window 7's computation stopped after its first step (r8-a credited; its row
    COMPUTING, unlocked). A stream batch with a late touch for r8-b's person begins: it
    holds the stage map's version shared and finds window 7 among the recorded windows
    (``FOR KEY SHARE``: the row is not held). A read of window 7 begins now, with one
    (last) step: its row upsert does not wait for the key-share lock; it inserts r8-b's
    window-7 credits, then ``_set_right_what_changed`` asks for the stage map's version
    *exclusively* and waits for the batch. The batch goes on, drops r8-b's stale credits
    and credits r8-b again in every recorded window, window 7 too: its insert of the same
    key waits for the read's uncommitted row. PostgreSQL breaks the cycle by failing one
    of them ("deadlock detected"): the read's request fails (500), or the batch is
    retried. ``version_in_force`` says to run it first in the transaction; the last step
    runs it after its inserts. Fixed: each step takes its row ``FOR UPDATE`` first, so it
    waits for the batches that hold it key-shared, and those begun since pass it over."""
    settings = Settings(database_url=database_url)
    sessions = stored(engine)
    with sessions() as s, s.begin():  # a first step that stopped: r8-a credited in 7
        found = windows.look_up(s, 7)
        computing._compute(s, 7, "UTC", found, kept=None, now=None, most=1)
    assert kept_rows(sessions) == {7}
    batch_ready, batch_go = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def pause(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        me = threading.current_thread().name
        if me == "batch" and "SKIP LOCKED" in statement:  # windows.recorded
            batch_ready.set()
            batch_go.wait(30)

    def run(name: str, work: Callable[[], object]) -> threading.Thread:
        def target() -> None:
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=target, name=name)
        thread.start()
        return thread

    event.listen(engine, "after_cursor_execute", pause)
    late = touch("r8-late", MAY - timedelta(days=1), person(82), "c2")
    batch = run("batch", lambda: AttributionSink(sessions).write([], [late]))
    assert batch_ready.wait(30), errors
    read = run("read", lambda: other_window_ready(sessions, settings, 7, NOW))
    # The last step waits for a lock: (found) for the stage map's version after its
    # inserts, a deadlock once the batch goes on; (fixed) for its row, before them, until
    # the batch that holds it key-shared commits.
    waiting_for_a_lock(engine)
    batch_go.set()
    batch.join(60)
    read.join(60)
    assert not batch.is_alive() and not read.is_alive()
    assert errors == []  # is [DeadlockDetected]: the read's (or the batch's)
    assert window_credits(sessions, 7) == recomputed(sessions, 7)


def waiting_for_a_lock(engine: Engine) -> None:
    """Until another connection waits for a lock (bounded: 30 s)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database()"
    )
    with engine.connect() as conn:
        for _ in range(300):
            if conn.execute(waiting).scalar_one():
                return
            conn.rollback()  # pg_stat_activity is a snapshot per transaction
            threading.Event().wait(0.1)
    raise AssertionError("the read never waited")


# --- 2. the bound on kept windows holds only for windows computed in one step -------------


def test_a_window_computed_in_steps_keeps_the_bound_on_kept_windows(
    database_url, engine, sessions, one_event_a_step
):
    """``WINWIN_MAX_EXTRA_WINDOWS=1``: reading window 7, then window 14, keeps 14 only
    (14's computation drops 7: ``make_room``). ``_compute`` makes room only when
    ``not found.kept``, and ``found`` is looked up in the *last* step's transaction: by
    then the first step has created the window's row (``begin_computing``), so any
    window computed in more than one step (every window of more than 20,000 events) never
    makes room. Every window ever read keeps its credits (a row per event and touch, per
    window) for good: the disk bound the setting promises is gone."""
    settings = Settings(database_url=database_url, max_extra_windows=1)
    other_window_ready(sessions, settings, 7, NOW)
    other_window_ready(sessions, settings, 14, NOW + timedelta(minutes=5))
    assert kept_rows(sessions) == {14}  # is {7, 14}
    with sessions() as s:
        assert credited_events(s, 7) == 0  # is 3


# --- 3. read_window serves a window that is being computed again -----------------------------


def test_a_window_dropped_and_being_computed_again_is_not_read_as_ready(
    database_url, engine, sessions, one_event_a_step
):
    """``read_window`` makes window 7 ready, then reads it, then checks that it is still
    kept ("a concurrent read of yet another window may drop this one in between: its
    answer would count no credits, so it is made ready and read again"). Between ready
    and read, another reader's window (14) drops window 7 (``WINWIN_MAX_EXTRA_WINDOWS=1``)
    and a third reader begins computing 7 again: its first step commits (r8-a credited,
    the row back as COMPUTING). The read counts one event of three; the check asks only
    whether the row exists (``look_up(...).kept``), and a COMPUTING row does: the partial
    answer is returned (and kept by ``answers`` under the incomplete tag)."""
    settings = Settings(database_url=database_url, max_extra_windows=1)
    third = make_sessionmaker(engine)

    def stop(_: Session) -> None:
        raise RuntimeError("between steps (or stopped)")

    def read(s: Session) -> int:
        if not dropped:
            dropped.append(True)
            in_one_step(lambda: other_window_ready(sessions, settings, 14, NOW))()  # drops 7
            event.listen(third, "after_commit", stop, once=True)
            with pytest.raises(RuntimeError):
                other_window_ready(third, settings, 7, NOW)  # one step, then away
        return credited_events(s, 7)

    dropped: list[bool] = []
    answer = read_window(sessions, settings, 7, NOW, read)
    assert dropped
    assert answer == len(EVENTS)  # is 1: the third reader's first step only


# --- 4. make_room drops the window being computed, as never read ------------------------------


def test_the_window_being_computed_is_not_dropped_before_a_window_read_long_ago(
    database_url, engine, sessions, one_event_a_step
):
    """At most two other windows are kept. Window 14 was last read a day ago. Reader A
    computes window 7 in steps; between two of them reader B computes window 60, and
    ``make_room`` drops the least recently read: ordered by ``read_at`` with NULL first,
    and a COMPUTING row has no ``read_at`` (``begin_computing`` sets none), so window 7,
    asked for right now, goes instead of 14. A's steps so far are lost (its credits
    deleted), and A's last step drops 14 anyway."""
    settings = Settings(database_url=database_url, max_extra_windows=2)
    other_window_ready(sessions, settings, 14, NOW - timedelta(days=1))
    reader = make_sessionmaker(engine)
    seen: list[set[int]] = []

    def b_reads_60() -> None:
        other_window_ready(sessions, settings, 60, NOW)
        seen.append(kept_rows(sessions))

    after_commits(reader, 1, in_one_step(b_reads_60))
    other_window_ready(reader, settings, 7, NOW)
    assert seen == [{7, 60}]  # is [{14, 60}]: window 7 dropped mid-way


# --- 5. a window dropped between steps is credited whole by its last step --------------------


def test_a_window_dropped_between_steps_is_not_credited_whole_in_its_last_step(
    database_url, engine, sessions, one_event_a_step, monkeypatch
):
    """At most one other window is kept. Reader A computes window 7 in steps (one event
    each here; 20,000 in production); between its third and its last step, reader B
    computes window 14, which drops 7 (rows and credits: ``make_room``). A's next step
    re-creates the row and, its cursor past the last event, "walks again from the start":
    unbounded, in that one transaction, it credits every event the earlier steps had
    credited. At 1M events that is the one-transaction computation the steps exist to
    avoid (168 s holding SQLite's write lock; the stream's batches fail on "database is
    locked")."""
    settings = Settings(database_url=database_url, max_extra_windows=1)
    reader = make_sessionmaker(engine)
    per_transaction: list[int] = []
    compute = computing._compute

    def counted(session: Session, window_days: int, *args, **kwargs):  # type: ignore[no-untyped-def]
        done, last = compute(session, window_days, *args, **kwargs)
        if window_days == 7 and kwargs.get("most"):  # A's steps (not a refresh's)
            per_transaction.append(done)
        return done, last

    monkeypatch.setattr(computing, "_compute", counted)
    b_reads_14 = in_one_step(lambda: other_window_ready(sessions, settings, 14, NOW))
    after_commits(reader, len(EVENTS), b_reads_14)
    other_window_ready(reader, settings, 7, NOW)
    assert kept_rows(sessions) == {7}
    assert max(per_transaction) <= computing.STEP, per_transaction  # is [1, 1, 1, 3]
    assert window_credits(sessions, 7) == recomputed(sessions, 7)
