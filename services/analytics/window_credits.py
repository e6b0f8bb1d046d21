"""Credits of an attribution window other than the stream's.

Computed on the window's first read (:func:`other_window_ready`, in steps; or
:func:`ensure_window`, in the caller's transaction), kept complete by the stream
(:mod:`services.analytics.windows`), read with :func:`read_window`. Also the one lookup of a
batch's touches (:func:`touches_of`) that the sink and the recomputations share.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Select, Table, delete, literal, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.analytics import windows
from services.analytics.credit_rows import credit_rows
from services.analytics.stage_map import stage_map_version, version_in_force
from services.config import Settings
from services.db import models
from services.db.models_consent import ErasedPseudonym
from services.db.models_journeys import IdentityMerge
from services.db.session import changed
from services.db.upsert import insert_ignore
from services.db.values import chunks, utc
from services.domain.attribution import Touch, TouchHistory

__all__ = [
    "BATCH",
    "STEP",
    "credit_uncredited",
    "ensure_window",
    "other_window_ready",
    "read_window",
    "restage_credits",
    "stored_touch",
    "touch_columns",
    "touches_of",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
BATCH = 2000  # events per round trip


def ensure_window(
    session: Session,
    window_days: int,
    timezone: str = "UTC",
    refresh: bool = False,
    *,
    kept: windows.Kept | None = None,
    now: datetime | None = None,
) -> int:
    """Credit, for ``window_days``, every counted stage event that has no credit for it.

    Returns the number of events attributed. A window already computed for the stored
    data (:mod:`services.analytics.windows`) costs one lookup (and, with ``now``, once a
    minute, recording the read); else an anti-join walked in event-id order probes each
    event's credits by the primary key (events whose credits a late touch dropped are
    found again). With ``kept``, a window new to the table drops the least recently read
    one beyond ``kept.most``. ``refresh=True`` drops this window's credits and
    recomputes them all. All in this one transaction (:func:`other_window_ready`
    computes a window in steps).
    """
    if window_days <= 0:
        raise ValueError(f"window_days must be positive, got {window_days!r}")
    found = windows.look_up(session, window_days)
    if found.complete and not refresh:
        if now is not None:
            windows.mark_read(session, found, window_days, now)
        return 0
    if refresh:
        C = models.Credit
        session.execute(delete(C).where(C.window_days == window_days))
    done, _ = _compute(session, window_days, timezone, found, kept=kept, now=now)
    if refresh:  # answers kept for this window are stale (last: the sink waits on the row)
        windows.data_changed(session)
    return done


def _compute(
    session: Session,
    window_days: int,
    timezone: str,
    found: windows.Found,
    *,
    kept: windows.Kept | None,
    now: datetime | None,
    started: datetime | None = None,
    after: str = "",
    most: int | None = None,
) -> tuple[int, str | None]:
    """One transaction of ``window_days``' computation: credits at most ``most`` (else
    every) uncredited events after ``after``. Returns how many, and where the next step
    goes on from; ``None`` when this transaction finished the window: it walked again
    from the start if earlier steps did (their cursor passed by events stored since; a
    window dropped meanwhile lost its credits: past ``most`` more, the next step starts
    over), set right what changed since the computation began
    (:func:`_set_right_what_changed`) and recorded the window complete for the
    generation ``found`` read at its start."""
    computing = windows.begin_computing(
        session, window_days, started or datetime.now(UTC), stage_map_version(session), now
    )
    done, last = credit_uncredited(session, window_days, timezone, after=after, most=most)
    if most is not None and done >= most:
        return done, last
    if after:
        again, _ = credit_uncredited(session, window_days, timezone, most=most)
        done += again
        if most is not None and again >= most:
            return done, ""  # from the start: a walk that ends in one step finishes
    _set_right_what_changed(session, window_days, timezone, computing)
    if kept is not None and not found.kept:
        dropped = windows.make_room(session, window_days, kept)
        if dropped:
            log.info("dropped the credits of the least recently read windows %s", dropped)
    windows.mark_computed(session, window_days, found.current, now)
    if done:
        log.info("attributed %d events for a %d-day window", done, window_days)
    return done, None


#: How far before a computation began a touch's arrival (the sink's clock) may be and
#: still have been missed by it: clocks of the API and the worker's hosts may differ.
CLOCK_MARGIN = timedelta(minutes=1)
MERGE_MARGIN = timedelta(hours=1)


def _set_right_what_changed(
    session: Session, window_days: int, timezone: str, computing: windows.Computing
) -> None:
    """What committed while this window was computed (since ``computing.since``: the
    earliest unfinished computation's start, even one that stopped), after it read the
    events or touches it changed, left credits that a later look (for events *without*
    credits) would not find. Holding off the stream's batches (and stage-map changes)
    until this transaction ends, they are set right now:

    * a stage-map change: the window's credits of events that no longer count go, and
      the others take their event's stage (what the change did to the other windows);
    * a late touch stored by the stream, an identity merge or its undo, an erasure (a
      new pseudonym for every row of a person): the credits of the people concerned, and
      of their events, are written again from their touches now.
    """
    if version_in_force(session, alone=True) != computing.map_version:
        restage_credits(session, window_days)
    C, E, T, M = models.Credit, models.EngagementEvent, models.Touch, IdentityMerge
    started, since = computing.since, computing.since - CLOCK_MARGIN
    # No DISTINCT: with it SQLite walks ix_touches_person_time (sorted by person) in full.
    persons = set(session.scalars(select(T.person).where(T.received_at >= since)))
    # An identity merge (or its undo) applied meanwhile moved events and touches between
    # two people: both are credited again. Applied by the stream, maybe well after it was
    # asked for: those asked for within the last hour are taken.
    merged = select(M.visitor_person, M.contact_person).where(
        (M.created_at >= started - MERGE_MARGIN) | (M.undone_at >= started - MERGE_MARGIN)
    )
    for visitor, contact in session.execute(merged):
        persons |= {visitor, contact}
    # An erasure's credits written meanwhile are under the old pseudonym, their events
    # under the new one (``erased_at``: the API's clock).
    erased = select(ErasedPseudonym.new_pseudonym).where(ErasedPseudonym.erased_at >= since)
    persons |= set(session.scalars(erased))
    for chunk in chunks(sorted(persons)):
        theirs = select(E.event_id).where(E.person.in_(chunk))
        session.execute(delete(C).where(
            C.window_days == window_days, C.person.in_(chunk) | C.event_id.in_(theirs)))  # fmt: skip
        credit_uncredited(session, window_days, timezone, chunk)


def credit_uncredited(
    session: Session,
    window_days: int,
    timezone: str,
    persons: Sequence[str] | None = None,
    *,
    after: str = "",
    most: int | None = None,
) -> tuple[int, str]:
    """Credit every counted stage event without credits in ``window_days`` (of
    ``persons`` only, if given), in batches, in event-id order after ``after``; at most
    ``most`` events. Returns how many, and the last event id."""
    C, E = models.Credit, models.EngagementEvent
    done = 0
    whose = [E.person.in_(persons)] if persons is not None else []
    while most is None or done < most:
        stmt = (
            select(E.event_id, E.person, E.occurred_at, E.stage)
            .where(E.event_id > after, E.stage.is_not(None), E.bot.is_(False), *whose)
            .where(~credited(window_days).exists())
            .order_by(E.event_id)
            .limit(BATCH if most is None else min(BATCH, most - done))
        )
        events = [
            {
                "event_id": r.event_id,
                "person": r.person,
                "occurred_at": utc(r.occurred_at),
                "stage": r.stage,
            }
            for r in session.execute(stmt)
        ]
        if not events:
            break
        touches = touches_of(session, events, window_days)
        rows = [
            row
            for e in events
            for row in credit_rows(e, touches.get(e["person"], []), window_days, timezone)
        ]
        for chunk in chunks(rows, BATCH * 2):
            insert_ignore(session, cast(Table, C.__table__), chunk)
        done += len(events)
        after = events[-1]["event_id"]
    return done, after


def other_window_ready(
    sessions: sessionmaker[Session], settings: Settings, window_days: int, now: datetime
) -> None:
    """Credits for ``window_days`` when it is not the stream's: computed if missing,
    keeping at most ``WINWIN_MAX_EXTRA_WINDOWS`` such windows (what every read does).

    A window is computed in steps of :data:`STEP` events, a transaction each (on SQLite
    each holds the one write lock, and the stream's batches commit in between). Its row
    keeps since when an unfinished computation's credits may be stale, so whichever
    computation finishes it (this one, or another read's, after this one stopped) sets
    right what changed since (:func:`windows.begin_computing`)."""
    if window_days == settings.attribution_window_days:
        return
    kept = windows.Kept(settings.attribution_window_days, settings.max_extra_windows)
    started = datetime.now(UTC)
    after: str | None = ""
    while after is not None:
        with sessions() as session, session.begin():
            found = windows.look_up(session, window_days)
            if found.complete:  # (also: another read finished it)
                windows.mark_read(session, found, window_days, now)
                return
            _, after = _compute(session, window_days, settings.timezone, found, kept=kept,
                                now=now, started=started, after=after, most=STEP)  # fmt: skip
            one_writer = session.get_bind().dialect.name == "sqlite"
        if after is not None and one_writer:
            time.sleep(SQLITE_PAUSE)


#: Events a computation in steps credits per transaction: about a second's work (at 1M
#: events on SQLite, the stream's batches then took 0.64 s at the median, 3.3 s at most;
#: 2.9 s and 12 s with 20,000).
STEP = 5_000
#: SQLite: a pause between steps, for the writers that waited for one to take the lock
#: (their busy handler polls every 100 ms at most; without it the next step took the lock
#: first, and a stream batch waited up to 14 s).
SQLITE_PAUSE = 0.1


READ_TRIES = 3


def read_window(
    sessions: sessionmaker[Session],
    settings: Settings,
    window_days: int,
    now: datetime,
    read: Callable[[Session], T],
) -> T:
    """``read`` of the credits of ``window_days``, made ready first
    (:func:`other_window_ready`). Ready and read are two transactions, and a concurrent
    read of yet another window may drop this one in between (``WINWIN_MAX_EXTRA_WINDOWS``):
    its answer would count no credits, so it is made ready and read again."""
    for _ in range(READ_TRIES - 1):
        other_window_ready(sessions, settings, window_days, now)
        with sessions() as session:
            answer = read(session)
            if window_days == settings.attribution_window_days:
                return answer
            if windows.look_up(session, window_days).kept:
                return answer
        log.info("the %d-day window was dropped while read: reading it again", window_days)
    other_window_ready(sessions, settings, window_days, now)
    with sessions() as session:
        return read(session)


def credited(window_days: int) -> Select[int]:
    """An event's credits in ``window_days``, correlated to ``engagement_events``, for
    each event to probe the primary key (event_id, window_days, touch_id). ``OFFSET 0``
    keeps PostgreSQL from making it a join over all the window's credits, and the window
    compared as ``window_days + 0`` leaves the key the only index to probe: while a new
    window is computed its statistics say it is empty, and PostgreSQL probed
    ``ix_credits_window_month`` (window = 7, then a filter on the event) — every probe a
    scan of the window's credits so far, 60 s at 150k events, minutes at 1M."""
    C, E = models.Credit, models.EngagementEvent
    return (
        select(literal(1))
        .where(C.event_id == E.event_id, (C.window_days + 0) == window_days)
        .offset(0)
    )


def touches_of(
    session: Session, events: Sequence[dict[str, Any]], window_days: int
) -> dict[str, TouchHistory]:
    """Each person's touches that can fall in the window of one of their events (the
    sink's and the recomputations' one lookup)."""
    T = models.Touch
    span: dict[str, tuple[datetime, datetime]] = {}
    for e in events:
        lo, hi = span.get(e["person"], (e["occurred_at"], e["occurred_at"]))
        span[e["person"]] = (min(lo, e["occurred_at"]), max(hi, e["occurred_at"]))
    window = timedelta(days=window_days)
    found: dict[str, list[Touch]] = defaultdict(list)
    for chunk in chunks(sorted(span)):
        lo = min(span[p][0] for p in chunk) - window
        hi = max(span[p][1] for p in chunk)
        stmt = select(*touch_columns()).where(
            T.person.in_(chunk), T.occurred_at > lo, T.occurred_at <= hi
        )
        for r in session.connection().execute(stmt):  # Core rows: no ORM loading
            found[r.person].append(stored_touch(r))
    return {who: TouchHistory(touches) for who, touches in found.items()}


def touch_columns() -> tuple[Any, ...]:
    """The ``touches`` columns :func:`stored_touch` reads (and the person)."""
    T = models.Touch
    return (T.touch_id, T.person, T.campaign_id, T.channel, T.messenger_id, T.occurred_at,
            T.received_at)  # fmt: skip


def stored_touch(r: Any) -> Touch:
    """The domain's touch of a stored row (its arrival too: it orders simultaneous touches)."""
    received = utc(r.received_at) if r.received_at is not None else None
    return Touch(r.touch_id, r.campaign_id, r.channel, r.messenger_id, utc(r.occurred_at), received)


def restage_credits(session: Session, window_days: int | None = None) -> tuple[int, int]:
    """Credits (of ``window_days``, or all) in line with their events' stages: those of
    events that no longer count are deleted, the others take their event's stage
    (attribution does not depend on it). Returns (deleted, restaged)."""
    E, C = models.EngagementEvent, models.Credit
    which = [C.window_days == window_days] if window_days is not None else []
    not_counted = select(E.event_id).where((E.stage.is_(None)) | E.bot.is_(True))
    deleted = changed(session, delete(C).where(C.event_id.in_(not_counted), *which))
    current = select(E.stage).where(E.event_id == C.event_id).scalar_subquery()
    restage = update(C).where(C.stage != current, *which).values(stage=current)
    return deleted, changed(session, restage)
