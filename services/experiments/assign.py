"""Holdouts at send time: assign everyone eligible, keep the controls from the message.

The dispatcher (email campaigns) and the journey runner call :func:`held_out` with the
people they are about to reach, after consent and suppression, inside the transaction
that claims them. Everyone is assigned and stored with the time of assignment (the
first one stays); the function returns the people to hold out: the controls of the
experiment, and anybody in the global holdout (``WINWIN_GLOBAL_HOLDOUT_SHARE``), who is
kept from all outreach and not counted in the experiment.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from services.config import Settings
from services.db.models_experiments import HoldoutAssignment, HoldoutRow
from services.db.upsert import insert_ignore
from services.domain.holdouts import CONTROL, GLOBAL, Holdout, arm_of, assignment_unit

__all__ = ["held_out", "holdout_of", "save_holdout"]

_ASSIGNMENTS = cast(Table, HoldoutAssignment.__table__)


def holdout_of(session: Session, kind: str, subject_id: str) -> Holdout | None:
    """The holdout of a campaign or journey, if it has one."""
    row = session.get(HoldoutRow, (kind, subject_id))
    return None if row is None else Holdout(row.share, row.window_days)


def save_holdout(session: Session, kind: str, subject_id: str, holdout: Holdout) -> None:
    session.add(HoldoutRow(kind=kind, subject_id=subject_id, share=holdout.share,
                           window_days=holdout.window_days))  # fmt: skip


def held_out(
    session: Session,
    settings: Settings,
    kind: str,
    subject_id: str,
    persons: Iterable[str],
    now: datetime,
) -> set[str]:
    """Assign ``persons`` (eligible now) and return those who get no message."""
    key = settings.secret_key.get_secret_value().encode()
    persons = sorted(set(persons))
    share = settings.global_holdout_share
    kept = {p for p in persons if share and assignment_unit(key, GLOBAL, p) < share}
    rows = [_row("global", "all", p, CONTROL, now) for p in sorted(kept)]
    holdout = holdout_of(session, kind, subject_id)
    if holdout is not None:
        name = f"{kind}:{subject_id}"
        for person in persons:
            if person in kept:
                continue
            arm = arm_of(assignment_unit(key, name, person), holdout.share)
            rows.append(_row(kind, subject_id, person, arm, now))
            if arm == CONTROL:
                kept.add(person)
    insert_ignore(session, _ASSIGNMENTS, rows)
    return kept


def _row(kind: str, subject_id: str, person: str, arm: str, now: datetime) -> dict[str, object]:
    return {"kind": kind, "subject_id": subject_id, "person": person, "arm": arm,
            "assigned_at": now}  # fmt: skip
