"""The global holdout's report: the lift of outreach as a whole, month by month.

``WINWIN_GLOBAL_HOLDOUT_SHARE`` keeps a fixed share of people out of all outreach (the
assignment of :mod:`services.experiments.assign`, deterministic per person, so it is
worked out here for everyone, not only for those a send reached). For each month from
``from`` to ``to``: the people eligible (contacts with confirmed email consent, as of
now: the arms are random, so a person counted before they joined dilutes both alike),
split into the held-out and everyone else, and per stage those who reached it (or a
higher one) in any month since ``from`` up to that month: the lift is cumulative. Rates, difference with its 95% interval and p-values are those of
:func:`services.analytics.stats.lift`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.analytics.metrics import QueryError, parse_label
from services.analytics.stats import Arm, lift
from services.config import Settings
from services.db.models import Contact, StageFact
from services.domain.consent import Consent
from services.domain.holdouts import CONTROL, GLOBAL, TREATMENT, assignment_unit
from services.domain.periods import PeriodKind, period_range
from services.domain.stages import Stage

__all__ = ["MAX_MONTHS", "global_lift"]

STAGES = [s.value for s in Stage]
MAX_MONTHS = 36
ELIGIBLE = "eligible: contacts with confirmed email consent"


def global_lift(session: Session, settings: Settings, start: str, end: str) -> dict[str, Any]:
    """``{"share", "from", "to", "eligible", "months": [{"month", "arms", "stages"}]}``."""
    months = _months(start, end)
    share = settings.global_holdout_share
    key = settings.secret_key.get_secret_value().encode()
    people = session.scalars(
        select(Contact.pseudonym).where(Contact.email_consent == Consent.CONFIRMED.value)
    )
    arm = {p: CONTROL if share and assignment_unit(key, GLOBAL, p) < share else TREATMENT
           for p in people}  # fmt: skip
    sizes = {a: sum(1 for x in arm.values() if x == a) for a in (TREATMENT, CONTROL)}
    reached: dict[str, dict[str, str]] = {s: {} for s in STAGES}  # stage -> person -> month
    facts = select(StageFact.period, StageFact.stage, StageFact.person).where(
        StageFact.period_kind == PeriodKind.MONTH.value, StageFact.period.in_(months)
    )
    for month, stage, person in session.execute(facts):
        if person in arm and stage in reached:
            first = reached[stage].get(person)
            reached[stage][person] = month if first is None else min(first, month)
    rows = [_month(m, sizes, arm, reached) for m in months]
    return {"share": share, "from": months[0], "to": months[-1], "eligible": ELIGIBLE,
            "months": rows}  # fmt: skip


def _months(start: str, end: str) -> list[str]:
    first = parse_label(start, PeriodKind.MONTH, "from")
    last = parse_label(end, PeriodKind.MONTH, "to")
    if first > last:
        raise QueryError("to", f"to: {last!r} is before from {first!r}")
    months = period_range(first, last, PeriodKind.MONTH)
    if len(months) > MAX_MONTHS:
        raise QueryError("to", f"to: range longer than {MAX_MONTHS} months")
    return months


def _month(
    month: str, sizes: dict[str, int], arm: dict[str, str], reached: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """One month's cumulative figures: who converted since ``from`` up to it."""
    counts = {a: dict.fromkeys(STAGES, 0) for a in (TREATMENT, CONTROL)}
    for stage, first in reached.items():
        for person, at in first.items():
            if at <= month:
                counts[arm[person]][stage] += 1
    arms = {a: {"people": sizes[a], **counts[a]} for a in (TREATMENT, CONTROL)}
    as_arms = {a: {s: Arm(sizes[a], counts[a][s]) for s in STAGES} for a in arms}
    return {"month": month, "arms": arms,
            "stages": lift(STAGES, as_arms[TREATMENT], as_arms[CONTROL])}  # fmt: skip
