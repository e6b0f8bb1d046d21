"""The ``content_test`` field of POST /api/v1/campaigns, and how a campaign shows it.

``{"variants": [{"subject": "Tips for school"}, {"template_id": "T2"}],
"test_share": 0.2, "metric": "open", "decide_at": "2026-05-02T09:00:00Z"}``: 2 to 5
variants (another email template, an inline subject over the template's, or both), the
share of the audience that tests them (split evenly), the metric fixed in advance and
the decision time (after ``send_at``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field
from sqlalchemy.orm import Session

from services.db.models import Template
from services.domain.events import supported_time
from services.domain.variants import (
    MAX_VARIANTS,
    MIN_VARIANTS,
    ContentTest,
    ContentTestError,
    Variant,
    label,
)
from services.experiments.variants import content_test_of, decision_of
from services.staff_input import StaffInput

__all__ = ["ContentTestIn", "content_test_for", "content_test_view"]

NOT_EMAIL = "content_test: only email campaigns can test variants per person"


def _decide_at(v: datetime) -> datetime:
    return supported_time(v if v.tzinfo else v.replace(tzinfo=UTC), "content_test.decide_at")


class VariantIn(StaffInput):
    """One variant: ``template_id`` (default: the campaign's) and/or an inline ``subject``."""

    template_id: str | None = Field(default=None, max_length=40)
    subject: str | None = Field(default=None, min_length=1, max_length=1000)


class ContentTestIn(StaffInput):
    variants: list[VariantIn] = Field(min_length=MIN_VARIANTS, max_length=MAX_VARIANTS)
    test_share: float = Field(gt=0, lt=1)
    metric: Literal["open", "aware", "use", "produce"]
    decide_at: Annotated[datetime, AfterValidator(_decide_at)]


def content_test_for(
    session: Session, channel: str, body: ContentTestIn | None, send_at: datetime | None,
    now: datetime,
) -> ContentTest | None:  # fmt: skip
    """The content test to save, or :class:`ContentTestError` (422) naming the problem."""
    if body is None:
        return None
    if channel != "email":
        raise ContentTestError(NOT_EMAIL)
    starts = send_at or now
    if body.decide_at <= starts:
        raise ContentTestError("content_test.decide_at: must be after send_at (or now)")
    for i, v in enumerate(body.variants):
        template = session.get(Template, v.template_id) if v.template_id else None
        if v.template_id and (template is None or template.channel != "email"):
            raise ContentTestError(
                f"content_test.variants[{i}].template_id: no email template {v.template_id!r}"
            )
    variants = tuple(Variant(v.template_id, v.subject) for v in body.variants)
    return ContentTest(variants, body.test_share, body.metric, body.decide_at)


def content_test_view(session: Session, campaign_id: str) -> dict[str, Any] | None:
    """The campaign's content test as the API shows it, with its decision once made."""
    found = content_test_of(session, campaign_id)
    if found is None:
        return None
    test, chosen = found
    return {
        "variants": [
            {"variant": label(i), "template_id": v.template_id, "subject": v.subject}
            for i, v in enumerate(test.variants)
        ],  # fmt: skip
        "test_share": test.test_share,
        "metric": test.metric,
        "decide_at": test.decide_at.isoformat(),
        "status": "testing" if chosen is None else "decided",
        "decision": decision_of(session, campaign_id),
    }
