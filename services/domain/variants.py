"""Content tests (A/B/n): an email campaign's variants, who gets which, and when.

A campaign may carry 2 to 5 variants (another template, an inline subject, or both), a
test share of its audience split evenly between them, a decision metric fixed in
advance (``open``, or a stage: ``aware``, ``use``, ``produce``) and a decision time.

Assignment reuses the holdout's number: ``assignment_unit(key, "variants:campaign:ID",
person)`` in [0, 1) (its own experiment name, so it is independent of the holdout's
arm). A person below the test share is tested and gets variant ``floor(u / share * n)``
(an even split); everyone else waits for the decision and then gets the chosen
variant. A person converts when they have a counted event of the metric after their
own send and no later than the decision time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from string import ascii_uppercase

__all__ = [
    "MAX_VARIANTS",
    "METRICS",
    "MIN_VARIANTS",
    "NO_CLEAR_WINNER",
    "ContentTest",
    "ContentTestError",
    "Variant",
    "converted_by",
    "experiment_name",
    "label",
    "variant_of",
]

MIN_VARIANTS, MAX_VARIANTS = 2, 5
METRICS = ("open", "aware", "use", "produce")
NO_CLEAR_WINNER = "no clear winner"


class ContentTestError(ValueError):
    """A content test that cannot be set (the API answers 422 with the message)."""


@dataclass(frozen=True)
class Variant:
    """One version of the email: another template (``None``: the campaign's), and an
    inline subject that replaces the template's subject in every language."""

    template_id: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class ContentTest:
    """The variants, the share of the audience that tests them, the metric, the time."""

    variants: tuple[Variant, ...]
    test_share: float
    metric: str
    decide_at: datetime

    def __post_init__(self) -> None:
        if not MIN_VARIANTS <= len(self.variants) <= MAX_VARIANTS:
            raise ContentTestError(
                f"variants: {MIN_VARIANTS} to {MAX_VARIANTS} variants, got {len(self.variants)}"
            )
        if not 0 < self.test_share < 1:
            raise ContentTestError(f"test_share: must be in (0, 1), got {self.test_share}")
        if self.metric not in METRICS:
            raise ContentTestError(f"metric: one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.decide_at.tzinfo is None:
            raise ContentTestError("decide_at: needs a time zone")


def experiment_name(campaign_id: str) -> str:
    """The name under which a campaign's people are numbered for its content test."""
    return f"variants:campaign:{campaign_id}"


def variant_of(unit: float, test_share: float, variants: int) -> int | None:
    """The tested variant (0-based) of a person with number ``unit``; ``None``: the rest."""
    if unit >= test_share:
        return None
    return min(int(unit / test_share * variants), variants - 1)


def label(index: int) -> str:
    """Variant 0 is ``A``, 1 is ``B``, ... (as staff name them)."""
    return ascii_uppercase[index]


def converted_by(sent_at: datetime, event_at: datetime, decide_at: datetime) -> bool:
    """Does an event count for the decision: after the person's send, by the decision?"""
    return sent_at < event_at <= decide_at
