"""The lift of a holdout, analysed as assigned (intention to treat).

Per arm: the people assigned and, per stage, those who converted (a counted event of
that stage or higher in ``(assigned_at, assigned_at + window]``). Per stage: the
statistics of :func:`services.analytics.stats.lift`; the sample-ratio check; and
``complete``, false until the window has passed for everyone assigned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.analytics.stats import Arm, lift, sample_ratio
from services.db.models import EngagementEvent
from services.db.models_experiments import HoldoutAssignment
from services.db.values import utc
from services.domain.holdouts import CONTROL, TREATMENT, Holdout, converted, window_closed
from services.domain.stages import Stage
from services.experiments.assign import holdout_of

__all__ = ["experiment_lift"]

STAGES = [s.value for s in Stage]
ARMS = (TREATMENT, CONTROL)


def experiment_lift(
    session: Session, kind: str, subject_id: str, now: datetime
) -> dict[str, Any] | None:
    """The lift report of a campaign's or journey's holdout; ``None`` without one."""
    holdout = holdout_of(session, kind, subject_id)
    if holdout is None:
        return None
    people, last = _people(session, kind, subject_id)
    converters = _converters(session, kind, subject_id, holdout)
    arms = {arm: {"people": people.get(arm, 0), **converters[arm]} for arm in ARMS}
    as_arms = {arm: {s: Arm(arms[arm]["people"], arms[arm][s]) for s in STAGES} for arm in ARMS}
    return {
        "share": holdout.share,
        "window_days": holdout.window_days,
        "complete": window_closed(last, holdout.window, now),
        "arms": arms,
        "stages": lift(STAGES, as_arms[TREATMENT], as_arms[CONTROL]),
        "srm": sample_ratio(people.get(TREATMENT, 0), people.get(CONTROL, 0), holdout.share),
    }


def _people(session: Session, kind: str, subject_id: str) -> tuple[dict[str, int], datetime | None]:
    A = HoldoutAssignment
    stmt = (
        select(A.arm, func.count(), func.max(A.assigned_at))
        .where(A.kind == kind, A.subject_id == subject_id)
        .group_by(A.arm)
    )
    rows = session.execute(stmt).all()
    last = max((utc(at) for _, _, at in rows), default=None)
    return {arm: n for arm, n, _ in rows}, last


def _converters(
    session: Session, kind: str, subject_id: str, holdout: Holdout
) -> dict[str, dict[str, int]]:
    """Per arm and stage, the people with a counted event of that stage or higher in
    their window (windows are checked here: SQL dialects differ in date arithmetic)."""
    A, E = HoldoutAssignment, EngagementEvent
    stmt = (
        select(A.arm, A.person, A.assigned_at, E.stage, E.occurred_at)
        .join(E, E.person == A.person)
        .where(A.kind == kind, A.subject_id == subject_id)
        .where(E.stage.is_not(None), E.bot.is_(False), E.occurred_at > A.assigned_at)
    )
    best: dict[tuple[str, str], int] = {}
    for arm, person, assigned_at, stage, occurred_at in session.execute(stmt):
        if converted(utc(assigned_at), utc(occurred_at), holdout.window):
            rank = Stage(stage).rank
            best[(arm, person)] = max(best.get((arm, person), 0), rank)
    counts = {arm: dict.fromkeys(STAGES, 0) for arm in ARMS}
    for (arm, _), rank in best.items():
        for s in Stage:
            if s.rank <= rank and arm in counts:
                counts[arm][s.value] += 1
    return counts
