"""A SendGrid event's time must lie in the range the stream computes with (issue 13: a
year-1 event killed a worker outside UTC); an event outside it is ignored, not spooled."""

from __future__ import annotations

import pytest

from services.tracking.webhooks import _record

PERSON = "p" + "3" * 32


def item(timestamp: object) -> dict[str, object]:
    return {"event": "open", "ww_person": PERSON, "timestamp": timestamp, "sg_event_id": "x"}


@pytest.mark.parametrize("timestamp", [-62135596800, -2208988801, 7258118400, 10**12, "1e400"])
def test_times_outside_the_range_are_ignored(timestamp: object) -> None:
    assert _record(item(timestamp)) is None


def test_a_time_inside_the_range_is_kept() -> None:
    keyed = _record(item(1502704800))
    assert keyed is not None and keyed[1]["occurred_at"] == "2017-08-14T10:00:00Z"
