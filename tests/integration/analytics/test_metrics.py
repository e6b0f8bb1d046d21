"""Stage metrics against a brute-force oracle computed from the raw records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.analytics.metrics import QueryError, stage_metrics
from services.analytics.sink import AttributionSink
from services.domain import PeriodKind, attribute, period_range
from tests.integration.analytics.conftest import (
    all_touches,
    counted,
    event,
    oracle_counts,
    person,
    random_dataset,
    touch,
    write_shuffled,
)

ZERO = {"aware": 0, "use": 0, "produce": 0}
AUG = datetime(2017, 8, 14, 10, tzinfo=UTC)


def rows_of(result):
    return {r["period"]: {k: r[k] for k in ZERO} for r in result["rows"]}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_monthly_unique_people_match_the_oracle(sessions, seed):
    data = random_dataset(seed)
    write_shuffled(AttributionSink(sessions), data, seed)
    expected = oracle_counts(data.events, PeriodKind.MONTH)
    with sessions() as s:
        result = stage_metrics(s, "month", "2014-01", "2018-06")
    periods = period_range("2014-01", "2018-06", "month")
    assert [r["period"] for r in result["rows"]] == periods  # every period, zeros included
    assert rows_of(result) == {p: expected.get(p, ZERO) for p in periods}
    assert sum(1 for r in result["rows"] if r == {"period": r["period"], **ZERO}) > 10


@pytest.mark.parametrize(("kind", "start", "end"), [("week", "2017-07-03", "2017-12-25"),
                                                    ("day", "2017-08-01", "2017-09-30")])  # fmt: skip
def test_weeks_and_days_match_the_oracle(sessions, kind, start, end):
    data = random_dataset(7)
    write_shuffled(AttributionSink(sessions), data, 7)
    expected = oracle_counts(data.events, PeriodKind(kind))
    with sessions() as s:
        result = stage_metrics(s, kind, start, end)
    assert rows_of(result) == {p: expected.get(p, ZERO) for p in period_range(start, end, kind)}


def test_periods_follow_the_configured_time_zone(sessions):
    data = random_dataset(4)
    write_shuffled(AttributionSink(sessions, timezone="America/New_York"), data, 4)
    expected = oracle_counts(data.events, PeriodKind.MONTH, tz="America/New_York")
    with sessions() as s:
        result = stage_metrics(s, "month", "2014-01", "2018-06")
    assert rows_of(result) == {p: expected.get(p, ZERO) for p in rows_of(result)}


def test_redelivery_changes_no_count(sessions):
    data = random_dataset(5)
    sink = AttributionSink(sessions)
    write_shuffled(sink, data, 5)
    with sessions() as s:
        before = stage_metrics(s, "month", "2014-01", "2018-06", campaign_id="c1")
        before_all = stage_metrics(s, "month", "2014-01", "2018-06")
    write_shuffled(sink, data, 6)
    with sessions() as s:
        assert stage_metrics(s, "month", "2014-01", "2018-06", campaign_id="c1") == before
        assert stage_metrics(s, "month", "2014-01", "2018-06") == before_all


def test_a_batch_is_one_transaction_whatever_fails_in_it(sessions, monkeypatch):
    """A failure after the events are written (a killed worker's view: the transaction
    never commits) leaves none of the batch stored, so its redelivery writes all of it."""
    sink = AttributionSink(sessions)
    batch = [event(f"t{i}", "resource.view", AUG, person(i)) for i in range(5)]

    def crash(*_args):
        raise RuntimeError("killed after the events were inserted")

    monkeypatch.setattr(sink, "_insert_stage_facts", crash)
    with pytest.raises(RuntimeError):
        sink.write(batch, [])
    with sessions() as s:
        assert stage_metrics(s, "month", "2017-08", "2017-08")["rows"][0]["aware"] == 0
    monkeypatch.undo()
    assert sink.write(batch, []).new_events == 5
    with sessions() as s:
        assert stage_metrics(s, "month", "2017-08", "2017-08")["rows"][0]["aware"] == 5


def test_a_producer_counts_at_every_lower_stage_once(sessions):
    who = person(1)
    AttributionSink(sessions).write(
        [
            event("a", "story.shared", AUG, who),
            event("b", "resource.view", AUG + timedelta(hours=1), who),
            event("c", "email.open", AUG + timedelta(days=20), person(2)),
            event("d", "something.else", AUG, person(3)),
            event("e", "resource.view", AUG, person(4), bot=True, bot_reason="HEAD"),
        ],
        [],
    )
    with sessions() as s:
        result = stage_metrics(s, "month", "2017-07", "2017-09")
    assert result["rows"] == [
        {"period": "2017-07", **ZERO},
        {"period": "2017-08", "aware": 1, "use": 1, "produce": 1},
        {"period": "2017-09", "aware": 1, "use": 0, "produce": 0},
    ]


def test_growth_is_last_over_baseline_rounded_to_four_places(sessions):
    events = [event(f"b{i}", "resource.view", AUG, person(i)) for i in range(3)]
    events += [event(f"l{i}", "email.open", AUG.replace(month=12), person(i)) for i in range(7)]
    events += [event("p", "story.shared", AUG.replace(month=12), person(1))]
    AttributionSink(sessions).write(events, [])
    with sessions() as s:
        result = stage_metrics(s, "month", "2017-08", "2017-12")
        outside = stage_metrics(s, "month", "2017-10", "2017-12", baseline="2017-08")
    assert result["baseline"] == "2017-08"
    assert result["growth"] == {"aware": round(7 / 3, 4), "use": round(1 / 3, 4), "produce": None}
    assert outside["growth"] == result["growth"]  # a baseline outside the range still counts
    assert [r["period"] for r in outside["rows"]] == ["2017-10", "2017-11", "2017-12"]


def test_median_and_run_chart_signals(sessions):
    # aware people per month: 1, 2, 3, 4, 5, 6, 7 -> a trend over all seven months
    events = [
        event(f"e{m}-{i}", "email.open", AUG.replace(month=m), person(i))
        for m in range(2, 9)
        for i in range(m - 1)
    ]
    AttributionSink(sessions).write(events, [])
    with sessions() as s:
        result = stage_metrics(s, "month", "2017-02", "2017-08")
    assert result["median"] == {"aware": 4.0, "use": 0.0, "produce": 0.0}
    assert result["signals"]["aware"] == [{"rule": "trend", "from": "2017-02", "to": "2017-08"}]
    assert result["signals"]["use"] == []


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize(
    ("field", "value", "pick"),
    [
        ("campaign_id", "c3", lambda t: t.campaign_id),
        ("channel", "email", lambda t: t.channel),
        ("messenger_id", "m2", lambda t: t.messenger_id),
    ],
)
def test_filtered_counts_follow_last_touch_credits(sessions, seed, field, value, pick):
    data = random_dataset(seed)
    write_shuffled(AttributionSink(sessions), data, seed)
    touches = all_touches(data)

    def credited(event_id, who, when):
        credits = attribute(when, touches.get(who, []), "last_touch", 30)
        return any(c.touch is not None and pick(c.touch) == value for c in credits)

    expected = oracle_counts(data.events, PeriodKind.MONTH, keep=credited)
    assert any(v["aware"] for v in expected.values())
    with sessions() as s:
        result = stage_metrics(s, "month", "2014-01", "2018-06", **{field: value})
    assert rows_of(result) == {p: expected.get(p, ZERO) for p in rows_of(result)}


def test_unattributed_is_a_campaign_filter_too(sessions):
    data = random_dataset(13)
    write_shuffled(AttributionSink(sessions), data, 13)
    touches = all_touches(data)
    expected = oracle_counts(
        data.events,
        PeriodKind.MONTH,
        keep=lambda _, who, when: attribute(when, touches.get(who, []))[0].touch is None,
    )
    with sessions() as s:
        result = stage_metrics(s, "month", "2014-01", "2018-06", campaign_id="unattributed")
    assert rows_of(result) == {p: expected.get(p, ZERO) for p in rows_of(result)}
    assert counted(data.events)  # the dataset is not trivially empty


def test_a_late_touch_moves_filtered_counts(sessions):
    sink = AttributionSink(sessions)
    sink.write([event("u", "resource.view", AUG, person(1))], [])
    with sessions() as s:
        assert stage_metrics(s, "month", "2017-08", "2017-08", campaign_id="c1")["rows"][0] == {
            "period": "2017-08", **ZERO}  # fmt: skip
    sink.write([], [touch("t", AUG - timedelta(days=2), person(1), "c1")])
    with sessions() as s:
        row = stage_metrics(s, "month", "2017-08", "2017-08", campaign_id="c1")["rows"][0]
    assert row == {"period": "2017-08", "aware": 1, "use": 1, "produce": 0}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "year", "start": "2017-08", "end": "2017-09"}, "period"),
        ({"kind": "month", "start": "2017-13", "end": "2017-09"}, "from"),
        ({"kind": "month", "start": "2017-08", "end": "Sept"}, "to"),
        ({"kind": "month", "start": "2017-09", "end": "2017-08"}, "to"),
        ({"kind": "day", "start": "2000-01-01", "end": "2017-08-01"}, "to"),
        ({"kind": "month", "start": "2017-08", "end": "2017-09", "baseline": "x"}, "baseline"),
    ],
)
def test_bad_parameters_name_the_field(sessions, kwargs, field):
    with sessions() as s, pytest.raises(QueryError) as caught:
        stage_metrics(s, **kwargs)
    assert caught.value.field == field


def test_dates_name_their_month_and_week(sessions):
    AttributionSink(sessions).write([event("x", "email.open", AUG, person(1))], [])
    with sessions() as s:
        months = stage_metrics(s, "month", "2017-08-20", "2017-09-02")
        weeks = stage_metrics(s, "week", "2017-08-16", "2017-08-16")
    assert [r["period"] for r in months["rows"]] == ["2017-08", "2017-09"]
    assert weeks["rows"] == [{"period": "2017-08-14", "aware": 1, "use": 0, "produce": 0}]


def test_runs_rules_and_p_charts_per_rule_set(sessions):
    # aware people per day over 20 days: 1 on days 1-10, 3 on days 11-20 (median 2).
    # IHI: 2 runs < 6 (too few runs; N = 20); a shift on each side. Anhøj: the run of 10
    # is longer than 7 and 1 crossing is below 6. Use: person 0 uses on days 11-20.
    day = AUG.replace(day=1)
    events = [
        event(f"e{d}-{i}", "email.open", day.replace(day=d), person(i))
        for d in range(1, 21)
        for i in range(1 if d <= 10 else 3)
    ]
    events += [
        event(f"u{d}", "resource.view", day.replace(day=d), person(0)) for d in range(11, 21)
    ]
    AttributionSink(sessions).write(events, [])
    with sessions() as s:
        ihi = stage_metrics(s, "day", "2017-08-01", "2017-08-20")
        anhoej = stage_metrics(s, "day", "2017-08-01", "2017-08-20", rules="anhoej")
    whole = {"from": "2017-08-01", "to": "2017-08-20"}
    assert ihi["rules"] == "ihi" and {"rule": "too_few_runs", **whole} in ihi["signals"]["aware"]
    assert anhoej["signals"]["aware"] == [
        {"rule": "longest_run", "from": "2017-08-01", "to": "2017-08-10"},
        {"rule": "few_crossings", **whole},
    ]
    chart = ihi["p_charts"]["use_of_aware"]
    assert chart["centre"] == 10 / 40
    assert [p["p"] for p in chart["points"][9:11]] == [0.0, 1 / 3]
    with sessions() as s, pytest.raises(QueryError) as caught:
        stage_metrics(s, "day", "2017-08-01", "2017-08-20", rules="western-electric")
    assert caught.value.field == "rules"
