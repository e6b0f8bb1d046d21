"""Synthetic engagement for the benches: a realistic mix of event types and touches."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

#: (type, weight, carries a campaign, stage counts) — roughly a newsletter network's mix.
MIX = [
    ("page.view", 30, False),
    ("email.open", 20, True),
    ("link.click", 15, True),
    ("resource.view", 14, False),
    ("resource.download", 5, False),
    ("toolkit.opened", 4, True),
    ("contribution.submitted", 2, False),
    ("story.shared", 2, False),
    ("reply.received", 2, True),
    ("profile.updated", 6, False),  # not in the stage map: stored, not counted
]
TOUCH_SHARE = 0.10
LATE_SHARE, LATE_DAYS = 0.05, 3  # records that arrive after later ones, and by how much
CAMPAIGNS = [f"bench-c{k:02d}" for k in range(20)]
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def person(i: int) -> str:
    """The pseudonym of synthetic person ``i`` (``p`` + 32 hex, like real ones)."""
    return "p" + hashlib.md5(f"bench-person-{i}".encode()).hexdigest()  # noqa: S324 - not security


@dataclass
class Workload:
    """Records bound for the engagement and touches topics, and what SQL must show after."""

    events: list[dict[str, Any]] = field(default_factory=list)
    touches: list[dict[str, Any]] = field(default_factory=list)
    expected_touch_rows: int = 0  # touch records + exposures derived from campaign events
    stage_events: int = 0

    @property
    def total(self) -> int:
        return len(self.events) + len(self.touches)


def make_workload(n: int, people: int = 50_000, seed: int = 7, days: int = 120) -> Workload:
    """``n`` records (events and ~10 % touches) over ``people`` persons and ``days`` days,
    in the order a stream receives them: by time, 5 % late by up to 3 days."""
    rng = random.Random(seed)
    names = [person(i) for i in range(people)]
    types, weights = [m[0] for m in MIX], [m[1] for m in MIX]
    with_campaign = {m[0] for m in MIX if m[2]}
    w = Workload()
    minutes = days * 24 * 60
    for i in range(n):
        who = names[rng.randrange(people)]
        # A stream moves forward in time: record i happens at i/n of the span, except the
        # late ones (offline phones, batched uploads), up to LATE_DAYS before.
        minute = i * minutes // n
        if rng.random() < LATE_SHARE:
            minute = max(0, minute - rng.randrange(LATE_DAYS * 24 * 60))
        at = (EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if rng.random() < TOUCH_SHARE:
            w.touches.append(
                {
                    "touch_id": f"bt{i}",
                    "person": who,
                    "campaign_id": rng.choice(CAMPAIGNS),
                    "channel": "email",
                    "messenger_id": None,
                    "kind": "email.sent",
                    "occurred_at": at,
                }
            )
            continue
        kind = rng.choices(types, weights)[0]
        record: dict[str, Any] = {
            "event_id": f"be{i}",
            "type": kind,
            "occurred_at": at,
            "person": who,
            "source": "api",
            "properties": {},
        }
        if kind in with_campaign:
            record |= {"campaign_id": rng.choice(CAMPAIGNS), "channel": "email"}
        if kind.startswith("resource."):
            record["resource_id"] = f"res-{rng.randrange(200)}"
        if kind in ("email.open", "link.click") and rng.random() < 0.03:
            record |= {"bot": True, "bot_reason": "scanner"}
        w.events.append(record)
    w.expected_touch_rows = len(w.touches) + sum(
        1 for e in w.events if e.get("campaign_id") and not e.get("bot")
    )
    counted = {t for t, _, _ in MIX} - {"profile.updated"}
    w.stage_events = sum(1 for e in w.events if e["type"] in counted and not e.get("bot"))
    return w
