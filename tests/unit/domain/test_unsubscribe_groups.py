"""The pure rules of unsubscribe groups (SendGrid ASM groups)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.domain.unsubscribe_groups import (
    MAX_GROUP_ID,
    GroupChoice,
    blocked_reason,
    choice_applies,
    group_choice,
    group_id,
)

AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def test_a_group_id_is_a_32_bit_positive_integer_and_nothing_else() -> None:
    assert [group_id(v) for v in (1, 101, MAX_GROUP_ID)] == [1, 101, MAX_GROUP_ID]
    assert {group_id(v) for v in (0, -3, MAX_GROUP_ID + 1, True, "7", 7.0, None, [7])} == {None}


def test_only_a_group_event_naming_its_group_is_a_group_choice() -> None:
    leave = {"event": "group_unsubscribe", "asm_group_id": 7}
    assert group_choice(leave, AT) == GroupChoice(7, True, AT)
    assert group_choice(leave | {"event": "group_resubscribe"}, AT) == GroupChoice(7, False, AT)
    for other in (
        {"event": "group_unsubscribe"},  # no group: the person leaves all email
        leave | {"asm_group_id": "7"},
        leave | {"event": "unsubscribe"},
        leave | {"event": "open"},
    ):
        assert group_choice(other, AT) is None


def test_the_latest_choice_wins_whatever_the_order_of_arrival() -> None:
    later = GroupChoice(7, False, AT + timedelta(seconds=30))
    assert choice_applies(None, later) and choice_applies(AT, later)
    assert choice_applies(later.at, later)  # equal times: the last to arrive
    assert not choice_applies(later.at, GroupChoice(7, True, AT))


def test_why_an_email_may_not_go() -> None:
    assert blocked_reason("a@x.org", "confirmed", None, None) is None
    assert blocked_reason("a@x.org", "confirmed", None, 7) == "unsubscribed from group 7"
    assert blocked_reason("a@x.org", "confirmed", "bounce", 7) == "suppressed: bounce"
    assert blocked_reason("a@x.org", "unsubscribed", None, 7) == "consent: unsubscribed"
    assert blocked_reason(" ", "confirmed", None, None) == "no email address"
