"""The stream hook and the timer runner on SQLite: timers written once per person,
moved to the earliest event, acted on once, with the cap, consent and exits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from services.analytics.sink import AttributionSink
from services.db.migrate import upgrade
from services.db.models import Campaign, LocalEmail, OutboxMessage, Send
from services.db.models_journeys import FollowUp, Journey, JourneyRun
from services.domain.unsubscribe_groups import GroupChoice
from services.journeys.definitions import JourneyError, create_journey, stats
from services.journeys.runner import run_due_journeys
from services.journeys.stream import JourneyTriggers
from services.tracking.consent import choose_group
from tests.integration.journeys.helpers import (
    DAY,
    T0,
    Clock,
    add_contacts,
    add_resource,
    add_sent,
    add_template,
    make_container,
    person,
    record,
)

DIET = {"types": ["resource.view"], "topic": "diet"}


@pytest.fixture
def world(tmp_path) -> Iterator[dict[str, Any]]:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    upgrade(url)
    clock = Clock()
    c = make_container(url, tmp_path, clock)
    add_resource(c, "diet-tips", ["diet"])
    add_resource(c, "school-plan", ["school"])
    add_template(c)
    try:
        yield {
            "c": c,
            "clock": clock,
            "sink": AttributionSink(c.sessions),
            "hook": JourneyTriggers(c.sessions, ttl=0),
        }
    finally:
        c.close()


def journey(c, action: dict[str, Any] | None = None, **body: Any) -> str:
    with c.sessions() as s, s.begin():
        j = create_journey(
            s,
            {
                "name": "invite to share",
                "trigger": DIET,
                "delay": "P7D",
                "exit": {"reached_stage": "produce"},
                "action": action or {"channel": "email", "template_id": "tpl-invite"},
            }
            | body,
            c.now(),
        )
        return j.id


def feed(w, records) -> None:
    w["sink"].write(records, [])
    w["hook"].on_batch(records)


def runs(c) -> dict[str, tuple[str, str]]:
    with c.sessions() as s:
        return {r.person: (r.trigger_event_id, r.state) for r in s.scalars(select(JourneyRun))}


def test_no_journey_no_timer_and_redelivery_writes_nothing(world):
    c, p1 = world["c"], person("fam-1")
    batch = [record("e1", p1, T0 + DAY, resource_id="diet-tips")]
    assert world["hook"].on_batch(batch) == 0
    jid = journey(c)
    feed(world, batch)
    feed(world, batch)  # a redelivered batch
    feed(
        world,
        [
            record("e2", p1, T0 + 2 * DAY, resource_id="diet-tips"),
            record("e3", person("fam-2"), T0 + DAY, resource_id="school-plan"),
            record("e4", person("fam-3"), T0 + DAY, resource_id="diet-tips", bot=True),
        ],
    )
    assert runs(c) == {p1: ("e1", "waiting")}
    feed(world, [record("e0", p1, T0 + DAY / 2, resource_id="diet-tips")])  # late, earlier
    assert runs(c) == {p1: ("e0", "waiting")}
    assert stats(c.sessions(), [jid])[jid]["waiting"] == 1


def test_a_delay_past_the_calendar_never_fails_the_stream(world, caplog):
    """A journey stored with a delay from before delays were bounded: the hook after
    the sink leaves its timer out and logs it, rather than raise on stored events."""
    c, p1 = world["c"], person("fam-1")
    long, short = journey(c), journey(c, name="short")
    with c.sessions() as s, s.begin():
        s.execute(update(Journey).where(Journey.id == long).values(delay_seconds=86_400 * 10**8))
    feed(world, [record("e1", p1, T0 + DAY, resource_id="diet-tips")])
    with c.sessions() as s:
        assert [r.journey_id for r in s.scalars(select(JourneyRun))] == [short]
    assert f"journey {long}: event e1 would be due past year 9999" in caplog.text


def test_events_before_the_journey_existed_do_not_trigger_it(world):
    c = world["c"]
    journey(c)
    feed(world, [record("old", person("fam-1"), T0 - DAY, resource_id="diet-tips")])
    assert runs(c) == {}


def test_runner_acts_once_and_honours_exit_consent_and_cap(world):
    c, clock = world["c"], world["clock"]
    add_contacts(c, ["fam-1", "fam-2", "fam-4", "fam-6"])
    add_contacts(c, ["fam-3"], consent="unsubscribed")
    for i in range(3):
        add_sent(c, f"news-{i}", [("fam-4", T0 + (5 + i / 4) * DAY)])
    jid = journey(c)
    feed(
        world,
        [
            record(f"v{i}", person(f"fam-{i}"), T0 + DAY, resource_id="diet-tips")
            for i in range(1, 7)
        ]
        + [record("s2", person("fam-2"), T0 + 3 * DAY, "story.shared")],
    )
    assert run_due_journeys(c, T0 + 7 * DAY) == {
        "acted": 0,
        "exited": 0,
        "skipped_consent": 0,
        "skipped_cap": 0,
    }
    clock.at = T0 + 9 * DAY
    counts = run_due_journeys(c, clock.at)
    assert counts == {"acted": 2, "exited": 1, "skipped_consent": 2, "skipped_cap": 1}
    assert run_due_journeys(c, clock.at + DAY) == dict.fromkeys(counts, 0)
    assert stats(c.sessions(), [jid])[jid] == {
        "triggered": 6,
        "waiting": 0,
        "acted": 2,
        "exited": 1,
        "skipped_consent": 2,
        "skipped_cap": 1,
        "held_out": 0,
    }
    states = runs(c)
    assert states[person("fam-5")][1] == "skipped_consent"  # a visitor-like unknown person
    assert states[person("fam-4")][1] == "skipped_cap"
    with c.sessions() as s:
        sent = s.scalars(
            select(Send.person).where(Send.status == "sent", Send.campaign_id.not_like("news-%"))
        ).all()
        assert sorted(sent) == sorted([person("fam-1"), person("fam-6")])
        assert len(s.scalars(select(LocalEmail)).all()) == 2
        touches = [
            r for m in s.scalars(select(OutboxMessage)) for r in m.records if "touch_id" in r
        ]
        assert len(touches) == 2 and all(t["kind"] == "email.sent" for t in touches)


def test_messenger_follow_up_list(world):
    from services.db.models import Messenger

    c = world["c"]
    with c.sessions() as s, s.begin():
        s.add(Messenger(id="m1", name="Sam", role="parent"))
    add_contacts(c, ["fam-1"], consent="unconfirmed")
    journey(c, {"channel": "messenger", "messenger_id": "m1"}, delay="PT1H")
    feed(
        world,
        [
            record("v1", person("fam-1"), T0 + DAY, resource_id="diet-tips"),
            record("v2", person("fam-9"), T0 + DAY, resource_id="diet-tips"),
        ],
    )
    assert run_due_journeys(c, T0 + 2 * DAY)["acted"] == 1
    with c.sessions() as s:
        (f,) = s.scalars(select(FollowUp)).all()
        assert (f.messenger_id, f.person) == ("m1", person("fam-1"))


def test_an_email_journey_of_an_unsubscribe_group_skips_who_left_that_group(world):
    c = world["c"]
    add_contacts(c, ["fam-1", "fam-2", "fam-3"])
    with c.sessions() as s, s.begin():  # fam-1 left group 7; fam-2 left 8, then rejoined 7
        choose_group(s, "FAM-1@example.net", GroupChoice(7, True, T0))
        choose_group(s, "fam-2@example.net", GroupChoice(8, True, T0))
        choose_group(s, "fam-2@example.net", GroupChoice(7, True, T0))
        choose_group(s, "fam-2@example.net", GroupChoice(7, False, T0 + timedelta(seconds=1)))
    with pytest.raises(JourneyError, match="unsubscribe_group"):
        journey(c, {"channel": "email", "template_id": "tpl-invite", "unsubscribe_group": "7"})
    jid = journey(
        c, {"channel": "email", "template_id": "tpl-invite", "unsubscribe_group": 7}, delay="PT1H"
    )
    feed(
        world,
        [record(f"v{i}", person(f"fam-{i}"), T0 + DAY, resource_id="diet-tips") for i in (1, 2, 3)],
    )
    counts = run_due_journeys(c, T0 + 2 * DAY)
    assert counts == {"acted": 2, "exited": 0, "skipped_consent": 1, "skipped_cap": 0}
    assert runs(c)[person("fam-1")][1] == "skipped_consent"
    with c.sessions() as s:
        assert len(s.scalars(select(LocalEmail)).all()) == 2
        (campaign_id,) = {send.campaign_id for send in s.scalars(select(Send))}
        assert s.get(Campaign, campaign_id).unsubscribe_group == 7
    assert stats(c.sessions(), [jid])[jid]["acted"] == 2


def test_a_journey_holdout_skips_the_action_of_its_controls_and_records_held_out(world):
    from services.db.models_experiments import HoldoutAssignment
    from services.domain.holdouts import Holdout
    from services.experiments.assign import save_holdout

    c = world["c"]
    refs = [f"fam-{i}" for i in range(40)]
    add_contacts(c, refs)
    jid = journey(c, delay="P0D")
    with c.sessions() as s, s.begin():
        save_holdout(s, "journey", jid, Holdout(0.5, 30))
    feed(world, [record(f"v{i}", person(r), T0 + DAY, resource_id="diet-tips")
                 for i, r in enumerate(refs)])  # fmt: skip
    counts = run_due_journeys(c, T0 + 2 * DAY, deliver=False)
    with c.sessions() as s:
        arms = dict(s.execute(select(HoldoutAssignment.person, HoldoutAssignment.arm)).all())
        sends = set(s.scalars(select(Send.person)))
    controls = {p for p, arm in arms.items() if arm == "control"}
    assert len(arms) == 40 and 0 < len(controls) < 40
    assert counts["held_out"] == len(controls) and counts["acted"] == 40 - len(controls)
    assert {p for p, (_, state) in runs(c).items() if state == "held_out"} == controls
    assert sends == set(arms) - controls  # controls get no message
    assert stats(c.sessions(), [jid])[jid]["held_out"] == len(controls)
