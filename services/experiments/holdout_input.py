"""The ``holdout`` field of POST /api/v1/campaigns and POST /api/v1/journeys."""

from __future__ import annotations

from pydantic import Field

from services.domain.holdouts import NOT_RANDOMIZABLE, Holdout
from services.staff_input import StaffInput

__all__ = ["HoldoutIn", "holdout_for", "holdout_view"]


class HoldoutIn(StaffInput):
    """``{"share": 0.2, "window_days": 30}``: the share of eligible people held out."""

    share: float = Field(gt=0, le=0.5)
    window_days: int = Field(default=30, ge=1, le=365)


def holdout_for(channel: str, body: HoldoutIn | None) -> Holdout | None:
    """The holdout to save, or ``ValueError`` (422) when the channel cannot have one."""
    if body is None:
        return None
    if channel != "email":
        raise ValueError(NOT_RANDOMIZABLE)
    return Holdout(body.share, body.window_days)


def holdout_view(holdout: Holdout | None) -> dict[str, float | int] | None:
    if holdout is None:
        return None
    return {"share": holdout.share, "window_days": holdout.window_days}
