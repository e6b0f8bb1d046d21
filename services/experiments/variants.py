"""Content tests (A/B/n) in SQL: save and load a campaign's test, assign people at send
time, and make the decision at the decision time.

The dispatcher (through ``services/campaigns/content_tests.py``) calls :func:`assign`
with the people it is about to reach, after consent, suppression and the holdout: the
test share get their variant now; the rest go only once the decision is made, with the
chosen variant. :func:`decide` counts, per tested variant, the people and those who
converted on the metric fixed in advance (``open``: an open of this campaign's email;
a stage: a counted event of that stage or higher), each after the person's own send and
no later than the decision time, and applies the winner rule of
:func:`services.analytics.stats.choose_variant` (a variant wins only if it beats every
other at α = 0.05, Holm-adjusted; otherwise the first, "no clear winner").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from services.analytics.stats import Arm, choose_variant
from services.config import Settings
from services.db.models import EngagementEvent
from services.db.models_variants import ContentTestRow, VariantAssignment
from services.db.upsert import insert_ignore
from services.db.values import utc
from services.domain.events import format_timestamp
from services.domain.holdouts import assignment_unit
from services.domain.stages import Stage
from services.domain.variants import (
    NO_CLEAR_WINNER,
    ContentTest,
    Variant,
    converted_by,
    experiment_name,
    label,
    variant_of,
)

__all__ = ["assign", "content_test_of", "decide", "decision_of", "save_content_test"]

_ASSIGNMENTS = cast(Table, VariantAssignment.__table__)


def save_content_test(session: Session, campaign_id: str, test: ContentTest) -> None:
    variants = [asdict(v) for v in test.variants]
    session.add(ContentTestRow(campaign_id=campaign_id, variants=variants,
                               test_share=test.test_share, metric=test.metric,
                               decide_at=test.decide_at))  # fmt: skip


def content_test_of(session: Session, campaign_id: str) -> tuple[ContentTest, int | None] | None:
    """The campaign's content test and its chosen variant (``None`` until decided)."""
    row = session.get(ContentTestRow, campaign_id)
    if row is None:
        return None
    variants = tuple(Variant(**v) for v in row.variants)
    return ContentTest(variants, row.test_share, row.metric, utc(row.decide_at)), row.chosen


def decision_of(session: Session, campaign_id: str) -> dict[str, Any] | None:
    """The stored decision with its figures; ``None`` before it is made (or no test)."""
    row = session.get(ContentTestRow, campaign_id)
    return None if row is None else row.decision


def assign(
    session: Session,
    settings: Settings,
    campaign_id: str,
    found: tuple[ContentTest, int | None],
    persons: Iterable[str],
    now: datetime,
) -> dict[str, int]:
    """The variant of each of ``persons`` who goes now (the rest wait for the decision);
    each is stored with the time of assignment (the first one stays)."""
    test, chosen = found
    key = settings.secret_key.get_secret_value().encode()
    name, n = experiment_name(campaign_id), len(test.variants)
    going: dict[str, int] = {}
    rows = []
    for person in sorted(set(persons)):
        tested = variant_of(assignment_unit(key, name, person), test.test_share, n)
        variant = chosen if tested is None else tested
        if variant is None:
            continue  # the rest, before the decision
        going[person] = variant
        rows.append({"campaign_id": campaign_id, "person": person, "variant": variant,
                     "tested": tested is not None, "assigned_at": now})  # fmt: skip
    insert_ignore(session, _ASSIGNMENTS, rows)
    return going


def decide(session: Session, campaign_id: str, test: ContentTest, now: datetime) -> int:
    """Make and store the decision (once: a second dispatcher changes nothing); return
    the chosen variant."""
    people, converters = _figures(session, campaign_id, test)
    arms = [Arm(people[i], converters[i]) for i in range(len(test.variants))]
    rule = choose_variant(arms)
    chosen = cast(int, rule["winner"])
    winner = label(chosen) if rule["clear_winner"] else None
    decision = {
        "metric": test.metric,
        "decided_at": format_timestamp(now),
        "result": f"variant {winner} wins" if winner else NO_CLEAR_WINNER,
        "winner": winner,
        "chosen": label(chosen),
        "variants": [
            {"variant": label(i), "people": a.people, "converters": a.converters, "rate": a.rate}
            for i, a in enumerate(arms)
        ],  # fmt: skip
        "comparisons": [
            c | {"variant": label(c["variant"]), "against": label(c["against"])}
            for c in cast(list[dict[str, Any]], rule["comparisons"])
        ],
    }
    session.execute(
        update(ContentTestRow)
        .where(ContentTestRow.campaign_id == campaign_id, ContentTestRow.chosen.is_(None))
        .values(decided_at=now, chosen=chosen, decision=decision)
    )
    return cast(
        int, session.scalar(select(ContentTestRow.chosen).filter_by(campaign_id=campaign_id))
    )


def _figures(
    session: Session, campaign_id: str, test: ContentTest
) -> tuple[Counter[int], Counter[int]]:
    """Per tested variant: people, and people who converted on the metric in time."""
    A, E = VariantAssignment, EngagementEvent
    tested = (A.campaign_id == campaign_id, A.tested.is_(True))
    people = Counter(dict(session.execute(
        select(A.variant, func.count()).where(*tested).group_by(A.variant)).all()))  # fmt: skip
    stmt = (
        select(A.variant, A.person, A.assigned_at, E.occurred_at)
        .join(E, E.person == A.person)
        .where(*tested, E.bot.is_(False), E.occurred_at > A.assigned_at)
    )
    if test.metric == "open":
        stmt = stmt.where(E.type == "email.open", E.campaign_id == campaign_id)
    else:
        rank = Stage(test.metric).rank
        stmt = stmt.where(E.stage.in_([s.value for s in Stage if s.rank >= rank]))
    converted = {
        (variant, person)
        for variant, person, sent_at, at in session.execute(stmt)
        if converted_by(utc(sent_at), utc(at), test.decide_at)
    }
    return people, Counter(variant for variant, _ in converted)
