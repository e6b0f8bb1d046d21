"""Which attribution windows are computed, so that reading one never rescans.

The stored data has a generation (``credit_windows`` row 0). Whatever can leave a
counted stage event without credits in some window bumps it, in the same transaction:
the stream's sink when it stores stage events or drops credits a late touch made
wrong (:meth:`~services.analytics.sink.AttributionSink.write`), and a stage-map change.
:func:`~services.analytics.window_credits.ensure_window` reads the generation *before* it
looks for uncredited events and records it for the window when done: a window whose
generation is current is complete, and checking that is one primary-key lookup.

A writer that commits while a window is being computed bumps the generation past the
one recorded, so the next read looks again: a change is never lost, at worst looked
for twice.

The stream's sink keeps the windows already computed complete as it goes: it credits
each batch's stage events in every window it found recorded when the batch began
(:func:`recorded`), and after its bump moves each of those windows that was complete
for the generation before it on to its own (:func:`carried`). Reading another window
while the stream writes is then one lookup too, not a walk over every stage event; a
window recorded while the batch ran is not carried, so it is looked at once more.

Windows other than the stream's are kept up to a bound (:class:`Kept`,
``WINWIN_MAX_EXTRA_WINDOWS``): computing one more drops the least recently read, its
row first and then its credits (:func:`make_room`). A read records its time at most
once a minute (:func:`mark_read`). A window being computed holds its row
(:func:`begin_computing`, in each step), so it is dropped only between steps, never
halfway through one; a dropped window read again is computed anew, and its generation
tag (:func:`generation`) says incomplete meanwhile, so no answer kept for it is served
from :mod:`services.analytics.answers`.

A window is computed in steps, a transaction each (a read,
:func:`~services.analytics.window_credits.other_window_ready`). Credits a step committed may
be stale by the time the window is finished (a late touch, a merge, an erasure or a
stage-map change that committed while the step ran), and the computation may stop
before its end. So its row says, until the window is complete, since when and with
which stage map an unfinished computation wrote credits (the first of them: the
earliest), and whichever computation finishes the window sets right what changed since.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from services.db.models import Credit
from services.db.models_reads import CreditWindow
from services.db.upsert import increment, upsert, upsert_first
from services.db.values import utc

__all__ = [
    "COMPUTING",
    "STORED",
    "Computing",
    "Found",
    "Kept",
    "begin_computing",
    "carried",
    "data_changed",
    "generation",
    "look_up",
    "make_room",
    "mark_computed",
    "mark_read",
    "recorded",
]

STORED = 0  # the window_days of the row holding the stored data's generation
COMPUTING = -1  # the generation of a window's row made by its first step: no data's
READ_EVERY = timedelta(minutes=1)  # a read's time is recorded at most this often


@dataclass(frozen=True)
class Kept:
    """Which windows' credits are kept: the stream's, and at most ``most`` others."""

    stream: int
    most: int


@dataclass(frozen=True)
class Found:
    """One window's row: the stored data's generation, whether the window is kept
    (has a row), complete for that generation, and when it was last read."""

    current: int
    kept: bool
    complete: bool
    read_at: datetime | None


@dataclass(frozen=True)
class Computing:
    """An unfinished computation of a window (:func:`begin_computing`): since when its
    credits may be stale, and the stage map's version they were written with."""

    since: datetime
    map_version: int


def data_changed(session: Session) -> int:
    """Counted events may lack credits in some window: every window is to be checked.
    Returns the new generation (this transaction holds its row until it ends)."""
    W = CreditWindow
    increment(session, W.__table__, {"window_days": STORED}, "generation")
    return session.execute(select(W.generation).where(W.window_days == STORED)).scalar_one()


def recorded(session: Session) -> dict[int, int]:
    """Every window computed so far, with the generation it is complete for, locked
    against being dropped until this transaction ends (PostgreSQL: ``FOR KEY SHARE``,
    which lets other batches carry it too). A window being computed right now holds its
    row (:func:`begin_computing`) and is passed over: that computation credits it."""
    W = CreditWindow
    stmt = (
        select(W.window_days, W.generation)
        .where(W.window_days != STORED)
        .with_for_update(read=True, key_share=True, skip_locked=True)
    )
    return dict(session.execute(stmt).tuples().all())


def carried(session: Session, credited: Iterable[int], current: int) -> None:
    """The change that made generation ``current`` credited its events in the windows
    ``credited`` too: those complete for the generation before are complete for it."""
    W = CreditWindow
    if days := sorted(credited):
        # A window being computed holds its row (:func:`begin_computing`): it is passed over, not
        # waited for (the stream must not wait on a read), and looked at once more. Other
        # batches' key-share locks (:func:`recorded`) do not stand in the way.
        free = (
            select(W.window_days)
            .where(W.window_days.in_(days), W.generation == current - 1)
            .with_for_update(key_share=True, skip_locked=True)
        )
        rows = list(session.scalars(free))
        if rows:
            session.execute(update(W).where(W.window_days.in_(rows)).values(generation=current))


def look_up(session: Session, window_days: int) -> Found:
    """The generation and ``window_days``' row (one lookup by primary key)."""
    W = CreditWindow
    stmt = select(W.window_days, W.generation, W.read_at).where(
        W.window_days.in_((STORED, window_days))
    )
    rows = {r.window_days: r for r in session.execute(stmt)}
    current = rows[STORED].generation if STORED in rows else 0
    row = rows.get(window_days) if window_days != STORED else None
    if row is None or row.generation == COMPUTING:  # never finished: not kept yet
        return Found(current, False, False, None)
    read_at = utc(row.read_at) if row.read_at is not None else None
    return Found(current, True, row.generation == current, read_at)


def generation(session: Session, window_days: int) -> tuple[int, bool]:
    """The stored data's generation and whether ``window_days`` is computed for it (one
    lookup by primary key)."""
    found = look_up(session, window_days)
    return found.current, found.complete


def begin_computing(
    session: Session,
    window_days: int,
    started: datetime,
    map_version: int,
    now: datetime | None = None,
) -> Computing:
    """A step of ``window_days``' computation begins: its row is created (incomplete,
    read ``now``: not the first to drop) if missing and locked until commit, once the
    stream's batches that credit it have committed (PostgreSQL: ``FOR UPDATE``; they
    hold it ``FOR KEY SHARE``; those begun since pass it over, so no batch writes its
    credits meanwhile, and it is not dropped meanwhile). An earlier, unfinished
    computation's start and stage-map version stay. Returns them: whoever finishes the
    window sets right what changed since (:func:`services.analytics.recompute`)."""
    W = CreditWindow
    session.execute(select(W.window_days).where(W.window_days == window_days).with_for_update())
    row = {"window_days": window_days, "generation": COMPUTING, "computing_since": started,
           "computing_map_version": map_version, "read_at": now}  # fmt: skip
    first = ["computing_since", "computing_map_version"]
    since, version = upsert_first(session, CreditWindow.__table__, row, ["window_days"], first)
    return Computing(utc(since), version)


def mark_read(session: Session, found: Found, window_days: int, now: datetime) -> None:
    """Record that ``window_days`` was read at ``now``, unless it was within a minute."""
    if found.read_at is None or now - found.read_at >= READ_EVERY:
        W = CreditWindow
        session.execute(update(W).where(W.window_days == window_days).values(read_at=now))


def make_room(session: Session, window_days: int, kept: Kept) -> list[int]:
    """Drop the least recently read windows other than the stream's, so that with
    ``window_days`` at most ``kept.most`` are kept: each one's row, then its credits.
    A window being computed (its row held) is passed over. Returns the windows dropped."""
    W = CreditWindow
    others = W.window_days.not_in((STORED, kept.stream, window_days))
    count = session.execute(select(func.count()).select_from(W).where(others)).scalar_one()
    excess = count - kept.most + 1
    if excess <= 0:
        return []
    oldest = (
        select(W.window_days)
        .where(others)
        .order_by(W.read_at.is_not(None), W.read_at, W.window_days)
        .limit(excess)
        .with_for_update(skip_locked=True)
    )
    dropped = list(session.scalars(oldest))
    for days in dropped:
        session.execute(delete(W).where(W.window_days == days))
        session.execute(delete(Credit).where(Credit.window_days == days))
    return dropped


def mark_computed(
    session: Session, window_days: int, current: int, now: datetime | None = None
) -> None:
    """Record that ``window_days`` is complete for the data of generation ``current``
    (and, with ``now``, read then)."""
    row: dict[str, object] = {"window_days": window_days, "generation": current,
                              "computing_since": None, "computing_map_version": None}  # fmt: skip
    if now is not None:
        row["read_at"] = now
    upsert(session, CreditWindow.__table__, [row], ["window_days"])
