"""A stage-map change: every stored event re-staged, the stage facts rebuilt, the credits
brought in line (:func:`apply_stage_map`), and the people per stage it moves.

Runs inside the caller's transaction, in batches with bulk statements; idempotent.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.orm import Session

from services.analytics import windows
from services.analytics.stage_map import save_stage_map
from services.analytics.window_credits import BATCH, credit_uncredited, restage_credits
from services.db import models
from services.db.session import changed
from services.db.upsert import insert_ignore
from services.db.values import chunks, utc
from services.domain.periods import PeriodKind, period_of
from services.domain.stages import Stage, StageMap, implied

__all__ = ["apply_stage_map", "people_per_stage", "rebuild_stage_facts", "stage_map_changes"]


def apply_stage_map(
    session: Session, stage_map: StageMap, timezone: str = "UTC", window_days: int = 30
) -> dict[str, int]:
    """Save ``stage_map`` and make every read model agree with it.

    Re-stages stored events (one bulk UPDATE per stage), rebuilds ``stage_facts`` and
    brings credits in line: credits of events that no longer count are deleted, the
    stage label of the others is rewritten (attribution does not depend on the stage),
    and newly counted events are attributed for ``window_days`` (the stream's window;
    other windows fill in on their next query). Saving the map bumps its version first:
    the stream's batches in flight commit before this goes on, and those begun since wait
    for its commit and then stage with the new map (:mod:`services.analytics.stage_map`).
    """
    E = models.EngagementEvent
    save_stage_map(session, stage_map)
    moved = 0
    for stage in Stage:
        for chunk in chunks(sorted(stage_map.types_of(stage))):
            stmt = (
                update(E)
                .where(E.type.in_(chunk), (E.stage.is_(None)) | (E.stage != stage.value))
                .values(stage=stage.value)
            )
            moved += changed(session, stmt)
    unmapped = update(E).where(E.stage.is_not(None)).values(stage=None)
    if stage_map.event_types:
        unmapped = unmapped.where(E.type.not_in(sorted(stage_map.event_types)))
    moved += changed(session, unmapped)

    deleted, restaged = restage_credits(session)
    # Newly counted events lack the stream's credits, even if a read had recorded its
    # window complete (and the stream carried it since): walked, not looked up.
    added, _ = credit_uncredited(session, window_days, timezone)
    facts = rebuild_stage_facts(session, timezone)
    # Newly counted events lack other windows' credits. Last: the sink waits on this row.
    windows.data_changed(session)
    return {
        "events": moved,
        "stage_facts": facts,
        "credits_deleted": deleted,
        "credits_restaged": restaged,
        "events_attributed": added,
    }


def people_per_stage(session: Session) -> dict[str, int]:
    """Unique people who ever reached each stage (from the month facts)."""
    F = models.StageFact
    stmt = (
        select(F.stage, func.count(F.person.distinct()))
        .where(F.period_kind == PeriodKind.MONTH.value)
        .group_by(F.stage)
    )
    found = dict(session.execute(stmt).tuples().all())
    return {stage.value: int(found.get(stage.value, 0)) for stage in Stage}


def stage_map_changes(
    old: StageMap, new: StageMap, before: dict[str, int], after: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """Per stage: event types added and removed, and people before and after."""
    return {
        stage.value: {
            "added": sorted(new.types_of(stage) - old.types_of(stage)),
            "removed": sorted(old.types_of(stage) - new.types_of(stage)),
            "people_before": before[stage.value],
            "people_after": after[stage.value],
        }
        for stage in Stage
    }


def rebuild_stage_facts(session: Session, timezone: str = "UTC") -> int:
    """Delete and re-derive every (period, stage, person) fact; returns how many."""
    E, F = models.EngagementEvent, models.StageFact
    session.execute(delete(F))
    after = ""
    while True:
        stmt = (
            select(E.event_id, E.person, E.occurred_at, E.stage)
            .where(E.event_id > after, E.stage.is_not(None), E.bot.is_(False))
            .order_by(E.event_id)
            .limit(BATCH * 5)
        )
        rows = session.execute(stmt).all()
        if not rows:
            break
        facts: set[tuple[str, str, str, str]] = set()
        for r in rows:
            at = utc(r.occurred_at)
            labels = [(kind.value, period_of(at, kind, timezone)) for kind in PeriodKind]
            for stage in implied(Stage(r.stage)):
                facts.update((kind, label, stage.value, r.person) for kind, label in labels)
        rows_out = [
            {"period_kind": k, "period": p, "stage": s, "person": who} for k, p, s, who in facts
        ]
        for chunk in chunks(rows_out, BATCH * 5):
            insert_ignore(session, cast(Table, F.__table__), chunk)
        after = rows[-1].event_id
    return session.execute(select(func.count()).select_from(F)).scalar_one()
