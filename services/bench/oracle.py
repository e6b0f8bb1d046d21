"""The brute-force oracle of the reads benchmark: every answer the API gives about a
:class:`~services.bench.network.Network`, recomputed from its records alone with the
domain's ``attribute_all`` and ``implied`` (no SQL, no sink), and the comparisons.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.bench.network import TYPES, Network
from services.domain import DEFAULT_STAGE_MAP, Model, Touch, attribute_all, implied, period_of
from services.domain.attribution import DEFAULT_MODEL, Credit
from services.domain.periods import PeriodKind

#: ``(key, stage) -> (credited, people, events)``, as the attribution answers' rows.
Rows = dict[tuple[str, str], tuple[float, int, int]]


class _Sums:
    """Credited weight, distinct people and events per ``(key, stage)``."""

    def __init__(self) -> None:
        self.acc: dict[tuple[str, str], list[Any]] = {}

    def add(self, key: str, stage: str, weight: float, who: str) -> None:
        acc = self.acc.setdefault((key, stage), [0.0, set(), 0])
        acc[0] += weight
        acc[1].add(who)
        acc[2] += 1

    def rows(self) -> Rows:
        return {k: (v[0], len(v[1]), v[2]) for k, v in self.acc.items()}


@dataclass
class Oracle:
    """Expected answers: monthly unique people (all, and credited to one campaign under
    last touch), attribution rows per model (all time, by campaign) at the stream's
    window and at ``other_window``, the campaign's rows per ``(month, stage)``, the
    dashboard's attribution (default model, events in the network's months) by campaign
    and by channel, and its bot report's counts (events in the months)."""

    months: dict[str, dict[str, int]]
    campaign_months: dict[str, dict[str, int]]
    attribution: dict[str, Rows]
    other_window: dict[str, Rows] = field(default_factory=dict)
    campaign: Rows = field(default_factory=dict)
    in_range: dict[str, Rows] = field(default_factory=dict)
    bots: dict[str, int] = field(default_factory=dict)


def _by(credits: list[Credit], key: Callable[[Touch], str]) -> dict[str, float]:
    """Credited weight per key (``unattributed`` for an event with no touch)."""
    per_key: dict[str, float] = defaultdict(float)
    for c in credits:
        if c.weight > 0:
            per_key[key(c.touch) if c.touch else "unattributed"] += c.weight
    return per_key


def _campaign(t: Touch) -> str:
    return t.campaign_id


def _channel(t: Touch) -> str:
    return t.channel or "(none)"


class _Tally:
    """The oracle's accumulators, fed one unique event at a time."""

    def __init__(self, net: Network, campaign: str, window_days: int, other: int | None):
        self.net, self.campaign, self.window, self.other = net, campaign, window_days, other
        self.months: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.credited: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.sums = {m.value: _Sums() for m in Model}
        self.others = {m.value: _Sums() for m in Model}
        self.of_campaign, self.by_campaign, self.by_channel = _Sums(), _Sums(), _Sums()
        self.bots = {"counted": 0, "flagged": 0}
        self.label: dict[str, str] = {}

    def month(self, occurred_at: str) -> str:
        day = occurred_at[:10]
        found = self.label.get(day)
        if found is None:
            found = self.label[day] = period_of(_parse(occurred_at), PeriodKind.MONTH)
        return found

    def event(self, e: dict[str, Any], touches: list[Touch]) -> None:
        month, who = self.month(e["occurred_at"]), e["person"]
        in_range = self.net.months[0] <= month <= self.net.months[-1]
        if in_range:
            self.bots["flagged" if e.get("bot") else "counted"] += 1
        stage = DEFAULT_STAGE_MAP.stage_of(e["type"])
        if e.get("bot") or stage is None:
            return
        when, s = _parse(e["occurred_at"]), stage.value
        for up in implied(stage):
            self.months[month][up.value].add(who)
        for model, credits in attribute_all(when, touches, self.window).items():
            per_key = _by(credits, _campaign)
            for key, weight in per_key.items():
                self.sums[model.value].add(key, s, weight, who)
            if model is Model.LAST_TOUCH and self.campaign in per_key:
                for up in implied(stage):
                    self.credited[month][up.value].add(who)
            if model is DEFAULT_MODEL:
                self.default_model(month, s, who, credits, in_range)
        if self.other is not None:
            for model, credits in attribute_all(when, touches, self.other).items():
                for key, weight in _by(credits, _campaign).items():
                    self.others[model.value].add(key, s, weight, who)

    def default_model(
        self, month: str, stage: str, who: str, credits: list[Credit], in_range: bool
    ) -> None:
        per_campaign = _by(credits, _campaign)
        if self.campaign in per_campaign:
            self.of_campaign.add(month, stage, per_campaign[self.campaign], who)
        if in_range:
            for key, weight in per_campaign.items():
                self.by_campaign.add(key, stage, weight, who)
            for key, weight in _by(credits, _channel).items():
                self.by_channel.add(key, stage, weight, who)

    def answer(self) -> Oracle:
        return Oracle(
            _sizes(self.months),
            _sizes(self.credited),
            {m: s.rows() for m, s in self.sums.items()},
            {m: s.rows() for m, s in self.others.items()} if self.other is not None else {},
            self.of_campaign.rows(),
            {"campaign": self.by_campaign.rows(), "channel": self.by_channel.rows()},
            self.bots,
        )


def oracle(
    net: Network, campaign: str, window_days: int = 30, other_window: int | None = None
) -> Oracle:
    """Brute force over the raw records: dedupe by id, drop bots, attribute every event."""
    unique = {r["event_id"]: r for r in net.events}
    touches = _touches_by_person(net, unique)
    tally = _Tally(net, campaign, window_days, other_window)
    for e in unique.values():
        tally.event(e, touches.get(e["person"], []))
    return tally.answer()


def same_counts(body: dict[str, Any], expected: dict[str, dict[str, int]]) -> bool:
    """A stage metrics answer's unique people per period and stage, exactly."""
    got = {r["period"]: {s: r[s] for s in TYPES} for r in body["rows"]}
    zero = dict.fromkeys(TYPES, 0)
    return got == {p: expected.get(p, zero) for p in got}


def same_attribution(body: dict[str, Any] | list[Any], expected: Rows, key: str = "key") -> bool:
    """People and events exactly; credited within 2e-6 (the same floats summed in
    another order, then rounded to 6 places by the API). ``body``: an attribution answer,
    or a campaign's rows (a list keyed by ``period``)."""
    rows = body["rows"] if isinstance(body, dict) else body
    got = {(r[key], r["stage"]): (r["credited"], r["people"], r["events"]) for r in rows}
    if got.keys() != expected.keys():
        return False
    return all(
        got[k][1:] == expected[k][1:]
        and abs(got[k][0] - expected[k][0]) <= 2e-6 * max(1, expected[k][0])
        for k in got
    )


def _touches_by_person(net: Network, unique: dict[str, dict[str, Any]]) -> dict[str, list[Touch]]:
    found: dict[str, tuple[str, Touch]] = {}
    for t in net.touches:
        found[t["touch_id"]] = (t["person"], Touch(t["touch_id"], t["campaign_id"], t["channel"],
                                                   t["messenger_id"], _parse(t["occurred_at"])))  # fmt: skip
    for e in unique.values():
        if e.get("campaign_id") and not e.get("bot"):
            tid = f"e:{e['event_id']}"
            touch = Touch(
                tid, e["campaign_id"], e["channel"], e["messenger_id"], _parse(e["occurred_at"])
            )
            found[tid] = (e["person"], touch)
    by_person: dict[str, list[Touch]] = defaultdict(list)
    for who, touch in found.values():
        by_person[who].append(touch)
    return by_person


def _sizes(people: dict[str, dict[str, set[str]]]) -> dict[str, dict[str, int]]:
    return {p: {s: len(people[p][s]) for s in TYPES} for p in people}


def _parse(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
