"""A synthetic network for the reads benchmark (``winwin bench reads``).

The network looks like a learning health network's: people with a heavy-tailed activity
level, a monthly email newsletter (sends are touches; opens and clicks carry the
campaign), social and trusted-messenger toolkit campaigns (clicks carry channel and
messenger), follow-on resource use and contributions, organic traffic with no campaign,
unknown event types, bot hits, re-deliveries (same ``event_id``), years-old backfill, and
records that arrive late and out of order (touches too: they travel on their own topic).

:mod:`services.bench.oracle` recomputes every answer from these records alone.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.domain.periods import period_range, period_start

START = "2017-08"  # ImproveCareNow's baseline month
TYPES = {
    "aware": ["page.view", "page.view", "email.open", "link.click", "toolkit.opened"],
    "use": ["resource.view", "resource.view", "resource.download", "resource.use"],
    "produce": ["contribution.submitted", "story.shared", "resource.submitted"],
}
UNKNOWN = ["email.delivered", "newsletter.forwarded"]
Campaign = tuple[str, str, str | None]  # (campaign_id, channel, messenger_id)
DUPLICATES, BOTS, BACKFILL, LATE = 0.05, 0.03, 0.01, 0.03  # shares of event records


@dataclass
class Network:
    """Records in arrival order (``kind`` "e" for engagement, "t" for touches)."""

    months: list[str]
    arrivals: list[tuple[str, dict[str, Any]]]
    campaigns: list[Campaign] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [r for k, r in self.arrivals if k == "e"]

    @property
    def touches(self) -> list[dict[str, Any]]:
        return [r for k, r in self.arrivals if k == "t"]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Builder:
    def __init__(self, n_events: int, n_people: int, n_months: int, seed: int):
        self.rng = random.Random(seed)
        self.target = n_events
        self.months = period_range(START, _month_after(START, n_months - 1), "month")
        self.start = period_start(self.months[0], "month")
        self.span = (
            period_start(_month_after(self.months[-1], 1), "month") - self.start
        ).total_seconds()
        rng = self.rng
        self.people = [f"p{rng.getrandbits(128):032x}" for _ in range(n_people)]
        weights = [min(rng.paretovariate(1.3), 50.0) for _ in self.people]
        self.cumulative = list(_accumulate(weights))
        self.events: list[tuple[datetime, dict[str, Any]]] = []  # (arrival, record)
        self.touches: list[tuple[datetime, dict[str, Any]]] = []
        self.campaigns: list[Campaign] = []
        self.n = 0

    def someone(self) -> str:
        x = self.rng.random() * self.cumulative[-1]
        return self.people[bisect.bisect_right(self.cumulative, x)]

    def event(self, type_: str, at: datetime, who: str, campaign: Campaign | None = None,
              arrival: datetime | None = None, **extra: Any) -> None:  # fmt: skip
        self.n += 1
        record: dict[str, Any] = {
            "event_id": f"ev-{self.n}",
            "type": type_,
            "occurred_at": iso(at),
            "person": who,
        }
        if campaign:
            record.update(campaign_id=campaign[0], channel=campaign[1], messenger_id=campaign[2])
        record.update(extra)
        self.events.append((arrival or self.arrival(at), record))

    def arrival(self, at: datetime) -> datetime:
        r = self.rng.random()
        if r < LATE:  # late: days to months after the fact
            return at + timedelta(days=self.rng.uniform(1, 90))
        return at + timedelta(seconds=self.rng.expovariate(1 / 120))  # seconds to minutes

    def campaign_month(self, index: int, month: str) -> None:
        """A newsletter to a sample, a social post, a messenger's toolkit; their effects."""
        rng, begin = self.rng, period_start(month, "month")
        audience = max(1, min(len(self.people), int(self.target * 0.3 / len(self.months))))
        news = (f"news-{month}", "email", None)
        social = (f"social-{month}", "social", None)
        toolkit = (f"toolkit-{month}", "toolkit", f"m{index % 12 + 1}")
        self.campaigns += [news, social, toolkit]
        sent = begin + timedelta(days=rng.randrange(2, 8), hours=9)
        for who in rng.sample(self.people, audience):
            at = sent + timedelta(seconds=rng.randrange(3600))
            touch = {"touch_id": f"send:{news[0]}:{who}", "person": who, "campaign_id": news[0],
                     "channel": "email", "messenger_id": None, "kind": "email.sent", "occurred_at": iso(at)}  # fmt: skip
            delay = rng.expovariate(1 / 30) if rng.random() < 0.2 else rng.expovariate(1 / 2)
            self.touches.append((at + timedelta(seconds=delay), touch))
            if rng.random() < 0.02:  # a link scanner clicks at once: a bot hit
                self.event(
                    "link.click",
                    at + timedelta(seconds=5),
                    who,
                    news,
                    bot=True,
                    bot_reason="scanner",
                )
            if rng.random() < 0.25:
                opened = at + timedelta(hours=rng.expovariate(1 / 20))
                self.event("email.open", opened, who, news)
                if rng.random() < 0.3:
                    self.click_and_follow(opened + timedelta(minutes=2), who, news)
        for camp, share in ((social, 0.03), (toolkit, 0.02)):
            posted = begin + timedelta(days=rng.randrange(10, 25))
            for _ in range(max(1, int(self.target * share / len(self.months)))):
                self.click_and_follow(
                    posted + timedelta(hours=rng.expovariate(1 / 48)), self.someone(), camp
                )

    def click_and_follow(self, at: datetime, who: str, campaign: Campaign) -> None:
        rng = self.rng
        self.event("link.click", at, who, campaign)
        if rng.random() < 0.5:
            used = at + timedelta(days=rng.expovariate(1 / 4))
            self.event(rng.choice(TYPES["use"]), used, who)
            if rng.random() < 0.12:
                self.event(
                    rng.choice(TYPES["produce"]),
                    used + timedelta(days=rng.expovariate(1 / 10)),
                    who,
                )

    def organic(self, count: int) -> None:
        rng = self.rng
        for _ in range(count):
            r = rng.random()
            kind = "aware" if r < 0.66 else "use" if r < 0.91 else "produce" if r < 0.97 else None
            type_ = rng.choice(TYPES[kind]) if kind else rng.choice(UNKNOWN)
            at = self.start + timedelta(seconds=rng.uniform(0, self.span - 1))
            arrival = None
            if rng.random() < BACKFILL:  # posted now, happened years before the range
                at, arrival = self.start - timedelta(days=rng.uniform(200, 1500)), at
            extra = {"bot": True, "bot_reason": "user_agent"} if rng.random() < BOTS else {}
            self.event(type_, at.replace(microsecond=0), self.someone(), None, arrival, **extra)


def build_network(n_events: int, n_people: int, n_months: int, seed: int = 2017) -> Network:
    """``n_events`` engagement records (duplicates and bot hits included) plus touches."""
    b = _Builder(n_events, n_people, n_months, seed)
    unique = int(n_events * (1 - DUPLICATES))
    for index, month in enumerate(b.months):
        b.campaign_month(index, month)
    b.events = b.events[:unique]
    b.organic(unique - len(b.events))
    for arrival, record in b.rng.sample(b.events, n_events - len(b.events)):
        b.events.append((arrival + timedelta(seconds=b.rng.expovariate(1 / 600)), record))
    for arrival, record in b.rng.sample(b.touches, len(b.touches) // 50):  # re-sent touches
        b.touches.append((arrival + timedelta(seconds=b.rng.expovariate(1 / 600)), record))
    merged = [(t, "e", r) for t, r in b.events] + [(t, "t", r) for t, r in b.touches]
    merged.sort(key=lambda x: x[0])  # arrival order: late records land among newer ones
    return Network(b.months, [(k, r) for _, k, r in merged], b.campaigns)


def _month_after(label: str, months: int) -> str:
    year, month = map(int, label.split("-"))
    total = year * 12 + month - 1 + months
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def _accumulate(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for v in values:
        total += v
        out.append(total)
    return out
