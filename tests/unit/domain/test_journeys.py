"""Journey rules: triggers, exits, the frequency cap, the order of decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain.journeys import (
    STATS,
    Entry,
    ExitRule,
    FrequencyCap,
    JourneyError,
    JourneyRule,
    Outcome,
    RunState,
    StageEvent,
    Trigger,
    cap_allows,
    decide,
    decide_due,
    earliest,
    exited,
    match_triggers,
    parse_cap,
    parse_delay,
    parse_exit,
    parse_trigger,
)
from services.domain.stages import Stage

T0 = datetime(2017, 8, 1, tzinfo=UTC)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
DIET = JourneyRule(
    "j1",
    Trigger(types=frozenset({"resource.view"}), topic="diet"),
    WEEK,
    ExitRule(reached_stage=Stage.PRODUCE),
)


def event(eid: str, person: str, at: datetime, type_: str = "resource.view", **kw) -> StageEvent:
    stage = {"resource.view": Stage.USE, "story.shared": Stage.PRODUCE, "page.view": Stage.AWARE}
    return StageEvent(eid, person, type_, at, stage.get(type_), **kw)


def diet_view(eid: str, person: str, at: datetime) -> StageEvent:
    return event(eid, person, at, resource_id="tips", topics=frozenset({"diet", "food"}))


# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P7D", WEEK),
        ("P1W", WEEK),
        ("PT36H", timedelta(hours=36)),
        ("P1DT2H3M4S", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("P0D", timedelta(0)),
    ],
)
def test_delays_are_iso_8601_durations(text, expected):
    assert parse_delay(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "7d", "P1M", "P-1D", None, 7])
def test_bad_delays_are_refused(text):
    with pytest.raises(JourneyError, match="delay"):
        parse_delay(text)


@pytest.mark.parametrize(
    "text",
    ["P3651D", "P99999999D", "P9999999999999D", "P522W", "PT315360001S", "P" + "9" * 5000 + "D"],
)
def test_delays_beyond_ten_years_are_refused_not_overflowed(text):
    with pytest.raises(JourneyError, match="at most 3650 days"):
        parse_delay(text)
    assert parse_delay("P3650D") == parse_delay("PT315360000S") == timedelta(days=3650)


def test_an_entry_due_past_the_calendar_is_left_out():
    """A delay stored before delays were bounded, or an event dated near year 9999,
    must not raise in the stream (its events are already stored): no entry."""
    long = JourneyRule("long", DIET.trigger, timedelta(days=99_999_999))
    late = diet_view("e9", "p2", datetime(9999, 12, 30, tzinfo=UTC))
    beyond: list[tuple[str, str]] = []
    entries = match_triggers([long, DIET], [diet_view("e1", "p1", T0), late], beyond)
    assert [(e.journey_id, e.event_id) for e in entries] == [("j1", "e1")]
    assert sorted(beyond) == [("j1", "e9"), ("long", "e1"), ("long", "e9")]


def test_cap_and_definitions_parse():
    assert parse_cap("3/7d") == FrequencyCap(3, WEEK)
    assert parse_cap(" 1 / 12h ") == FrequencyCap(1, timedelta(hours=12))
    for bad in ("", "3", "0/7d", "3/0d", "3/7m"):
        with pytest.raises(JourneyError):
            parse_cap(bad)
    t = parse_trigger(
        {"types": ["resource.view"], "stage": None, "topic": "diet", "campaign_id": None}
    )
    assert t == Trigger(types=frozenset({"resource.view"}), topic="diet")
    assert parse_exit({"reached_stage": "produce"}) == ExitRule(reached_stage=Stage.PRODUCE)
    assert parse_exit(None) == ExitRule()
    for bad in ({}, {"types": "resource.view"}, {"stage": "done"}, {"topic": ""}):
        with pytest.raises(JourneyError, match="trigger"):
            parse_trigger(bad)


def test_a_trigger_lists_at_most_100_event_types_of_at_most_100_characters():
    """100,000 types were kept and compared with every event (and sent to SQL in an IN)."""
    assert len(parse_trigger({"types": [f"t{i}" for i in range(100)]}).types) == 100
    with pytest.raises(JourneyError, match="^trigger.types: at most 100 event types, got 100000$"):
        parse_trigger({"types": [f"t{i}" for i in range(100_000)]})
    with pytest.raises(JourneyError, match="exit.types: event types must be strings of 1 to 100"):
        parse_exit({"types": ["x" * 101]})


# --- triggers ----------------------------------------------------------------------------


def test_a_trigger_needs_every_given_part():
    assert match_triggers([DIET], [diet_view("e1", "p1", T0)])
    other_topic = event("e2", "p1", T0, resource_id="school", topics=frozenset({"school"}))
    other_type = event("e3", "p1", T0, "page.view", resource_id="tips", topics=frozenset({"diet"}))
    assert match_triggers([DIET], [other_topic, other_type]) == []
    by_campaign = JourneyRule("j2", Trigger(campaign_id="c1", stage=Stage.AWARE), DAY)
    assert match_triggers([by_campaign], [event("e4", "p1", T0, "page.view", campaign_id="c1")])
    assert not match_triggers([by_campaign], [event("e5", "p1", T0, "page.view", campaign_id="c2")])


def test_events_before_the_journey_started_do_not_trigger_it():
    rule = JourneyRule("j", DIET.trigger, WEEK, starts_at=T0 + DAY)
    assert match_triggers([rule], [diet_view("e1", "p1", T0)]) == []
    assert len(match_triggers([rule], [diet_view("e2", "p1", T0 + DAY)])) == 1


def test_one_entry_per_person_from_the_earliest_event():
    events = [
        diet_view("b", "p1", T0 + DAY),
        diet_view("a", "p1", T0 + DAY),
        diet_view("c", "p1", T0),
    ]
    (entry,) = match_triggers([DIET], events)
    assert (entry.event_id, entry.triggered_at, entry.due_at) == ("c", T0, T0 + WEEK)


views = st.lists(
    st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.integers(0, 20 * 24)),
    min_size=1,
    max_size=30,
)


@given(views, st.randoms(use_true_random=False), st.integers(1, 5))
@settings(max_examples=200, deadline=None)
def test_entries_do_not_depend_on_arrival_order_or_batches(items, rnd, batches):
    """Merging per-batch entries with ``earliest`` (what the stream's SQL does) gives the
    entries of all events at once, in any order."""
    events = [diet_view(f"e{i}", p, T0 + timedelta(hours=h)) for i, (p, h) in enumerate(items)]
    whole = match_triggers([DIET], events)
    rnd.shuffle(events)
    merged: dict[tuple[str, str], Entry] = {}
    for b in range(batches):
        for e in match_triggers([DIET], events[b::batches]):
            key = (e.journey_id, e.person)
            merged[key] = earliest(merged[key], e) if key in merged else e
    assert sorted(merged.values()) == whole
    assert len(whole) == len({p for p, _ in items})


# --- decisions ---------------------------------------------------------------------------


def test_exit_looks_at_events_up_to_the_due_moment():
    entry = Entry(T0 + WEEK, "e1", "j1", "p1", T0)
    shared_in_time = event("s", "p1", T0 + 3 * DAY, "story.shared")
    shared_too_late = event("s", "p1", T0 + 8 * DAY, "story.shared")
    assert exited(DIET.exit, entry, [shared_in_time])
    assert not exited(DIET.exit, entry, [shared_too_late])
    used = ExitRule(used_resource="starter")
    assert exited(used, entry, [event("u", "p1", T0, resource_id="starter")])
    assert not exited(used, entry, [event("u", "p1", T0, "page.view", resource_id="starter")])
    by_type = ExitRule(types=frozenset({"page.view"}))
    assert not exited(by_type, entry, [event("v", "p1", T0 - DAY, "page.view")])
    assert exited(by_type, entry, [event("v", "p1", T0 + DAY, "page.view")])


def test_order_of_checks_exit_then_consent_then_cap():
    entry = Entry(T0 + WEEK, "e1", "j1", "p1", T0)
    produced = [event("s", "p1", T0 + DAY, "story.shared")]
    full = [T0 + WEEK - DAY] * 3
    cap = FrequencyCap(3, WEEK)
    assert decide(DIET.exit, entry, produced, False, full, cap) is Outcome.EXITED
    assert decide(DIET.exit, entry, [], False, full, cap) is Outcome.SKIPPED_CONSENT
    assert decide(DIET.exit, entry, [], True, full, cap) is Outcome.SKIPPED_CAP
    assert decide(DIET.exit, entry, [], True, full[:2], cap) is Outcome.ACTED


def test_cap_window_excludes_its_start_and_includes_its_end():
    cap, at = FrequencyCap(1, WEEK), T0 + WEEK
    assert cap_allows(cap, at, [T0])
    assert not cap_allows(cap, at, [T0 + timedelta(microseconds=1)])
    assert not cap_allows(cap, at, [at])
    assert cap_allows(cap, at, [at + timedelta(seconds=1)])


@given(
    st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.integers(0, 30 * 24)), max_size=40),
    st.integers(1, 4),
    st.integers(1, 10),
)
@settings(max_examples=200, deadline=None)
def test_decided_actions_never_exceed_the_cap(items, limit, days):
    cap = FrequencyCap(limit, timedelta(days=days))
    entries = [
        Entry(T0 + timedelta(hours=h), f"e{i}", f"j{i}", p, T0) for i, (p, h) in enumerate(items)
    ]
    exits = {e.journey_id: ExitRule() for e in entries}
    decided = decide_due(entries, exits, {}, lambda e: True, {}, cap)
    acted = [e for e, o in decided if o is Outcome.ACTED]
    for e in acted:
        recent = [
            a
            for a in acted
            if a.person == e.person and e.due_at - cap.window < a.due_at <= e.due_at
        ]
        assert len(recent) <= limit
    skipped = [e for e, o in decided if o is Outcome.SKIPPED_CAP]
    for e in skipped:  # skipped only when the window really was full
        recent = [
            a
            for a in acted
            if a.person == e.person and e.due_at - cap.window < a.due_at <= e.due_at
        ]
        assert len(recent) >= limit
    assert len(acted) + len(skipped) == len(entries)


def test_a_run_waits_then_holds_its_outcome_under_the_same_strings():
    assert [s.value for s in RunState] == ["waiting", *(o.value for o in Outcome), "held_out"]
    assert all(RunState(o) == o for o in Outcome)
    assert STATS == (
        "triggered", "waiting", "acted", "exited", "skipped_consent", "skipped_cap", "held_out"
    )  # fmt: skip
