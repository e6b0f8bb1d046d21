"""Red team, round 6: the read path of issue 19 (answers kept until the data changes,
windows kept complete by the stream). Each test is one finding and fails on the code it
was found on. In process, on SQLite and PostgreSQL (``database_url``); no Kafka."""

from __future__ import annotations

import gc
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FunctionType, ModuleType

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from services.analytics import answers
from services.analytics.metrics import attribution, ensure_window, stage_metrics
from services.analytics.recompute import apply_stage_map
from services.analytics.sink import AttributionSink
from services.analytics.window_credits import other_window_ready, read_window
from services.config import Settings
from services.db.migrate import upgrade
from services.db.models import Credit
from services.db.models_journeys import IdentityMerge
from services.db.session import make_engine, make_sessionmaker
from services.domain.stages import DEFAULT_STAGE_MAP, StageMap
from services.journeys.recount import apply_changes
from tests.integration.analytics.conftest import event as record
from tests.integration.analytics.conftest import person, touch
from tests.integration.analytics.test_read_paths import recomputed, window_credits
from tests.integration.red_team import meanwhile

MAY = datetime(2019, 5, 1, tzinfo=UTC)
WHO = person(61)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """One person's stage event, touched by campaign c2 three days before."""
    sessions = make_sessionmaker(engine)
    AttributionSink(sessions).write(
        [record("r6-use", "resource.use", MAY, WHO)],
        [touch("r6-early", MAY - timedelta(days=3), WHO, "c2")],
    )
    return sessions


def last_touch_keys(sessions: sessionmaker[Session], days: int) -> set[str]:
    with sessions() as s:
        return {r["key"] for r in attribution(s, "last_touch", days)["rows"]}


# --- a late touch while a window is computed: stale credits then pass as complete ----------


def test_a_late_touch_while_a_window_is_computed_is_not_lost_for_that_window(engine, sessions):
    """``ensure_window(7)`` for a window read for the first time reads the events without
    credits and their touches, then writes their credits. A stream batch committing in
    between with a late touch (c4, the day before the event) re-credits the event in the
    stream's window and in the windows *recorded* so far; window 7 is not recorded yet (its
    row is written at the end), so the batch leaves it alone, and ensure_window writes the
    event's window-7 credits from the touches it read before: last touch c2. The batch's
    bump leaves window 7 incomplete, as designed, but the next look only searches events
    *without* credits: this one has (stale) credits, so the window is marked complete with
    them and every later read of window 7 credits c2 where ``refresh=True`` (and the
    stream's own window) credit c4. Both databases: a read takes no lock before it writes
    (PostgreSQL: read committed; SQLite: the driver begins at the first write)."""
    sink = AttributionSink(sessions)
    ran: list[bool] = []

    def late_touch_meanwhile(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM touches" in statement and not ran:
            ran.append(True)  # ensure_window read the touches: the stream commits now
            late = touch("r6-late", MAY - timedelta(days=1), WHO, "c4")
            meanwhile(engine, lambda: sink.write([], [late]))

    with sessions() as s, s.begin():
        event.listen(engine, "after_cursor_execute", late_touch_meanwhile)
        try:
            ensure_window(s, 7)
        finally:
            event.remove(engine, "after_cursor_execute", late_touch_meanwhile)
    assert ran
    with sessions() as s, s.begin():
        ensure_window(s, 7)  # the next read looks again: the window is complete after it
    assert last_touch_keys(sessions, 30) == {"c4"}
    assert last_touch_keys(sessions, 7) == {"c4"}  # was {"c2"}: stale, and kept
    assert window_credits(sessions, 7) == recomputed(sessions, 7)


# --- a window dropped between its computation and its read answers nothing ---------------


def test_a_window_dropped_by_another_read_after_it_was_made_ready_is_not_read_empty(
    database_url, engine, sessions
):
    """Every read of a window other than the stream's first makes it ready
    (``other_window_ready``, its own transaction) and then reads it in another session
    (routes, dashboard, reports, export). With ``WINWIN_MAX_EXTRA_WINDOWS`` reached, a
    concurrent read of another window drops the least recently read one, its row and its
    credits, in between: the first read then sums no credits and answers an empty
    attribution (every count 0) for a window that has data, with a 200. The kept answer's
    tag says "incomplete", but nothing on the read path looks at it."""
    settings = Settings(database_url=database_url, max_extra_windows=1)
    now = MAY + timedelta(days=30)
    other_window_ready(sessions, settings, 7, now)  # request A: window 7 ready
    dropped: list[bool] = []

    def another_window_meanwhile(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM credit_windows" in statement and not dropped:
            dropped.append(True)  # request B, for window 14: drops window 7
            other_window_ready(sessions, settings, 14, now + timedelta(minutes=5))

    def read(s: Session) -> set[str]:
        return {r["key"] for r in attribution(s, "last_touch", 7)["rows"]}

    event.listen(engine, "after_cursor_execute", another_window_meanwhile)
    try:  # request A reads window 7 as every read path does (routes, dashboard, reports)
        keys = read_window(sessions, settings, 7, now, read)
    finally:
        event.remove(engine, "after_cursor_execute", another_window_meanwhile)
    assert dropped
    assert keys == {"c2"}  # was set(): no rows at all


# --- distinct parameters: the kept answers grow to hundreds of megabytes ------------------

BUDGET = 32 * 2**20  # what the kept answers of one database may hold, at most


def held_by(module: ModuleType) -> int:
    """Bytes of the data reachable from ``module``'s names (not modules, classes or
    functions): what it keeps, whatever shape the keeping takes."""
    seen: set[int] = set()
    stack = [v for v in vars(module).values() if not isinstance(v, ModuleType | type)]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, ModuleType | type | FunctionType):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def test_distinct_day_ranges_do_not_make_the_kept_answers_hold_hundreds_of_megabytes(tmp_path):
    """Any signed-in role may ask ``/api/v1/metrics/stages?period=day`` for up to 3,700
    days; each answer (rows, run chart, p-charts per day) is ~3 MB in memory, and
    ``answers.kept`` keeps :data:`answers.SIZE` (256) of them per database, by count
    only: about 780 MB per API process, reached with 256 requests that differ only in
    ``baseline``. Here 16 such answers already hold more than a generous budget."""
    url = f"sqlite:///{tmp_path / 'big.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        before = held_by(answers)
        with make_sessionmaker(engine)() as s:
            for day in range(1, 17):
                stage_metrics(s, "day", "2010-01-01", "2020-02-17", baseline=f"2010-01-{day:02d}")
        held = held_by(answers) - before
    finally:
        engine.dispose()
    assert held <= BUDGET, f"{held / 2**20:.0f} MB kept for 16 reads"


# --- a stage-map change skips the stream's window when a read had computed it --------------


def test_a_stage_map_change_credits_newly_counted_events_in_the_streams_window(engine, sessions):
    """``apply_stage_map`` credits newly counted events only through
    ``ensure_window(stream window)``, which returns at once when that window is recorded
    complete. It is when a read computed it (``other_window_ready`` does, for a window
    that was not the stream's when ``WINWIN_ATTRIBUTION_WINDOW_DAYS`` was another value)
    and the stream has carried it since. Then an event type newly mapped to a stage gets
    stage facts but no credits in the stream's window, which no read ever recomputes
    (reads of the stream's window never call ensure_window): attribution leaves those
    events out for good, while the stage counts include them."""
    with sessions() as s, s.begin():
        ensure_window(s, 30)  # read as another window once; the stream keeps it complete
    AttributionSink(sessions).write([record("r6-new", "something.else", MAY, person(62))], [])
    mapped = DEFAULT_STAGE_MAP.to_dict()
    mapped["use"] = [*mapped["use"], "something.else"]
    with sessions() as s, s.begin():
        apply_stage_map(s, StageMap.from_dict(mapped))
    with sessions() as s:
        rows = attribution(s, "last_touch", 30)["rows"]
        people = stage_metrics(s, "month", "2019-05", "2019-05")["rows"][0]["use"]
    assert people == 2
    assert sum(r["events"] for r in rows if r["stage"] == "use") == 2  # was 1


# --- an identity merge applied while a window is computed -----------------------------------


def test_an_identity_merge_while_a_window_is_computed_is_not_lost_for_that_window(engine, sessions):
    """The same race as a late touch, by an identity merge: ``ensure_window(7)`` read the
    visitor's event and touches, the stream then moved them to the contact (whose own
    touch c4 is the later one) and recounted both people; the window's credits, written
    from what was read before, would name the visitor and credit c2."""
    contact = person(63)
    AttributionSink(sessions).write(
        [], [touch("r6-contact", MAY - timedelta(days=1), contact, "c4")]
    )
    with sessions() as s, s.begin():
        s.add(IdentityMerge(id="m-r6", visitor_person=WHO, contact_person=contact, contact_id=1,
                            source="test", created_at=datetime.now(UTC)))  # fmt: skip
    ran: list[threading.Thread] = []

    def merge_meanwhile(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM touches" in statement and not ran:
            merge = [{"merge_id": "m-r6"}]
            ran.append(threading.Thread(target=apply_changes, args=(sessions, merge, "UTC", 30)))
            ran[0].start()
            time.sleep(0.5)  # it commits now (else it waits for this computation's last step)

    with sessions() as s, s.begin():
        event.listen(engine, "after_cursor_execute", merge_meanwhile)
        try:
            ensure_window(s, 7)
        finally:
            event.remove(engine, "after_cursor_execute", merge_meanwhile)
    ran[0].join(60)
    with sessions() as s, s.begin():
        ensure_window(s, 7)
    with sessions() as s:
        people = {p for (p,) in s.execute(select(Credit.person).where(Credit.window_days == 7))}
    assert ran and people == {contact}
    assert last_touch_keys(sessions, 7) == last_touch_keys(sessions, 30) == {"c4"}
    assert window_credits(sessions, 7) == recomputed(sessions, 7)
