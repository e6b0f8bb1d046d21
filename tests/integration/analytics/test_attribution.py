"""Attribution read models and recomputation for other windows, against the domain."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from services.analytics.credit_rows import model_weights
from services.analytics.metrics import (
    QueryError,
    attribution,
    campaign_attribution,
    ensure_window,
    stage_metrics,
)
from services.analytics.sink import AttributionSink
from services.db.models import CREDIT_WEIGHTS, Credit
from services.domain import MAX_TOUCHES, NO_VALUE, UNATTRIBUTED, Model, period_of
from tests.integration.analytics.conftest import (
    Dataset,
    counted,
    event,
    oracle_credits,
    person,
    random_dataset,
    touch,
    write_shuffled,
)

COLUMNS = [c.name for c in Credit.__table__.columns if c.name not in CREDIT_WEIGHTS]


def expected_rows(data, model, window, key_of, start=None, end=None):
    """{(key, stage): (credited, people, events)} from the domain's attribute()."""
    stage_of = {eid: (who, when, stage.value) for eid, who, when, stage in counted(data.events)}
    credited, people, events = defaultdict(float), defaultdict(set), defaultdict(set)
    for event_id, credits in oracle_credits(data, Model(model), window).items():
        who, when, stage = stage_of[event_id]
        day = when.date().isoformat()
        if (start and day < start) or (end and day > end):
            continue
        for t, weight in credits:
            k = (key_of(t), stage)
            credited[k] += weight
            people[k].add(who)
            events[k].add(event_id)
    return {k: (credited[k], len(people[k]), len(events[k])) for k in credited}


def by_campaign(t):
    return UNATTRIBUTED if t is None else t.campaign_id


def by_channel(t):
    return UNATTRIBUTED if t is None else (t.channel or NO_VALUE)


def by_messenger(t):
    return UNATTRIBUTED if t is None else (t.messenger_id or NO_VALUE)


def assert_rows(result, expected):
    got = {(r["key"], r["stage"]): (r["credited"], r["people"], r["events"])
           for r in result["rows"]}  # fmt: skip
    assert got.keys() == expected.keys()
    for k, (credited, people, events) in expected.items():
        assert got[k][1:] == (people, events), k
        assert math.isclose(got[k][0], credited, abs_tol=1e-5), k


@pytest.fixture
def data(sessions):
    data = random_dataset(21)
    write_shuffled(AttributionSink(sessions), data, 21)
    return data


@pytest.mark.parametrize("model", [m.value for m in Model])
def test_attribution_matches_the_domain_and_credits_sum_to_one(sessions, data, model):
    with sessions() as s:
        result = attribution(s, model, 30)
    assert (result["model"], result["window_days"]) == (model, 30)
    assert_rows(result, expected_rows(data, model, 30, by_campaign))
    assert any(r["key"] == UNATTRIBUTED for r in result["rows"])
    per_stage = defaultdict(float)
    for r in result["rows"]:
        per_stage[r["stage"]] += r["credited"]
    stages = defaultdict(int)
    for *_, stage in counted(data.events):
        stages[stage.value] += 1
    assert per_stage.keys() == stages.keys()
    for stage, n in stages.items():
        assert math.isclose(per_stage[stage], n, abs_tol=1e-4)  # each event sums to 1


@pytest.mark.parametrize(("group_by", "key_of"), [("channel", by_channel),
                                                  ("messenger", by_messenger)])  # fmt: skip
def test_attribution_by_channel_and_messenger(sessions, data, group_by, key_of):
    with sessions() as s:
        result = attribution(s, "linear", 30, group_by=group_by)
    assert_rows(result, expected_rows(data, "linear", 30, key_of))


@pytest.mark.parametrize(("start", "end", "lo", "hi"), [
    ("2017-08", "2017-10", "2017-08-01", "2017-10-31"),
    ("2017-08-15", "2017-09-03", "2017-08-15", "2017-09-03"),
    (None, "2017-07", None, "2017-07-31"),
])  # fmt: skip
def test_attribution_between_months_or_dates(sessions, data, start, end, lo, hi):
    with sessions() as s:
        result = attribution(s, "time_decay", 30, start, end)
    assert_rows(result, expected_rows(data, "time_decay", 30, by_campaign, lo, hi))


def test_campaign_attribution_per_period(sessions, data):
    with sessions() as s:
        rows = campaign_attribution(s, "c1", "position_based", 30)
    stage_of = {eid: (who, when, stage.value) for eid, who, when, stage in counted(data.events)}
    expected = defaultdict(lambda: [0.0, set(), set()])
    for event_id, credits in oracle_credits(data, Model.POSITION_BASED, 30).items():
        who, when, stage = stage_of[event_id]
        for t, weight in credits:
            if t is not None and t.campaign_id == "c1":
                k = (period_of(when, "month"), stage)
                expected[k][0] += weight
                expected[k][1].add(who)
                expected[k][2].add(event_id)
    assert [(r["period"], r["stage"]) for r in rows] == sorted(
        expected, key=lambda k: (k[0], ["aware", "use", "produce"].index(k[1]))
    )
    for r in rows:
        credited, people, events = expected[(r["period"], r["stage"])]
        assert (r["people"], r["events"]) == (len(people), len(events))
        assert math.isclose(r["credited"], credited, abs_tol=1e-5)


@pytest.mark.parametrize("window", [7, 90])
def test_other_windows_are_recomputed_and_kept(sessions, data, window):
    with sessions() as s, s.begin():
        assert ensure_window(s, window) == len(counted(data.events))
    with sessions() as s, s.begin():
        assert ensure_window(s, window) == 0  # kept: nothing left to compute
    for model in Model:
        with sessions() as s:
            result = attribution(s, model, window, group_by="campaign")
        assert_rows(result, expected_rows(data, model.value, window, by_campaign))


def test_events_stored_later_are_credited_in_a_computed_window_by_the_stream(sessions, data):
    with sessions() as s, s.begin():
        ensure_window(s, 7)
    moment = datetime(2019, 5, 1, tzinfo=UTC)  # after every event of the dataset
    AttributionSink(sessions).write(
        [event("late-1", "resource.use", moment, person(77), "c2")],
        [touch("late-t", moment - timedelta(days=3), person(77), "c4")],
    )
    with sessions() as s, s.begin():
        assert ensure_window(s, 7) == 0  # the sink kept the window complete
        rows = attribution(s, "linear", 7, "2019-05")["rows"]
    assert [(r["key"], r["stage"], r["credited"]) for r in rows] == [
        ("c2", "use", 0.5), ("c4", "use", 0.5)]  # fmt: skip


def test_recomputing_the_stream_window_reproduces_the_sink_exactly(sessions, data):
    def credits():
        with sessions() as s:
            rows = s.execute(select(Credit.__table__).where(Credit.window_days == 30))
            return {
                tuple(c[col] for col in COLUMNS): tuple(
                    (m, round(w, 12)) for m, w in model_weights(c)
                )
                for c in rows.mappings()
            }

    written = credits()
    with sessions() as s, s.begin():
        s.execute(delete(Credit).where(Credit.window_days == 30))
        ensure_window(s, 30)
    assert credits() == written


def test_refresh_recomputes_a_window_after_late_touches(sessions):
    sink = AttributionSink(sessions)
    moment = datetime(2017, 9, 1, tzinfo=UTC)
    sink.write([event("x", "resource.use", moment, person(5))], [])
    with sessions() as s, s.begin():
        ensure_window(s, 7)
    sink.write([], [touch("t", moment - timedelta(days=1), person(5), "c1")])
    with sessions() as s, s.begin():
        assert ensure_window(s, 7, refresh=True) == 1
        keys = {r["key"] for r in attribution(s, "last_touch", 7)["rows"]}
    assert keys == {"c1"}


def test_filtered_stage_metrics_for_another_window(sessions, data):
    with sessions() as s, s.begin():
        ensure_window(s, 7)
        seven = stage_metrics(s, "month", "2017-06", "2018-03", campaign_id="c2", window_days=7)
        thirty = stage_metrics(s, "month", "2017-06", "2018-03", campaign_id="c2")
    assert sum(r["aware"] for r in seven["rows"]) <= sum(r["aware"] for r in thirty["rows"])


def test_unknown_model_and_dimension_are_refused(sessions):
    with sessions() as s:
        with pytest.raises(QueryError) as caught:
            attribution(s, "u_shaped", 30)
        assert caught.value.field == "model"
        with pytest.raises(QueryError) as caught:
            attribution(s, "linear", 30, group_by="resource")
        assert caught.value.field == "group_by"
        with pytest.raises(QueryError) as caught:
            attribution(s, "linear", 30, "2017-02-30")
        assert caught.value.field == "from"
        assert s.execute(select(func.count()).select_from(Credit)).scalar_one() == 0


def test_a_long_history_is_credited_as_the_domain_says_past_the_cap(sessions):
    """One person's 90 campaign clicks (each a touch and a stage event) and late touches:
    the sink and a recomputation credit each event's first touch and latest ones, at
    most MAX_TOUCHES, as the domain's attribute() does."""
    who, start = person(9), datetime(2017, 6, 1, tzinfo=UTC)
    clicks = [
        event(f"k{i}", "resource.view", start + timedelta(hours=i), who, f"c{1 + i % 4}")
        for i in range(90)
    ]
    late = [touch(f"s{i}", start + timedelta(hours=3 * i, minutes=1), who, "c2") for i in range(20)]
    data = Dataset(clicks, late)
    write_shuffled(AttributionSink(sessions), data, 5, batches=4)
    with sessions() as s, s.begin():
        ensure_window(s, 45)
    for model, window in itertools.product(Model, (30, 45)):
        with sessions() as s:
            result = attribution(s, model, window, group_by="campaign")
        assert_rows(result, expected_rows(data, model.value, window, by_campaign))
    per_event = (
        select(func.count())
        .select_from(Credit)
        .where(Credit.w_linear > 0)
        .group_by(Credit.event_id, Credit.window_days)
    )
    with sessions() as s:
        most = max(s.scalars(per_event))
    assert most == MAX_TOUCHES
