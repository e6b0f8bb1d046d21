"""Fixtures for the analytics read models: a migrated SQLite file and a data oracle."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from services.analytics.sink import AttributionSink
from services.db.migrate import upgrade
from services.db.session import make_engine, make_sessionmaker
from services.domain import (
    DEFAULT_STAGE_MAP,
    Model,
    PeriodKind,
    Stage,
    StageMap,
    Touch,
    attribute,
    implied,
    period_of,
)

UNKNOWN_TYPES = ["email.delivered", "something.else"]
CAMPAIGNS = [("c1", "email", None), ("c2", "social", None), ("c3", "toolkit", "m1"),
             ("c4", "toolkit", "m2"), ("c5", None, None)]  # fmt: skip


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'analytics.db'}"
    upgrade(url)
    return url


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def person(n: int) -> str:
    return f"p{n:032x}"


def event(
    event_id: str, type_: str, at: datetime, who: str, campaign: str | None = None, **extra: Any
) -> dict[str, Any]:
    record = {"event_id": event_id, "type": type_, "occurred_at": iso(at), "person": who}
    if campaign:
        _, channel, messenger = next(c for c in CAMPAIGNS if c[0] == campaign)
        record.update(campaign_id=campaign, channel=channel, messenger_id=messenger)
    record.update(extra)
    return record


def touch(touch_id: str, at: datetime, who: str, campaign: str) -> dict[str, Any]:
    _, channel, messenger = next(c for c in CAMPAIGNS if c[0] == campaign)
    return {"touch_id": touch_id, "person": who, "campaign_id": campaign, "channel": channel,
            "messenger_id": messenger, "kind": "email.sent", "occurred_at": iso(at)}  # fmt: skip


@dataclass
class Dataset:
    events: list[dict[str, Any]]
    touches: list[dict[str, Any]]


def random_dataset(seed: int, n_events: int = 500, n_touches: int = 200) -> Dataset:
    """Events and touches with duplicates, bots, unknown types and years-old backfill."""
    rng = random.Random(seed)
    people = [person(rng.randrange(1, 10**9)) for _ in range(30)]
    start = datetime(2017, 6, 1, tzinfo=UTC)

    def moment() -> datetime:
        if rng.random() < 0.08:  # backfill from years ago
            return datetime(2014, 3, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**7))
        return start + timedelta(seconds=rng.randrange(300 * 86400))

    types = sorted(DEFAULT_STAGE_MAP.event_types) + UNKNOWN_TYPES
    events = []
    for i in range(n_events):
        campaign = rng.choice([c[0] for c in CAMPAIGNS]) if rng.random() < 0.3 else None
        extra = {"bot": True, "bot_reason": "scanner"} if rng.random() < 0.07 else {}
        events.append(
            event(f"e{i}", rng.choice(types), moment(), rng.choice(people), campaign, **extra)
        )
    touches = [
        touch(f"t{i}", moment(), rng.choice(people), rng.choice([c[0] for c in CAMPAIGNS]))
        for i in range(n_touches)
    ]
    events += rng.sample(events, n_events // 8)  # re-deliveries, same content
    touches += rng.sample(touches, n_touches // 8)
    return Dataset(events, touches)


def write_shuffled(sink: AttributionSink, data: Dataset, seed: int, batches: int = 12) -> None:
    """Write events and touches in random order and random batches (touches arrive late)."""
    rng = random.Random(seed)
    records = [("e", r) for r in data.events] + [("t", r) for r in data.touches]
    rng.shuffle(records)
    cuts = sorted(rng.sample(range(1, len(records)), batches - 1))
    for lo, hi in zip([0, *cuts], [*cuts, len(records)], strict=True):
        part = records[lo:hi]
        sink.write([r for k, r in part if k == "e"], [r for k, r in part if k == "t"])


# -- the oracle: brute force over the raw records --------------------------------------


def at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["occurred_at"].replace("Z", "+00:00"))


def counted(events: Sequence[dict[str, Any]], stage_map: StageMap = DEFAULT_STAGE_MAP):
    """Unique non-bot stage events: (event_id, person, time, stage)."""
    seen = {}
    for e in events:
        seen.setdefault(e["event_id"], e)
    return [
        (e["event_id"], e["person"], at(e), stage_map.stage_of(e["type"]))
        for e in seen.values()
        if not e.get("bot") and stage_map.stage_of(e["type"])
    ]


def all_touches(data: Dataset) -> dict[str, list[Touch]]:
    found: dict[str, Touch] = {}
    owner: dict[str, str] = {}
    for t in data.touches:
        found[t["touch_id"]] = Touch(t["touch_id"], t["campaign_id"], t["channel"],
                                     t["messenger_id"], at(t))  # fmt: skip
        owner[t["touch_id"]] = t["person"]
    for e in data.events:
        if e.get("campaign_id") and not e.get("bot"):
            tid = f"e:{e['event_id']}"
            found[tid] = Touch(tid, e["campaign_id"], e["channel"], e["messenger_id"], at(e))
            owner[tid] = e["person"]
    by_person: dict[str, list[Touch]] = defaultdict(list)
    for tid, t in found.items():
        by_person[owner[tid]].append(t)
    return by_person


def oracle_counts(
    events: Sequence[dict[str, Any]],
    kind: PeriodKind,
    stage_map: StageMap = DEFAULT_STAGE_MAP,
    tz: str = "UTC",
    keep=lambda event_id, who, when: True,
) -> dict[str, dict[str, int]]:
    people: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for event_id, who, when, stage in counted(events, stage_map):
        if keep(event_id, who, when):
            for s in implied(stage):
                people[period_of(when, kind, tz)][s.value].add(who)
    return {p: {s.value: len(v[s.value]) for s in Stage} for p, v in people.items()}


def oracle_credits(
    data: Dataset, model: Model, window_days: int, stage_map: StageMap = DEFAULT_STAGE_MAP
) -> dict[str, list[tuple[Touch | None, float]]]:
    """event_id -> [(touch or None, weight)] by the domain's attribute()."""
    touches = all_touches(data)
    return {
        event_id: [
            (c.touch, c.weight) for c in attribute(when, touches.get(who, []), model, window_days)
        ]
        for event_id, who, when, _ in counted(data.events, stage_map)
    }
