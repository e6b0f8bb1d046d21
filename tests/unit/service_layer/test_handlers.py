"""The use cases through their handlers, over the in-memory fakes (tests/fakes/
unit_of_work.py): no database, no thread. What each handler decides, and that it
commits exactly when it should."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.bus import topics
from services.db.models import Campaign, Link
from services.domain.events import NormalisedEvent
from services.domain.lifecycle import CampaignStateError, CampaignStatus, SendStatus
from services.service_layer import handlers
from tests.fakes.unit_of_work import FakeStore, FakeUnitOfWork, fake_unit_of_work

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _with_campaign(status: CampaignStatus, **fields: Any) -> tuple[FakeStore, FakeUnitOfWork]:
    store, uow = fake_unit_of_work()
    with uow:
        uow.campaigns.add(
            Campaign(id="c1", name="Spring", channel="email", status=status, **fields)
        )
        uow.commit()
    return store, uow


# --- schedule and cancel --------------------------------------------------------------


def test_scheduling_a_draft_stores_the_time_in_utc_and_commits() -> None:
    store, uow = _with_campaign(CampaignStatus.DRAFT)
    at = datetime(2026, 3, 3, 9, 0, tzinfo=timezone(timedelta(hours=2)))
    view = handlers.schedule_campaign(uow, "c1", at, NOW)
    assert view["status"] == "scheduled"
    assert view["send_at"] == "2026-03-03T07:00:00+00:00"
    assert view["progress"] == {"total": 0, "sent": 0, "suppressed": 0, "failed": 0}
    assert store.campaigns["c1"].status == CampaignStatus.SCHEDULED
    assert store.commits == 2


def test_scheduling_without_a_time_keeps_the_stored_one_else_now() -> None:
    stored = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    _, uow = _with_campaign(CampaignStatus.DRAFT, send_at=stored)
    assert handlers.schedule_campaign(uow, "c1", None, NOW)["send_at"] == stored.isoformat()
    _, uow = _with_campaign(CampaignStatus.DRAFT)
    assert handlers.schedule_campaign(uow, "c1", None, NOW)["send_at"] == NOW.isoformat()


@pytest.mark.parametrize("status", [CampaignStatus.SENDING, CampaignStatus.SENT])
def test_a_campaign_past_scheduling_is_refused_and_left_unchanged(status: CampaignStatus) -> None:
    store, uow = _with_campaign(status)
    with pytest.raises(CampaignStateError):
        handlers.schedule_campaign(uow, "c1", NOW, NOW)
    assert store.campaigns["c1"].status == status and store.campaigns["c1"].send_at is None
    assert store.commits == 1


def test_an_unknown_campaign_is_not_found_and_nothing_commits() -> None:
    store, uow = fake_unit_of_work()
    with pytest.raises(handlers.CampaignNotFound):
        handlers.schedule_campaign(uow, "nope", None, NOW)
    with pytest.raises(handlers.CampaignNotFound):
        handlers.cancel_campaign(uow, "nope")
    assert store.commits == 0


def test_cancel_stops_a_sending_campaign_and_shows_its_progress() -> None:
    store, uow = _with_campaign(CampaignStatus.SENDING)
    store.sends += [("c1", SendStatus.SENT), ("c1", SendStatus.PENDING), ("c2", SendStatus.SENT)]
    view = handlers.cancel_campaign(uow, "c1")
    assert view["status"] == "cancelled"
    assert view["progress"] == {"total": 2, "sent": 1, "suppressed": 0, "failed": 0}
    assert store.campaigns["c1"].status == CampaignStatus.CANCELLED


def test_a_sent_campaign_cannot_be_cancelled() -> None:
    store, uow = _with_campaign(CampaignStatus.SENT)
    with pytest.raises(CampaignStateError):
        handlers.cancel_campaign(uow, "c1")
    assert store.campaigns["c1"].status == CampaignStatus.SENT


# --- accept events --------------------------------------------------------------------


def _record(e: NormalisedEvent) -> dict[str, Any]:
    record = {"event_id": e.event_id, "type": e.type, "person": f"pseudo-{len(e.person_ref)}"}
    return record | ({"campaign_id": e.campaign_id} if e.campaign_id else {})


def _event(event_id: str, **fields: Any) -> dict[str, Any]:
    base = {"event_id": event_id, "type": "page.view", "occurred_at": "2026-03-01T10:00:00Z"}
    return base | {"person_ref": "fam-1"} | fields


def test_events_are_checked_unknown_campaigns_refused_and_new_ones_spooled_once() -> None:
    store, uow = _with_campaign(CampaignStatus.SENT)
    items = [
        _event("a1"),
        _event("a2", campaign_id="c1"),
        _event("a1"),  # a duplicate within the request
        _event("a3", campaign_id="ghost"),
        _event("a4", occurred_at="2026-03-02T10:00:00Z"),  # an hour in the future
        "not an object",
    ]
    result = handlers.accept_events(uow, items, now=NOW, to_record=_record)
    assert (result.accepted, result.duplicates) == (2, 1)
    assert [r["index"] for r in result.rejected] == [3, 4, 5]
    assert result.rejected[0]["error"] == "campaign_id: unknown campaign 'ghost'"
    assert result.rejected[1]["error"].startswith("occurred_at")
    ((topic, records),) = store.outbox
    assert topic == topics.ENGAGEMENT
    assert [r["event_id"] for r in records] == ["a1", "a2"]
    assert all("fam-1" not in str(r) for r in records)  # only what to_record made

    again = handlers.accept_events(uow, items[:2], now=NOW, to_record=_record)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 2, [])
    assert len(store.outbox) == 1


def test_a_request_with_nothing_valid_spools_nothing() -> None:
    store, uow = fake_unit_of_work()
    result = handlers.accept_events(uow, [{"type": "x"}], now=NOW, to_record=_record)
    assert result.accepted == 0 and result.rejected[0]["error"].startswith("event_id")
    assert store.outbox == [] and store.accepted == set()


# --- clicks ---------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)


def _link(**fields: Any) -> Link:
    return Link(id="L1", token="L1", destination="https://example.org/a", **fields)


def test_a_link_is_found_by_its_token_only() -> None:
    _, uow = fake_unit_of_work()
    with uow:
        uow.links.add(_link(campaign_id="c1"))
        uow.commit()
    link = handlers.find_link(uow, "L1")
    assert link is not None and link.destination == "https://example.org/a"
    assert handlers.find_link(uow, "L2") is None


def test_a_click_from_an_email_is_handed_over_with_its_ids_and_no_address() -> None:
    sink = Sink()
    link = _link(campaign_id="c1", resource_id="r1")
    handlers.record_click(sink, link, send_id="s1", person="p1", now=NOW, bot_reason=None)
    (record,) = sink.records
    assert record["event_id"].startswith("click:") and record["type"] == "link.click"
    assert record["occurred_at"] == "2026-03-02T09:00:00Z"
    assert {k: record[k] for k in ("person", "campaign_id", "send_id", "channel", "link_id")} == {
        "person": "p1",
        "campaign_id": "c1",
        "send_id": "s1",
        "channel": "email",
        "link_id": "L1",
    }
    assert (record["bot"], record["resource_id"], record["source"]) == (False, "r1", "redirect")


def test_a_bots_web_click_is_kept_flagged_with_the_links_channel() -> None:
    sink = Sink()
    link = _link(channel="social", messenger_id="m1")
    handlers.record_click(sink, link, send_id=None, person="v1", now=NOW, bot_reason="scanner")
    (record,) = sink.records
    assert (record["bot"], record["bot_reason"], record["channel"]) == (True, "scanner", "social")
    assert record["send_id"] is None and record["messenger_id"] == "m1"
