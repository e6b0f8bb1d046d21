"""Attribution of stage events to the touches that preceded them.

A *touch* is an exposure of a person to a campaign (an email sent, a tracked click, a
toolkit link visit). A stage event by person P at time t credits P's touches in the
window ``(t - window, t]``: a touch exactly ``window`` before the event is out, a touch
at the event's own time is in. The credits of one event always sum to 1; with no touch
in the window the whole credit goes to ``unattributed`` (a credit with ``touch=None``).

Touches are ordered by time; touches of the same instant by arrival (the one WINWIN
received first is the earlier: first touch, and the other the last touch), and touches
that also arrived together by their ``touch_id`` (:func:`touch_order`).

A stage event credits at most :data:`MAX_TOUCHES` touches: the first touch in its window
and the latest ``MAX_TOUCHES - 1``. First touch, last touch and position-based's two
ends are exact; linear and time decay share among those. So the credits stored per
event are bounded, and a person's history grows them linearly, not with its square.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "DEFAULT_HALF_LIFE_DAYS",
    "DEFAULT_MODEL",
    "DEFAULT_WINDOW_DAYS",
    "MAX_TOUCHES",
    "NO_VALUE",
    "UNATTRIBUTED",
    "Credit",
    "Dimension",
    "Model",
    "Touch",
    "TouchHistory",
    "attribute",
    "attribute_all",
    "credited_keys",
    "eligible_touches",
    "touch_order",
]

DEFAULT_WINDOW_DAYS = 30
DEFAULT_HALF_LIFE_DAYS = 7.0
MAX_TOUCHES = 32
"""The most touches one stage event credits (the first in its window and the latest)."""
UNATTRIBUTED = "unattributed"
"""Key of the credit of events with no touch in the window."""
NO_VALUE = "(none)"
"""Key for a touch that has no value for the grouping dimension (e.g. no messenger)."""

_SECONDS_PER_DAY = 86_400.0


class Touch(NamedTuple):
    """One exposure of a person to a campaign.

    ``received_at`` is when WINWIN received (stored) the touch; ``None`` for a touch
    stored before arrival was recorded, which counts as received before any other.
    """

    touch_id: str
    campaign_id: str
    channel: str | None
    messenger_id: str | None
    occurred_at: datetime
    received_at: datetime | None = None


_LONG_AGO = datetime.min.replace(tzinfo=UTC)


def touch_order(touch: Touch) -> tuple[datetime, datetime, str]:
    """The order of touches: by time, then by arrival (received first is earlier), then
    by ``touch_id`` (touches received together)."""
    return (touch.occurred_at, touch.received_at or _LONG_AGO, touch.touch_id)


class Model(StrEnum):
    """An attribution model; the value is its public name."""

    LAST_TOUCH = "last_touch"
    FIRST_TOUCH = "first_touch"
    LINEAR = "linear"
    TIME_DECAY = "time_decay"
    POSITION_BASED = "position_based"

    @property
    def one_touch(self) -> bool:
        """Whether the model credits exactly one touch of each event (or none: the
        event is unattributed), so an event is one credit row under it."""
        return self in (Model.LAST_TOUCH, Model.FIRST_TOUCH)


DEFAULT_MODEL = Model.LAST_TOUCH


class Credit(NamedTuple):
    """The share (``weight``, 0..1) of one event credited to a touch.

    ``touch is None`` means the event is unattributed.
    """

    touch: Touch | None
    weight: float


class Dimension(StrEnum):
    """What credits are grouped by in attribution reports."""

    CAMPAIGN = "campaign"
    CHANNEL = "channel"
    MESSENGER = "messenger"


class TouchHistory:
    """One person's touches in :func:`touch_order`, sorted once: the touches eligible
    for each of their events are then found by bisection, not by a pass over them all."""

    def __init__(self, touches: Iterable[Touch]) -> None:
        self._touches = sorted(touches, key=touch_order)
        self._times = [t.occurred_at for t in self._touches]
        self._unique = len({t.touch_id for t in self._touches}) == len(self._touches)

    def __iter__(self) -> Iterator[Touch]:
        return iter(self._touches)

    def __len__(self) -> int:
        return len(self._touches)

    def eligible(self, event_time: datetime, window_days: float) -> list[Touch]:
        """:func:`eligible_touches` of this history."""
        if window_days <= 0:
            raise ValueError(f"window_days must be positive, got {window_days!r}")
        lo = bisect_right(self._times, event_time - timedelta(days=window_days))
        hi = bisect_right(self._times, event_time)
        if self._unique:  # stored touches: one each (a slice of at most MAX_TOUCHES)
            if hi - lo <= MAX_TOUCHES:
                return self._touches[lo:hi]
            return [self._touches[lo], *self._touches[hi - MAX_TOUCHES + 1 : hi]]
        unique: dict[str, Touch] = {}
        for touch in self._touches[lo:hi]:
            unique.setdefault(touch.touch_id, touch)
        kept = list(unique.values())
        return kept if len(kept) <= MAX_TOUCHES else [kept[0], *kept[1 - MAX_TOUCHES :]]


def eligible_touches(
    event_time: datetime,
    touches: Iterable[Touch],
    window_days: float = DEFAULT_WINDOW_DAYS,
) -> list[Touch]:
    """The touches in ``(event_time - window, event_time]`` in :func:`touch_order`, at
    most :data:`MAX_TOUCHES` of them: the first and the latest ``MAX_TOUCHES - 1``.

    A ``touch_id`` seen twice (at-least-once delivery) is kept once. Pass a
    :class:`TouchHistory` to look up many events of one person.
    """
    history = touches if isinstance(touches, TouchHistory) else TouchHistory(touches)
    return history.eligible(event_time, window_days)


def attribute(
    event_time: datetime,
    touches: Iterable[Touch],
    model: Model | str = DEFAULT_MODEL,
    window_days: float = DEFAULT_WINDOW_DAYS,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> list[Credit]:
    """Credits of one stage event at ``event_time`` under ``model``.

    Only touches with a positive weight are returned (in touch order); with no
    eligible touch the answer is ``[Credit(None, 1.0)]``. Weights sum to 1.
    """
    model = Model(model)
    if half_life_days <= 0:
        raise ValueError(f"half_life_days must be positive, got {half_life_days!r}")
    eligible = eligible_touches(event_time, touches, window_days)
    return _credit(event_time, eligible, model, half_life_days)


def attribute_all(
    event_time: datetime,
    touches: Iterable[Touch],
    window_days: float = DEFAULT_WINDOW_DAYS,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> dict[Model, list[Credit]]:
    """Credits of one stage event under every model (the stream computes all five)."""
    if half_life_days <= 0:
        raise ValueError(f"half_life_days must be positive, got {half_life_days!r}")
    eligible = eligible_touches(event_time, touches, window_days)
    if len(eligible) <= 1:  # no touch or one: every model says the same (one shared list)
        return dict.fromkeys(Model, _credit(event_time, eligible, DEFAULT_MODEL, half_life_days))
    return {model: _credit(event_time, eligible, model, half_life_days) for model in Model}


def _credit(
    event_time: datetime, eligible: Sequence[Touch], model: Model, half_life_days: float
) -> list[Credit]:
    if not eligible:
        return [Credit(None, 1.0)]
    if len(eligible) == 1:
        return [Credit(eligible[0], 1.0)]
    if model is Model.LAST_TOUCH:
        return [Credit(eligible[-1], 1.0)]
    if model is Model.FIRST_TOUCH:
        return [Credit(eligible[0], 1.0)]
    if model is Model.LINEAR:
        weights = [1.0] * len(eligible)
    elif model is Model.TIME_DECAY:
        weights = _decay_weights(event_time, eligible, half_life_days)
    else:
        weights = _position_weights(len(eligible))
    total = math.fsum(weights)
    return [Credit(touch, w / total) for touch, w in zip(eligible, weights, strict=True)]


def _decay_weights(
    event_time: datetime, eligible: Sequence[Touch], half_life_days: float
) -> list[float]:
    # Measured from the most recent touch rather than the event: the same ratios
    # after normalisation, but the largest weight is 1 so nothing underflows to 0
    # however long the window.
    ages = [(event_time - t.occurred_at).total_seconds() / _SECONDS_PER_DAY for t in eligible]
    youngest = min(ages)
    return [2.0 ** (-(age - youngest) / half_life_days) for age in ages]


def _position_weights(count: int) -> list[float]:
    if count == 2:
        return [0.5, 0.5]
    middle = 0.2 / (count - 2)
    return [0.4] + [middle] * (count - 2) + [0.4]


def credited_keys(
    credits: Iterable[Credit], dimension: Dimension | str = Dimension.CAMPAIGN
) -> dict[str, float]:
    """Sum credit weights per campaign, channel or messenger.

    An unattributed credit goes to :data:`UNATTRIBUTED` (``"unattributed"``). A touch
    without a value for the dimension (a touch with no channel or no messenger) goes
    to :data:`NO_VALUE` (``"(none)"``): it *was* attributed, just not to any channel or
    messenger, so it is kept apart from the unattributed events.
    """
    dimension = Dimension(dimension)
    sums: dict[str, float] = {}
    for credit in credits:
        key = _key_of(credit.touch, dimension)
        sums[key] = sums.get(key, 0.0) + credit.weight
    return sums


def _key_of(touch: Touch | None, dimension: Dimension) -> str:
    if touch is None:
        return UNATTRIBUTED
    if dimension is Dimension.CAMPAIGN:
        value: str | None = touch.campaign_id
    elif dimension is Dimension.CHANNEL:
        value = touch.channel
    else:
        value = touch.messenger_id
    return NO_VALUE if value is None else value
