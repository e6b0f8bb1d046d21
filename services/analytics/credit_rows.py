"""The ``credits`` rows of a stage event: one per (event, window, touch), a weight per model.

Issue 19: a row per (event, model, window, touch), with those every model agreed on
stored once as model ``*``, was ~2.5 rows per stage event; one row per touch with the
five models' weights side by side is ~1.3. A model's credits are the rows where its
weight is not NULL (its reads: weight > 0, as before).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.db import models
from services.domain.attribution import UNATTRIBUTED, Credit, Model, Touch, attribute_all
from services.domain.periods import PeriodKind, period_of

NO_TOUCH = "-"  # the touch_id of an unattributed credit
MODEL_NAMES = tuple(m.value for m in Model)
#: Each model's weight column in ``credits`` (NULL where the model does not credit a touch).
WEIGHT_COLUMNS = dict(zip(MODEL_NAMES, models.CREDIT_WEIGHTS, strict=True))
_NO_WEIGHTS = dict.fromkeys(models.CREDIT_WEIGHTS)


def credit_rows(
    event: dict[str, Any],
    touches: Iterable[Touch],
    window_days: int,
    timezone: str,
    labels: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The ``credits`` rows of one stage event: what the stream's sink writes and what a
    recomputation writes (one definition for both). ``labels`` are the event's period
    labels when the caller has them cached. Give a person's events their
    :class:`~services.domain.attribution.TouchHistory` (as :func:`touches_of` does):
    each event's lookup is then a bisection, whatever the size of their history.

    One row per touch some model credits (``NO_TOUCH`` when none is in the window), with
    each model's weight in its column (:data:`WEIGHT_COLUMNS`), NULL for a model that
    does not credit that touch.
    """
    at = event["occurred_at"]
    labels = labels or {k.value: period_of(at, k, timezone) for k in PeriodKind}
    by_model = attribute_all(at, touches, window_days)
    rows: dict[str, dict[str, Any]] = {}
    first = by_model[Model.LAST_TOUCH]
    if all(credits is first for credits in by_model.values()):  # every model alike
        for credit in first:
            rows[_touch_key(credit)] = _row(event, window_days, credit, labels) | dict.fromkeys(
                models.CREDIT_WEIGHTS, credit.weight
            )
        return list(rows.values())
    for model, credits in by_model.items():
        column = WEIGHT_COLUMNS[model.value]
        for credit in credits:
            row = rows.get(key := _touch_key(credit))
            if row is None:
                row = rows[key] = _row(event, window_days, credit, labels) | _NO_WEIGHTS
            row[column] = credit.weight
    return list(rows.values())


def _touch_key(credit: Credit) -> str:
    return credit.touch.touch_id if credit.touch else NO_TOUCH


def _row(
    event: dict[str, Any], window_days: int, credit: Credit, labels: dict[str, str]
) -> dict[str, Any]:
    t = credit.touch
    return {
        "event_id": event["event_id"],
        "window_days": window_days,
        "touch_id": t.touch_id if t else NO_TOUCH,
        "campaign_id": t.campaign_id if t else UNATTRIBUTED,
        "channel": t.channel if t else None,
        "messenger_id": t.messenger_id if t else None,
        "stage": event["stage"],
        "person": event["person"],
        "occurred_at": event["occurred_at"],
        **labels,
    }


def model_weights(row: Any) -> list[tuple[str, float]]:
    """The (model, weight) pairs a stored credit row (a dict) stands for: each model
    that credits its touch."""
    return [(m, w) for m, column in WEIGHT_COLUMNS.items() if (w := row[column]) is not None]


def weight_of(model: str) -> Any:
    """``credits``' weight column of ``model``."""
    return getattr(models.Credit, WEIGHT_COLUMNS[model])
