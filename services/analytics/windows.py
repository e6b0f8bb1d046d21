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

The stream's sink keeps the windows already computed complete as it goes: it credits
each batch's stage events in every window it found recorded when the batch began
(:func:`recorded`), and after its bump moves each of those windows that was complete
for the generation before it on to its own (:func:`carried`). Reading another window
while the stream writes is then one lookup too, not a walk over every stage event; a
window recorded while the batch ran is not carried, so it is looked at once more.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.db.models_reads import CreditWindow
from services.db.upsert import increment, upsert

__all__ = ["STORED", "carried", "data_changed", "generation", "mark_computed", "recorded"]

STORED = 0  # the window_days of the row holding the stored data's generation


def data_changed(session: Session) -> int:
    """Counted events may lack credits in some window: every window is to be checked.
    Returns the new generation (this transaction holds its row until it ends)."""
    W = CreditWindow
    increment(session, W.__table__, {"window_days": STORED}, "generation")
    return session.execute(select(W.generation).where(W.window_days == STORED)).scalar_one()


def recorded(session: Session) -> dict[int, int]:
    """Every window computed so far, with the generation it is complete for."""
    W = CreditWindow
    stmt = select(W.window_days, W.generation).where(W.window_days != STORED)
    return dict(session.execute(stmt).tuples().all())


def carried(session: Session, credited: Iterable[int], current: int) -> None:
    """The change that made generation ``current`` credited its events in the windows
    ``credited`` too: those complete for the generation before are complete for it."""
    W = CreditWindow
    if days := sorted(credited):
        session.execute(
            update(W)
            .where(W.window_days.in_(days), W.generation == current - 1)
            .values(generation=current)
        )


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
