"""Audiences: stored segments of the people outreach may write to (issue 16).

A segment's rule is JSON::

    {"filter": <an audience filter, services.domain.audience; null: everyone>,
     "engagement": [{"stage": "use", "reached": true, "within_days": 90}, ...]}

``filter`` looks at what staff know of a contact: ``role``, ``language``, ``external_id``,
``tags``, ``attributes`` and ``needs`` (``{"attr": "needs", "in": ["diet"]}``).
Each engagement clause looks at what the person did, from the stage facts:

* ``reached: true`` the person reached ``stage`` (ever, or on one of the last
  ``within_days`` days, today included);
* ``reached: false`` the person did not (never, or not on one of those days).

So "reached use in the last 90 days" is ``{"stage": "use", "reached": true,
"within_days": 90}``, and "aware but never used" is two clauses: aware reached, use not
reached. Every clause must hold. A segment only ever holds people who confirmed their
email consent: consent is not a choice of the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from services.domain.audience import EVERYONE, Audience, AudienceError, parse_audience
from services.domain.stages import Stage

__all__ = ["Engagement", "Segment", "SegmentError", "parse_segment"]

MAX_DAYS = 3660
MAX_CLAUSES = 10
_RULE_KEYS = ("filter", "engagement")
_CLAUSE_KEYS = ("stage", "reached", "within_days")


class SegmentError(ValueError):
    """A rule that does not parse or can match nobody; the message starts with the path."""


@dataclass(frozen=True)
class Engagement:
    """Whether the person reached ``stage`` (within the last ``within_days`` days)."""

    stage: Stage
    reached: bool = True
    within_days: int | None = None

    def first_day(self, today: date) -> date | None:
        """The first day the clause looks at (``None``: all time)."""
        if self.within_days is None:
            return None
        return today - timedelta(days=self.within_days - 1)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage.value, "reached": self.reached, "within_days": self.within_days}


@dataclass(frozen=True)
class Segment:
    """A parsed rule: who the contact is (``filter``) and what they did (``engagement``)."""

    filter: Audience = EVERYONE
    engagement: tuple[Engagement, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "filter": self.filter.to_dict(),
            "engagement": [clause.to_dict() for clause in self.engagement],
        }


def parse_segment(obj: object) -> Segment:
    """Parse and check a rule; raises :class:`SegmentError` naming the offending part."""
    if obj is None:
        return Segment()
    if not isinstance(obj, Mapping):
        raise SegmentError("rule: must be an object")
    if unknown := sorted(str(k) for k in obj if k not in _RULE_KEYS):
        raise SegmentError(f"rule: unknown field {unknown[0]!r} (expected filter, engagement)")
    try:
        audience = parse_audience(obj.get("filter"))
    except AudienceError as exc:
        raise SegmentError(f"rule.filter: {exc}") from None
    clauses = obj.get("engagement") or []
    if not isinstance(clauses, list):
        raise SegmentError("rule.engagement: must be a list of clauses")
    if len(clauses) > MAX_CLAUSES:
        raise SegmentError(f"rule.engagement: at most {MAX_CLAUSES} clauses")
    engagement = tuple(_clause(c, f"rule.engagement[{i}]") for i, c in enumerate(clauses))
    _check_possible(engagement)
    return Segment(audience, engagement)


def _clause(obj: object, path: str) -> Engagement:
    if not isinstance(obj, Mapping):
        raise SegmentError(f"{path}: must be an object")
    if unknown := sorted(str(k) for k in obj if k not in _CLAUSE_KEYS):
        raise SegmentError(f"{path}: unknown field {unknown[0]!r}")
    try:
        stage = Stage(obj.get("stage"))
    except ValueError:
        names = ", ".join(s.value for s in Stage)
        raise SegmentError(f"{path}.stage: must be one of {names}") from None
    reached = obj.get("reached", True)
    if not isinstance(reached, bool):
        raise SegmentError(f"{path}.reached: must be true or false")
    days = obj.get("within_days")
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS
    ):
        raise SegmentError(f"{path}.within_days: a whole number of days from 1 to {MAX_DAYS}")
    return Engagement(stage, reached, days)


def _check_possible(engagement: tuple[Engagement, ...]) -> None:
    """Refuse "reached X" with "never reached X" (or a higher stage): nobody matches.

    Reaching a stage implies the stages below it, so "reached use" and "never aware"
    contradict each other too.
    """
    order = list(Stage)
    for wanted in (c for c in engagement if c.reached):
        for refused in (c for c in engagement if not c.reached and c.within_days is None):
            if order.index(refused.stage) <= order.index(wanted.stage):
                raise SegmentError(
                    f"rule.engagement: reached {wanted.stage.value} and never reached "
                    f"{refused.stage.value} cannot both hold"
                )
