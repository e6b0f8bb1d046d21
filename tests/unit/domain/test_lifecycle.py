"""The life cycle of campaigns, sends and posts (services/domain/lifecycle.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain.lifecycle import (
    ACTIVE,
    NEXT,
    CampaignStateError,
    CampaignStatus,
    PostStatus,
    SendStatus,
    cancel,
    is_final,
    may_change,
    pause,
    resume,
    schedule,
)

S = CampaignStatus
STATUSES = st.sampled_from(list(CampaignStatus))
#: What each staff change does from each status (None: refused), as the API did before
#: the rules moved to the domain.
EXPECTED = {
    "schedule": {S.DRAFT: S.SCHEDULED, S.SCHEDULED: S.SCHEDULED},
    "pause": {S.SCHEDULED: S.PAUSED, S.SENDING: S.PAUSED, S.PAUSED: S.PAUSED},
    "resume started": {S.PAUSED: S.SENDING},
    "resume not started": {S.PAUSED: S.SCHEDULED},
    "cancel": {s: S.CANCELLED for s in CampaignStatus if s is not S.SENT},
}
CHANGES = {
    "schedule": schedule,
    "pause": pause,
    "resume started": lambda s: resume(s, started=True),
    "resume not started": lambda s: resume(s, started=False),
    "cancel": cancel,
}


def test_the_values_are_the_strings_stored_and_shown():
    assert [s.value for s in CampaignStatus] == [
        "draft", "scheduled", "sending", "sent", "paused", "cancelled"
    ]  # fmt: skip
    assert [s.value for s in SendStatus] == ["pending", "sent", "suppressed", "failed", "held_out"]
    assert [s.value for s in PostStatus] == ["pending", "published", "refused"]
    assert CampaignStatus.SENT == "sent" and "sent" in {CampaignStatus.SENT}
    assert json.dumps({"status": CampaignStatus.PAUSED}) == '{"status": "paused"}'
    assert CampaignStatus("cancelled") is CampaignStatus.CANCELLED


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("status", list(CampaignStatus))
def test_each_staff_change_from_each_status(change, status):
    expected = EXPECTED[change].get(status)
    if expected is None:
        with pytest.raises(CampaignStateError, match=f"campaign (is {status}|already sent)"):
            CHANGES[change](status)
    else:
        assert CHANGES[change](status) is expected


def test_the_refusals_say_why():
    with pytest.raises(CampaignStateError, match="^campaign is sending; only draft or sched"):
        schedule("sending")
    with pytest.raises(CampaignStateError, match="^campaign is draft; only a scheduled or send"):
        pause("draft")
    with pytest.raises(CampaignStateError, match="^campaign is sent; only a paused campaign"):
        resume("sent", started=True)
    with pytest.raises(CampaignStateError, match="^campaign already sent$"):
        cancel("sent")


def outcome(change: str, status: str) -> CampaignStatus | None:
    try:
        return CHANGES[change](status)
    except CampaignStateError:
        return None


@given(STATUSES, st.sampled_from(list(CHANGES)))
def test_every_staff_change_is_one_the_life_cycle_allows(status, change):
    new = outcome(change, status)
    assert new is None or may_change(status, new)


@pytest.mark.parametrize("change", list(CHANGES))
def test_sent_and_cancelled_are_final_for_staff(change):
    """Nothing staff do brings back a sent or cancelled campaign (cancelling a cancelled
    one again changes nothing)."""
    assert outcome(change, S.SENT) is None
    assert outcome(change, S.CANCELLED) in (None, S.CANCELLED)


def test_the_dispatchers_moves_are_allowed_and_others_are_not():
    assert may_change("scheduled", "sending") and may_change("sending", "sent")
    assert may_change("sent", "sending")  # a journey reopens its campaign
    assert not may_change("draft", "sending") and not may_change("cancelled", "scheduled")
    assert not may_change("unknown", "draft") and not may_change("draft", "unknown")


def test_every_status_is_reachable_from_draft():
    seen, todo = {S.DRAFT}, [S.DRAFT]
    while todo:
        for new in NEXT[todo.pop()] - seen:
            seen.add(new)
            todo.append(new)
    assert seen == set(CampaignStatus) and set(NEXT) == set(CampaignStatus)


def test_active_campaigns_are_the_scheduled_and_sending_ones_and_can_be_stopped():
    assert ACTIVE == ("scheduled", "sending")
    assert all(pause(s) is S.PAUSED and cancel(s) is S.CANCELLED for s in ACTIVE)


@given(st.sampled_from(list(SendStatus)) | st.text(max_size=12))
def test_only_a_pending_send_may_still_change(status):
    if status in list(SendStatus):
        assert is_final(status) is (status != "pending")
    else:
        assert not is_final(status)
