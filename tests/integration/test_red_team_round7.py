"""Red team, round 7: a window other than the stream's computed in steps (bef200e), the
click spool's replay (ab1271f) and migration 0031. Each test is one finding and fails on
the code it was found on. In process, on SQLite and PostgreSQL (``database_url``); no
Kafka.

What became of them: the steps were reverted (a window is computed in one transaction
again), and the tests of findings 1, 2, 5 and 6 stay as guards for any later attempt to
split that transaction. Findings 3 and 4 were older than the steps (a stage-map change or
an erasure committing while a window is computed, after it read the events): the
computation's last step, holding the stage map's version exclusively, now re-stages the
window's credits when the version moved, and credits again the people erased meanwhile
(``window_credits._set_right_what_changed``).

The steps commit each their credits; what a stream batch changed *while a step ran*
(a late touch stored after the step read the touches, before it wrote the credits) is
set right only by the last step of the same computation (``_credit_again_if_touched``,
people touched since that computation began). Before the steps, a computation that did
not reach its end rolled back, and a computation always ran its own last step.

Held (no test): the click spool's replay (a replay runs only once nothing is held, so
each spooled click is counted accepted once, and click ids are server-made, so a sender
cannot send one twice); migration 0031 (one head per branch, upgrade, downgrade of 0031
and of 0012 through its ``depends_on``, and back, on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.orm import Session, sessionmaker

from services.analytics import window_credits as computing
from services.analytics import windows
from services.analytics.metrics import attribution
from services.analytics.recompute import apply_stage_map
from services.analytics.sink import AttributionSink
from services.analytics.window_credits import other_window_ready
from services.config import Settings
from services.db.models import Contact, Credit
from services.db.session import make_sessionmaker
from services.domain.stages import DEFAULT_STAGE_MAP, StageMap
from services.privacy import erase
from tests.integration.analytics.conftest import event as record
from tests.integration.analytics.conftest import person, touch
from tests.integration.analytics.test_read_paths import recomputed, recorded, window_credits
from tests.integration.red_team import meanwhile

MAY = datetime(2019, 5, 1, tzinfo=UTC)
WHO = person(71)
LATER = timedelta(minutes=2)  # a step of 20,000 events takes seconds; 1M events, minutes


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Two people's stage events: the first (credited by the first step) touched by c2
    three days before, the second by c1."""
    sessions = make_sessionmaker(engine)
    AttributionSink(sessions).write(
        [record("r7-a", "resource.use", MAY, WHO), record("r7-b", "resource.use", MAY, person(72))],
        [
            touch("r7-early", MAY - timedelta(days=3), WHO, "c2"),
            touch("r7-other", MAY - timedelta(days=2), person(72), "c1"),
        ],  # fmt: skip
    )
    return sessions


class Clock:
    """``window_credits``' clock, moved on by ``ahead`` (a computation that began later)."""

    ahead = timedelta(0)

    class Now(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def,override]
            return datetime.now(tz) + Clock.ahead


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Clock]]:
    monkeypatch.setattr(computing, "datetime", Clock.Now)
    monkeypatch.setattr(computing, "STEP", 1)  # one event a step: r7-a, then r7-b
    Clock.ahead = timedelta(0)
    yield Clock
    Clock.ahead = timedelta(0)


def late_touch_in_the_first_step(engine: Engine, sessions: sessionmaker[Session]) -> list[bool]:
    """While the first step runs, after it read r7-a's touches and before it writes its
    credits, the stream stores a late touch (c4, the day before r7-a)."""
    ran: list[bool] = []
    sink = AttributionSink(sessions)

    def late_touch(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM touches" in statement and not ran:
            ran.append(True)
            late = touch("r7-late", MAY - timedelta(days=1), WHO, "c4")
            meanwhile(engine, lambda: sink.write([], [late]))

    event.listen(engine, "after_cursor_execute", late_touch)
    return ran


def last_touch_keys(sessions: sessionmaker[Session], days: int) -> set[str]:
    """The campaigns r7-a's use is credited to (r7-b's is c1's)."""
    with sessions() as s:
        return {r["key"] for r in attribution(s, "last_touch", days)["rows"]} - {"c1"}


def complete(sessions: sessionmaker[Session], days: int) -> bool:
    with sessions() as s:
        return windows.generation(s, days)[1]


# --- 1. two readers of one new window: the other one finishes it, the first never checks --


def test_a_window_finished_by_another_reader_between_steps_keeps_no_stale_credit(
    database_url, engine, sessions, clock
):
    """Reader A computes window 7 in steps. During its first step the stream stores a
    late touch for r7-a (c4), after A read r7-a's touches: A's step commits r7-a's
    credit with c2, stale; only A's own last step would credit r7-a again. Between A's
    steps reader B (another dashboard user, two minutes later: A's steps over 1M events
    take minutes) reads window 7 too: its steps find r7-a credited, its last step
    credits again the people touched since *B* began (the touch is older), and it
    records the window complete. A's next step then sees the window complete and stops,
    and A's last step returns at once: the window is complete with r7-a credited to c2,
    for good, where ``refresh=True`` and the stream's window say c4."""
    settings = Settings(database_url=database_url)
    reader = make_sessionmaker(engine)  # A's sessions; B's and the stream's are others
    raced = late_touch_in_the_first_step(engine, sessions)
    b_read: list[bool] = []

    def b_reads_meanwhile(session: Session) -> None:
        if raced and not b_read:
            b_read.append(True)
            clock.ahead = LATER
            other_window_ready(sessions, settings, 7, MAY + timedelta(days=30))
            clock.ahead = timedelta(0)

    event.listen(reader, "after_commit", b_reads_meanwhile)
    other_window_ready(reader, settings, 7, MAY + timedelta(days=30))
    assert raced and b_read and complete(sessions, 7)
    assert last_touch_keys(sessions, 30) == {"c4"}
    assert last_touch_keys(sessions, 7) == {"c4"}  # is {"c2"}: stale, and complete
    assert window_credits(sessions, 7) == recomputed(sessions, 7)


# --- 2. a computation that stops between steps leaves its stale credits behind ------------


def test_a_window_computation_stopped_between_steps_leaves_no_stale_credit(
    database_url, engine, sessions, clock
):
    """The same late touch during A's first step; then A stops before its last step (the
    API process restarted mid-way through a minutes-long computation, or its next step
    failed: SQLite's "database is locked", a PostgreSQL deadlock). Its committed steps
    stay, with r7-a's stale credit. Before the steps, the whole computation rolled back.
    Two minutes later the window is read again: r7-a has credits, so no step and no walk
    looks at it, and the people touched since *this* computation began are not r7-a's.
    The window is recorded complete with c2."""
    settings = Settings(database_url=database_url)
    reader = make_sessionmaker(engine)
    raced = late_touch_in_the_first_step(engine, sessions)

    def stopped(session: Session) -> None:
        if raced:
            raise RuntimeError("the API process was restarted")

    event.listen(reader, "after_commit", stopped)
    with pytest.raises(RuntimeError):
        other_window_ready(reader, settings, 7, MAY + timedelta(days=30))
    assert raced and not complete(sessions, 7)
    clock.ahead = LATER
    other_window_ready(sessions, settings, 7, MAY + timedelta(days=30))
    assert complete(sessions, 7)
    assert last_touch_keys(sessions, 7) == {"c4"}  # is {"c2"}
    assert window_credits(sessions, 7) == recomputed(sessions, 7)


# --- 3. a stage-map change while a step runs (also before the steps) ------------------------


def test_a_stage_map_change_while_a_step_runs_leaves_no_credit_of_an_uncounted_event(
    database_url, engine, sessions, clock
):
    """A step reads the uncredited stage events and their touches, then writes their
    credits. A stage-map change committing in between (``resource.use`` no longer
    counted) deletes the credits of the events it un-counts, but not those the step has
    yet to write: the step then writes r7-a's credit with stage ``use``. The last step
    credits again only people touched since and looks only for events *without*
    credits, so window 7 is recorded complete with a credit of an event that no longer
    counts (attribution counts it; ``refresh=True`` and the stream's window do not). The
    last step takes the stage map's version lock, but the steps before it do not. Before
    bef200e the one transaction recorded the generation read before the change, so the
    window stayed incomplete, but its next read (which looks only for events without
    credits) recorded it complete with the same credit: older than bef200e."""
    settings = Settings(database_url=database_url)
    unmapped = DEFAULT_STAGE_MAP.to_dict()
    unmapped["use"] = [t for t in unmapped["use"] if t != "resource.use"]
    changed: list[bool] = []

    def stage_map_change(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM touches" in statement and not changed:
            changed.append(True)
            meanwhile(engine, change)

    def change() -> None:
        with sessions() as s, s.begin():
            apply_stage_map(s, StageMap.from_dict(unmapped))

    event.listen(engine, "after_cursor_execute", stage_map_change)
    clock.ahead = LATER  # the data were stored before this read began, as they are
    other_window_ready(sessions, settings, 7, MAY + timedelta(days=30))
    other_window_ready(sessions, settings, 7, MAY + timedelta(days=30))  # the change's bump
    assert changed and complete(sessions, 7)
    with sessions() as s:
        counted_in_30 = s.scalars(select(Credit.event_id).where(Credit.window_days == 30)).all()
        counted_in_7 = s.scalars(select(Credit.event_id).where(Credit.window_days == 7)).all()
    assert counted_in_30 == []
    assert counted_in_7 == []  # is ["r7-a"]
    assert window_credits(sessions, 7) == recomputed(sessions, 7)


# --- 4. an erasure while a step runs (also before the steps) --------------------------------


def test_an_erasure_while_a_step_runs_leaves_no_credit_under_the_old_pseudonym(
    database_url, engine, sessions, clock
):
    """The same race by an erasure: the step read r7-a under the contact's pseudonym; the
    erasure, committing in between, gives every row of that pseudonym (events, touches,
    credits) a random new one; the step then writes r7-a's window-7 credit under the old
    pseudonym (derived from the person's reference: what the erasure exists to remove).
    r7-a has a credit, so no later walk looks at it, and the last step re-credits only
    people touched since: window 7 is recorded complete with the old pseudonym in it,
    for good (``refresh=True`` writes the new one). Not new in bef200e either."""
    settings = Settings(database_url=database_url)
    with sessions() as s, s.begin():
        s.add(Contact(external_id="r7-ext", pseudonym=WHO, email="r7@example.org"))
    erased: list[bool] = []

    def erasure(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM touches" in statement and not erased:
            erased.append(True)
            meanwhile(engine, erasure_now)

    def erasure_now() -> None:
        with sessions() as s, s.begin():
            erase(s, b"r7-secret", "r7-ext", Clock.Now.now(UTC))  # as the API: now

    event.listen(engine, "after_cursor_execute", erasure)
    clock.ahead = LATER  # the data were stored before this read began, as they are
    other_window_ready(sessions, settings, 7, MAY + timedelta(days=30))
    assert erased and complete(sessions, 7)
    with sessions() as s:
        holders = set(s.scalars(select(Credit.person).where(Credit.person == WHO)))
    assert holders == set()  # is {WHO}: window 7's credit of r7-a
    assert window_credits(sessions, 7) == recomputed(sessions, 7)


# --- 5. the read path of a computed window: two transactions, two lookups -------------------


def test_a_computed_window_is_made_ready_with_one_lookup_on_the_read_path(
    database_url, engine, sessions
):
    """Every read of a window other than the stream's first calls ``other_window_ready``
    (routes, dashboard, reports, export). For a window already complete that was one
    transaction with one primary-key lookup (windows.py: "checking that is one
    primary-key lookup"); the steps look it up in a transaction of their own first, and
    then ``ensure_window`` looks it up again in another: two lookups, two transactions,
    per read of every computed window."""
    settings = Settings(database_url=database_url)
    now = MAY + timedelta(days=30)
    other_window_ready(sessions, settings, 7, now)
    with recorded(engine) as seen:
        other_window_ready(sessions, settings, 7, now + timedelta(seconds=1))
    lookups = [sql for sql, _ in seen if "FROM credit_windows" in sql]
    assert len(lookups) == 1, lookups  # is 2


# --- 6. a window looked at once more is walked twice ---------------------------------------


def test_a_window_the_stream_passed_over_is_walked_once_when_read_again(
    database_url, engine, sessions
):
    """A kept window the stream passed over (its row held by a read, windows.py) is
    looked at once more by its next read: before the steps, one anti-join walk over
    every stage event, which finds the few it lacks. Now the steps walk every event
    (a transaction per 20,000) and then the last step walks every event again: at 1M
    events, two full anti-join walks for the one event the stream left out."""
    settings = Settings(database_url=database_url)
    now = MAY + timedelta(days=30)
    other_window_ready(sessions, settings, 7, now)
    with sessions() as s, s.begin():  # the stream passed it over: stored, not credited in 7
        s.execute(delete(Credit).where(Credit.window_days == 7, Credit.event_id == "r7-b"))
        windows.data_changed(s)
    with recorded(engine) as seen:
        other_window_ready(sessions, settings, 7, now)
    assert complete(sessions, 7)
    walks = [  # from the first event id, over every person's events
        p for sql, p in seen if "NOT (EXISTS" in sql and "person IN" not in sql and "" in _values(p)
    ]
    assert len(walks) == 1, walks  # is 2: from the first event id, twice


def _values(parameters: object) -> list[object]:
    """A statement's parameters, whatever the driver's shape (tuple or dict)."""
    if isinstance(parameters, dict):
        return list(parameters.values())
    return list(parameters) if isinstance(parameters, tuple | list) else []
