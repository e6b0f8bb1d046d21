"""The audience rule: what it means, and the rules it refuses with the part named."""

from __future__ import annotations

from datetime import date

import pytest

from services.domain.audience import AttrEquals
from services.domain.segments import Engagement, Segment, SegmentError, parse_segment
from services.domain.stages import Stage


def test_recent_use_and_aware_never_used_read_as_said():
    recent = parse_segment({"engagement": [{"stage": "use", "within_days": 90}]})
    assert recent == Segment(engagement=(Engagement(Stage.USE, True, 90),))
    # the last 90 days, today included
    assert recent.engagement[0].first_day(date(2024, 6, 30)) == date(2024, 4, 2)
    never = parse_segment({"engagement": [{"stage": "aware"}, {"stage": "use", "reached": False}]})
    assert [c.reached for c in never.engagement] == [True, False]
    assert never.engagement[1].first_day(date(2024, 6, 30)) is None


def test_a_rule_reads_back_as_it_was_stored():
    rule = {"filter": {"attr": "role", "eq": "parent"}, "engagement": [
        {"stage": "produce", "reached": False, "within_days": 30}]}  # fmt: skip
    segment = parse_segment(rule)
    assert segment.filter == AttrEquals("role", "parent")
    assert parse_segment(segment.to_dict()) == segment
    assert parse_segment(None) == parse_segment({}) == Segment()


@pytest.mark.parametrize(
    ("rule", "names"),
    [
        ([], "rule: must be an object"),
        ({"who": 1}, "unknown field 'who'"),
        ({"filter": {"attr": "role", "gt": 1}}, "rule.filter"),
        ({"engagement": {"stage": "use"}}, "rule.engagement: must be a list"),
        ({"engagement": [{"stage": "usage"}]}, "rule.engagement[0].stage"),
        ({"engagement": [{"stage": "use", "reached": "yes"}]}, "reached"),
        ({"engagement": [{"stage": "use", "within_days": 0}]}, "within_days"),
        ({"engagement": [{"stage": "use", "within_days": True}]}, "within_days"),
        ({"engagement": [{"stage": "use", "since": 3}]}, "unknown field 'since'"),
        ({"engagement": [{"stage": "use"}] * 11}, "at most 10"),
        # reaching use implies aware: "used" and "never aware" cannot both hold
        ({"engagement": [{"stage": "use"}, {"stage": "aware", "reached": False}]}, "cannot"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_part(rule, names):
    with pytest.raises(SegmentError, match=None) as caught:
        parse_segment(rule)
    assert names in str(caught.value)


def test_not_reached_lately_is_no_contradiction():
    """Used ever, but not in the last 90 days: a lapsed user."""
    lapsed = [{"stage": "use"}, {"stage": "use", "reached": False, "within_days": 90}]
    assert len(parse_segment({"engagement": lapsed}).engagement) == 2
