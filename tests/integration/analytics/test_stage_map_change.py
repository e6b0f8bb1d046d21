"""A stage-map change re-stages every stored event and rebuilds the read models."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from services.analytics.metrics import apply_stage_map, attribution, ensure_window, stage_metrics
from services.analytics.sink import AttributionSink
from services.analytics.stage_map import load_stage_map
from services.db.models import Credit, EngagementEvent
from services.domain import DEFAULT_STAGE_MAP, PeriodKind, StageMap, attribute
from tests.integration.analytics.conftest import (
    all_touches,
    counted,
    event,
    oracle_counts,
    person,
    random_dataset,
    write_shuffled,
)

ZERO = {"aware": 0, "use": 0, "produce": 0}
NEW_MAP = StageMap.from_dict(
    {
        "aware": ["link.click", "page.view", "email.delivered"],  # email.open dropped
        "use": ["resource.download", "resource.use", "reply.received", "something.else"],
        "produce": ["resource.view", "contribution.submitted", "story.shared"],  # moved up
    }
)


def rows_of(result):
    return {r["period"]: {k: r[k] for k in ZERO} for r in result["rows"]}


def test_a_new_stage_map_is_reflected_everywhere(sessions):
    data = random_dataset(31)
    write_shuffled(AttributionSink(sessions), data, 31)
    with sessions() as s, s.begin():
        ensure_window(s, 7)  # another window's credits must follow too
    with sessions() as s, s.begin():
        counts = apply_stage_map(s, NEW_MAP, "UTC", 30)
    assert counts["events"] > 0 and counts["credits_deleted"] > 0
    assert counts["events_attributed"] > 0 and counts["credits_restaged"] > 0

    with sessions() as s:
        assert load_stage_map(s) == NEW_MAP
        stages = dict(s.execute(select(EngagementEvent.event_id, EngagementEvent.stage)).all())
        result = stage_metrics(s, "month", "2014-01", "2018-06")
        filtered = stage_metrics(s, "month", "2014-01", "2018-06", campaign_id="c3")
        credited = {r.event_id for r in s.scalars(select(Credit).where(Credit.window_days == 30))}
    for e in data.events:
        stage = NEW_MAP.stage_of(e["type"])
        assert stages[e["event_id"]] == (stage.value if stage else None)
    expected = oracle_counts(data.events, PeriodKind.MONTH, NEW_MAP)
    assert rows_of(result) == {p: expected.get(p, ZERO) for p in rows_of(result)}
    assert credited == {eid for eid, *_ in counted(data.events, NEW_MAP)}

    touches = all_touches(data)
    in_c3 = oracle_counts(
        data.events,
        PeriodKind.MONTH,
        NEW_MAP,
        keep=lambda _, who, when: any(
            c.touch is not None and c.touch.campaign_id == "c3"
            for c in attribute(when, touches.get(who, []))
        ),
    )
    assert rows_of(filtered) == {p: in_c3.get(p, ZERO) for p in rows_of(filtered)}

    with sessions() as s, s.begin():
        ensure_window(s, 7)
        seven = attribution(s, "linear", 7)["rows"]
    by_stage = {}
    for r in seven:
        by_stage[r["stage"]] = by_stage.get(r["stage"], 0) + r["credited"]
    expected_events = {}
    for *_, stage in counted(data.events, NEW_MAP):
        expected_events[stage.value] = expected_events.get(stage.value, 0) + 1
    assert {k: round(v) for k, v in by_stage.items()} == expected_events


def test_events_after_the_change_use_the_new_map_and_back_again(sessions):
    moment = datetime(2017, 8, 3, tzinfo=UTC)
    AttributionSink(sessions).write([event("a", "email.open", moment, person(1))], [])
    with sessions() as s, s.begin():
        apply_stage_map(s, NEW_MAP, "UTC", 30)
    AttributionSink(sessions).write([event("b", "resource.view", moment, person(2))], [])
    with sessions() as s:
        row = stage_metrics(s, "month", "2017-08", "2017-08")["rows"][0]
    assert row == {"period": "2017-08", "aware": 1, "use": 1, "produce": 1}
    with sessions() as s, s.begin():
        counts = apply_stage_map(s, DEFAULT_STAGE_MAP, "UTC", 30)
        assert counts["events"] == 2
        again = apply_stage_map(s, DEFAULT_STAGE_MAP, "UTC", 30)
    assert again["events"] == 0 and again["credits_deleted"] == 0
    with sessions() as s:
        row = stage_metrics(s, "month", "2017-08", "2017-08")["rows"][0]
    assert row == {"period": "2017-08", "aware": 2, "use": 1, "produce": 0}
