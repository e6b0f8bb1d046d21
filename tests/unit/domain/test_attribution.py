import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain import (
    DEFAULT_MODEL,
    MAX_TOUCHES,
    NO_VALUE,
    UNATTRIBUTED,
    Credit,
    Model,
    Touch,
    TouchHistory,
    attribute,
    attribute_all,
    credited_keys,
    eligible_touches,
    touch_order,
)

EVENT = datetime(2017, 8, 31, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def touch(
    touch_id: str,
    before: timedelta,
    campaign: str = "c1",
    channel: str | None = "email",
    messenger: str | None = None,
) -> Touch:
    return Touch(touch_id, campaign, channel, messenger, EVENT - before)


def weights(credits: list[Credit]) -> list[float]:
    return [c.weight for c in credits]


def ids(credits: list[Credit]) -> list[str | None]:
    return [c.touch.touch_id if c.touch else None for c in credits]


def test_default_model_is_last_touch() -> None:
    assert DEFAULT_MODEL is Model.LAST_TOUCH
    assert [m.value for m in Model] == [
        "last_touch",
        "first_touch",
        "linear",
        "time_decay",
        "position_based",
    ]


def test_no_touch_is_unattributed() -> None:
    for model in Model:
        assert attribute(EVENT, [], model) == [Credit(None, 1.0)]


def test_window_edges() -> None:
    at_edge = touch("edge", 30 * DAY)
    just_inside = touch("inside", 30 * DAY - timedelta(microseconds=1))
    at_event = touch("now", timedelta(0))
    after = touch("after", -timedelta(microseconds=1))
    eligible = eligible_touches(EVENT, [after, at_event, at_edge, just_inside])
    assert [t.touch_id for t in eligible] == ["inside", "now"]
    assert attribute(EVENT, [at_edge, after]) == [Credit(None, 1.0)]
    assert ids(attribute(EVENT, [at_edge, at_event], Model.FIRST_TOUCH)) == ["now"]
    assert ids(attribute(EVENT, [touch("a", 2 * DAY)], window_days=2)) == [None]
    assert ids(attribute(EVENT, [touch("a", 2 * DAY)], window_days=2.5)) == ["a"]


def test_last_and_first_touch() -> None:
    touches = [touch("b", 3 * DAY), touch("a", 10 * DAY), touch("c", DAY)]
    assert attribute(EVENT, touches, Model.LAST_TOUCH) == [Credit(touches[2], 1.0)]
    assert attribute(EVENT, touches, "first_touch") == [Credit(touches[1], 1.0)]


def test_ties_in_time_received_together_are_ordered_by_touch_id_and_count_once() -> None:
    touches = [touch("z", DAY), touch("a", DAY), touch("a", DAY)]
    assert ids(attribute(EVENT, touches, Model.LAST_TOUCH)) == ["z"]
    assert ids(attribute(EVENT, touches, Model.FIRST_TOUCH)) == ["a"]
    assert weights(attribute(EVENT, touches, Model.LINEAR)) == [0.5, 0.5]


def test_ties_in_time_are_ordered_by_arrival_first() -> None:
    """Two touches of one instant: the one received first is the first touch, the one
    received later the last touch, whatever their ids; one received before arrival was
    recorded (None) counts as received before any other."""
    sent = EVENT - DAY
    z = Touch("z", "c-early", "email", None, sent, received_at=EVENT - DAY)
    a = Touch("a", "c-late", "email", None, sent, received_at=EVENT - DAY / 2)
    old = Touch("y", "c-old", "email", None, sent)  # stored before arrival was recorded
    assert [t.touch_id for t in sorted([a, z, old], key=touch_order)] == ["y", "z", "a"]
    assert ids(attribute(EVENT, [a, z], Model.FIRST_TOUCH)) == ["z"]
    assert ids(attribute(EVENT, [a, z], Model.LAST_TOUCH)) == ["a"]
    assert ids(attribute(EVENT, [z, a, old], Model.POSITION_BASED)) == ["y", "z", "a"]
    later = Touch("b", "c-b", "email", None, sent + timedelta(seconds=1), EVENT - 2 * DAY)
    assert ids(attribute(EVENT, [a, later], Model.LAST_TOUCH)) == ["b"]  # time comes first


def test_linear_is_equal() -> None:
    touches = [touch(str(i), i * DAY) for i in range(4)]
    assert weights(attribute(EVENT, touches, Model.LINEAR)) == [0.25] * 4


def test_time_decay_by_hand() -> None:
    # 7 days old weighs 1/2 of a touch at the event time: 0.5 : 1 -> 1/3, 2/3.
    two = attribute(EVENT, [touch("old", 7 * DAY), touch("new", timedelta(0))], Model.TIME_DECAY)
    assert ids(two) == ["old", "new"]
    assert weights(two) == pytest.approx([1 / 3, 2 / 3])
    # 14, 7 and 0 days: 1/4 : 1/2 : 1 -> 1/7, 2/7, 4/7.
    three = [touch("a", 14 * DAY), touch("b", 7 * DAY), touch("c", timedelta(0))]
    assert weights(attribute(EVENT, three, Model.TIME_DECAY)) == pytest.approx(
        [1 / 7, 2 / 7, 4 / 7]
    )
    # Half-life 1 day, 3 and 1 days old: 1/8 : 1/2 -> 0.2, 0.8.
    custom = attribute(
        EVENT, [touch("x", 3 * DAY), touch("y", DAY)], Model.TIME_DECAY, half_life_days=1.0
    )
    assert weights(custom) == pytest.approx([0.2, 0.8])


def test_time_decay_does_not_underflow_on_long_windows() -> None:
    touches = [touch("a", 5000 * DAY), touch("b", 4000 * DAY)]
    credits = attribute(EVENT, touches, Model.TIME_DECAY, window_days=10_000, half_life_days=1)
    assert weights(credits) == pytest.approx([0.0, 1.0])
    assert math.isclose(sum(weights(credits)), 1.0)


def test_position_based_by_hand() -> None:
    two = [touch("a", 2 * DAY), touch("b", DAY)]
    assert weights(attribute(EVENT, two, Model.POSITION_BASED)) == [0.5, 0.5]
    three = [touch("a", 3 * DAY), touch("b", 2 * DAY), touch("c", DAY)]
    assert weights(attribute(EVENT, three, Model.POSITION_BASED)) == pytest.approx([0.4, 0.2, 0.4])
    five = [touch(str(i), (10 - i) * DAY) for i in range(5)]
    credits = attribute(EVENT, five, Model.POSITION_BASED)
    assert ids(credits) == ["0", "1", "2", "3", "4"]
    assert weights(credits) == pytest.approx([0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4])


def test_an_event_credits_its_first_touch_and_the_latest_ones() -> None:
    """At most MAX_TOUCHES touches per event (so a person's credits grow linearly with
    their history): the first in the window and the latest MAX_TOUCHES - 1."""
    hours = [touch(f"t{i:03}", timedelta(hours=100 - i)) for i in range(100)]
    kept = [hours[0], *hours[101 - MAX_TOUCHES :]]
    assert eligible_touches(EVENT, hours) == kept
    assert ids(attribute(EVENT, hours, Model.FIRST_TOUCH)) == ["t000"]
    assert ids(attribute(EVENT, hours, Model.LAST_TOUCH)) == ["t099"]
    assert weights(attribute(EVENT, hours, Model.LINEAR)) == [1 / MAX_TOUCHES] * MAX_TOUCHES
    middle = [0.2 / (MAX_TOUCHES - 2)] * (MAX_TOUCHES - 2)
    assert weights(attribute(EVENT, hours, Model.POSITION_BASED)) == pytest.approx(
        [0.4, *middle, 0.4]
    )
    # a touch copied (at-least-once delivery) still counts once, cap or not
    assert eligible_touches(EVENT, [*hours, hours[50], hours[0]]) == kept


def test_bad_parameters_refused() -> None:
    with pytest.raises(ValueError, match="window_days"):
        attribute(EVENT, [], window_days=0)
    with pytest.raises(ValueError, match="half_life_days"):
        attribute_all(EVENT, [], half_life_days=0)
    with pytest.raises(ValueError):
        attribute(EVENT, [], "last_click")


def test_credited_keys_per_dimension() -> None:
    a = touch("a", 2 * DAY, campaign="c1", channel="toolkit", messenger="m1")
    b = touch("b", DAY, campaign="c2", channel=None, messenger=None)
    credits = attribute(EVENT, [a, b], Model.LINEAR)
    assert credited_keys(credits, "campaign") == {"c1": 0.5, "c2": 0.5}
    assert credited_keys(credits, "channel") == {"toolkit": 0.5, NO_VALUE: 0.5}
    assert credited_keys(credits, "messenger") == {"m1": 0.5, "(none)": 0.5}
    assert credited_keys(attribute(EVENT, []), "messenger") == {UNATTRIBUTED: 1.0}
    same = attribute(EVENT, [a, touch("c", DAY, campaign="c1")], Model.POSITION_BASED)
    assert credited_keys(same) == {"c1": 1.0}


one_touch = st.builds(
    Touch,
    touch_id=st.text(alphabet="abcdef", min_size=1, max_size=3),
    campaign_id=st.sampled_from(["c1", "c2", "c3"]),
    channel=st.sampled_from(["email", "social", "toolkit", None]),
    messenger_id=st.sampled_from(["m1", "m2", None]),
    occurred_at=st.integers(min_value=-5 * 86_400, max_value=60 * 86_400).map(
        lambda s: EVENT - timedelta(seconds=s)
    ),
    received_at=st.none() | st.integers(0, 3).map(lambda n: EVENT + n * DAY),
)
touch_sets = st.lists(one_touch, max_size=25)
windows = st.integers(min_value=1, max_value=90)
half_lives = st.floats(min_value=0.01, max_value=100.0)


@given(touch_sets, windows, half_lives)
def test_credits_of_every_model_sum_to_one(
    touches: list[Touch], window: int, half_life: float
) -> None:
    eligible = eligible_touches(EVENT, touches, window)
    for model, credits in attribute_all(EVENT, touches, window, half_life).items():
        assert math.isclose(sum(weights(credits)), 1.0, rel_tol=1e-9), model
        assert all(0.0 <= c.weight <= 1.0 for c in credits)
        if eligible:
            assert all(c.touch in eligible for c in credits)
            assert len({c.touch for c in credits}) == len(credits)
        else:
            assert credits == [Credit(None, 1.0)]
        assert credits == attribute(EVENT, touches, model, window, half_life)
        for dimension in ("campaign", "channel", "messenger"):
            keyed = credited_keys(credits, dimension)
            assert math.isclose(sum(keyed.values()), 1.0, rel_tol=1e-9)


@given(touch_sets.filter(lambda ts: len(ts) >= 1), windows)
def test_all_models_agree_with_one_touch(touches: list[Touch], window: int) -> None:
    only = touches[:1]
    results = attribute_all(EVENT, only, window)
    assert len({tuple(credits) for credits in results.values()}) == 1


@given(touch_sets, half_lives)
def test_shapes_of_models(touches: list[Touch], half_life: float) -> None:
    eligible = eligible_touches(EVENT, touches)
    results = attribute_all(EVENT, touches, half_life_days=half_life)
    if len(eligible) < 2:
        return
    assert ids(results[Model.LAST_TOUCH]) == [eligible[-1].touch_id]
    assert ids(results[Model.FIRST_TOUCH]) == [eligible[0].touch_id]
    assert weights(results[Model.LINEAR]) == pytest.approx([1 / len(eligible)] * len(eligible))
    decay = weights(results[Model.TIME_DECAY])
    assert all(a <= b * (1 + 1e-12) for a, b in zip(decay, decay[1:], strict=False))
    position = weights(results[Model.POSITION_BASED])
    assert position[0] == pytest.approx(position[-1])
    assert position[0] == pytest.approx(0.5 if len(eligible) == 2 else 0.4)


def _eligible_by_hand(event: datetime, touches: list[Touch], window: int) -> list[Touch]:
    """The rule spelled out: in the window, in touch order, once each, capped."""
    inside = [t for t in touches if event - window * DAY < t.occurred_at <= event]
    unique: dict[str, Touch] = {}
    for t in sorted(inside, key=touch_order):
        unique.setdefault(t.touch_id, t)
    kept = list(unique.values())
    return kept if len(kept) <= MAX_TOUCHES else [kept[0], *kept[len(kept) - MAX_TOUCHES + 1 :]]


@given(
    st.lists(one_touch, max_size=100),
    st.booleans(),
    st.lists(st.integers(-3 * 86_400, 60 * 86_400), min_size=1, max_size=5),
    windows,
)
def test_a_history_looks_up_what_the_rule_says(
    found: list[Touch], stored: bool, offsets: list[int], window: int
) -> None:
    """One person's history (up to 100 touches, past the cap; stored ones have one id
    each, redelivered ones may repeat), sorted once and looked up by bisection for many
    events, finds exactly the touches of the rule."""
    if stored:
        found = [t._replace(touch_id=f"t{i}") for i, t in enumerate(found)]
    history = TouchHistory(found)
    for offset in offsets:
        event = EVENT - timedelta(seconds=offset)
        assert eligible_touches(event, history, window) == _eligible_by_hand(event, found, window)
