"""Who may do what (pure): the role rules and the sign-in attempt limiter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.access import refusal_for
from services.domain.attempts import AttemptLimiter
from services.domain.roles import Area, Role, parse_role, refusal


def test_an_analyst_changes_nothing_and_only_an_admin_reaches_the_admin_area():
    assert refusal(Role.ADMIN, Area.ADMIN, changes=True) == ""
    assert refusal(Role.STAFF, Area.OUTREACH, changes=True) == ""
    assert refusal(Role.ANALYST, Area.OUTREACH, changes=False) == ""
    assert "analyst" in refusal(Role.ANALYST, Area.OUTREACH, changes=True)
    for role in (Role.STAFF, Role.ANALYST):
        assert "only an admin" in refusal(role, Area.ADMIN, changes=False)
        assert "only an admin" in refusal(role, Area.ADMIN, changes=True)
    # The route table: reading the stage map is for all, changing it for admins.
    assert refusal_for(Role.STAFF, "GET", "/api/v1/stage-map") == ""
    assert refusal_for(Role.STAFF, "PUT", "/api/v1/stage-map")
    assert refusal_for(Role.STAFF, "GET", "/api/v1/tokens")
    assert refusal_for(Role.STAFF, "DELETE", "/api/v1/tokens/{token_id}")
    assert refusal_for(Role.STAFF, "POST", "/api/v1/campaigns") == ""


def test_roles_are_named_in_any_case_and_others_are_refused():
    assert parse_role(" Staff ") is Role.STAFF
    with pytest.raises(ValueError, match="admin|staff|analyst"):
        parse_role("owner")


def test_failed_attempts_are_limited_per_key_in_a_sliding_minute():
    limiter, t0 = AttemptLimiter(limit=3), datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(3):
        assert limiter.wait("ann", t0 + timedelta(seconds=i)) == 0
        limiter.failed("ann", t0 + timedelta(seconds=i))
    assert limiter.wait("ann", t0 + timedelta(seconds=10)) == 50  # the first ages out at 60 s
    assert limiter.wait("bo", t0 + timedelta(seconds=10)) == 0  # another key is free
    assert limiter.wait("ann", t0 + timedelta(seconds=60)) == 0


def test_the_limiter_forgets_old_keys_instead_of_growing_without_end():
    limiter, t0 = AttemptLimiter(limit=1, max_keys=2), datetime(2024, 1, 1, tzinfo=UTC)
    limiter.failed("a", t0)
    limiter.failed("b", t0)
    limiter.failed("c", t0 + timedelta(minutes=2))  # a and b are old: forgotten
    assert set(limiter._failures) == {"c"}


def test_asking_about_keys_adds_none_and_the_cap_holds_on_every_path():
    """A client already refused (429) asks ``wait`` about a fresh email per request:
    asking must add no key, and failures past the cap forget the least recent key."""
    limiter, t0 = AttemptLimiter(limit=2, max_keys=3), datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(1000):
        assert limiter.wait(f"nobody{i}@attacker.example", t0) == 0
    assert len(limiter._failures) == 0
    for i, key in enumerate(["a", "b", "c", "a", "d"]):
        limiter.failed(key, t0 + timedelta(seconds=i))
    assert list(limiter._failures) == ["c", "a", "d"]  # b failed least recently: forgotten
    assert limiter.wait("a", t0 + timedelta(seconds=5)) == 55  # a failed at 0 s and 3 s: both kept
