"""Which attribution windows are computed, so that reading one never rescans.

The stored data has a generation (``credit_windows`` row 0). Whatever can leave a
counted stage event without credits in some window bumps it, in the same transaction:
the stream's sink when it stores stage events or drops credits a late touch made
wrong (:meth:`~services.analytics.sink.AttributionSink.write`), and a stage-map change.
:func:`~services.analytics.recompute.ensure_window` reads the generation *before* it
looks for uncredited events and records it for the window when done: a window whose
generation is current is complete, and checking that is one primary-key lookup.

A writer that commits while a window is being computed bumps the generation past the
one recorded, so the next read looks again: a change is never lost, at worst looked
for twice.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.db.models_reads import CreditWindow
from services.db.upsert import increment, upsert

__all__ = ["STORED", "data_changed", "generation", "mark_computed"]

STORED = 0  # the window_days of the row holding the stored data's generation


def data_changed(session: Session) -> None:
    """Counted events may lack credits in some window: every window is to be checked."""
    increment(session, CreditWindow.__table__, {"window_days": STORED}, "generation")


def generation(session: Session, window_days: int) -> tuple[int, bool]:
    """The stored data's generation and whether ``window_days`` is computed for it (one
    lookup by primary key)."""
    W = CreditWindow
    stmt = select(W.window_days, W.generation).where(W.window_days.in_((STORED, window_days)))
    found = dict(session.execute(stmt).tuples().all())
    current = found.get(STORED, 0)
    return current, found.get(window_days) == current


def mark_computed(session: Session, window_days: int, current: int) -> None:
    """Record that ``window_days`` is complete for the data of generation ``current``."""
    upsert(
        session,
        CreditWindow.__table__,
        [{"window_days": window_days, "generation": current}],
        ["window_days"],
    )
