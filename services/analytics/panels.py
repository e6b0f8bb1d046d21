"""Read models for the dashboard's panels beyond the stage metrics and attribution:
unique people over a date range, the bot/scanner report, the messenger leaderboard,
the stream's health (lag, dead letters, workers), and the Prometheus gauges fed from
other processes (the worker's heartbeat counters, the dispatcher's sends in SQL).

Kafka questions are cached for a few seconds: a dashboard polling every few seconds and
a Prometheus scrape share one answer instead of each opening an admin client.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from services.analytics import metrics, prometheus
from services.bus.lag import stream_position
from services.config import Settings
from services.db import models
from services.domain.attribution import Dimension, Model

if TYPE_CHECKING:
    from services.application import Container

log = logging.getLogger(__name__)
STAGES = ("aware", "use", "produce")
KAFKA_TTL = 5.0
WORKER_RECENT = timedelta(minutes=10)

CONSUMER_LAG = prometheus.gauge(
    "winwin_consumer_lag_messages", "Messages not yet consumed by the stream worker group."
)
DEAD_LETTERS = prometheus.gauge(
    "winwin_deadletter_messages", "Messages in the dead-letter topic (retained)."
)
WORKER_EVENTS = prometheus.counter(
    "winwin_worker_events_total", "Engagement events written by each stream worker process."
)
WORKER_CREDITED = prometheus.counter(
    "winwin_worker_credited_events_total", "Stage events credited to a touch, per worker process."
)
WORKER_DEAD = prometheus.counter(
    "winwin_worker_deadlettered_total", "Records sent to the dead-letter topic, per worker process."
)
WORKER_SINK_STALLS = prometheus.counter(
    "winwin_worker_sink_stalls_total",
    "Sink processes a worker killed because a batch's write made no progress.",
)
SENDS = prometheus.counter(
    "winwin_sends_total", "Campaign sends by status, from SQL (rate() of sent = send rate)."
)


def range_counts(session: Session, first_month: str, last_month: str) -> dict[str, int]:
    """Unique people per stage with a counted event in the months ``[first, last]``."""
    F = models.StageFact
    stmt = (
        select(F.stage, func.count(distinct(F.person)))
        .where(F.period_kind == "month", F.period.between(first_month, last_month))
        .group_by(F.stage)
    )
    return dict.fromkeys(STAGES, 0) | {stage: n for stage, n in session.execute(stmt)}


def bot_report(session: Session, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """Events kept but not counted (bots, scanners, machine opens), by reason and type."""
    E = models.EngagementEvent
    where = [E.occurred_at >= start] if start else []
    where += [E.occurred_at < end] if end else []
    stmt = select(E.bot, E.bot_reason, E.type, func.count()).where(*where)
    rows = session.execute(stmt.group_by(E.bot, E.bot_reason, E.type)).all()
    flagged: list[dict[str, Any]] = [
        {"reason": reason or "unknown", "type": kind, "events": n}
        for bot, reason, kind, n in rows
        if bot
    ]
    flagged.sort(key=lambda r: (-r["events"], r["reason"], r["type"]))
    return {
        "counted": sum(n for bot, _, _, n in rows if not bot),
        "flagged": sum(r["events"] for r in flagged),
        "rows": flagged,
    }


def leaderboard(
    session: Session, model: Model | str, window_days: int, start: str | None, end: str | None
) -> list[dict[str, Any]]:
    """Messengers ranked by people credited at each stage (then credited events)."""
    answer = metrics.attribution(session, model, window_days, start, end, Dimension.MESSENGER)
    names = {m.id: (m.name, m.role) for m in session.scalars(select(models.Messenger))}
    board: dict[str, dict[str, Any]] = {}
    for row in answer["rows"]:
        key = row["key"]
        if key in ("unattributed", "(none)"):
            continue
        name, role = names.get(key, (key, ""))
        entry = board.setdefault(
            key,
            {"messenger_id": key, "name": name, "role": role, "credited": 0.0}
            | dict.fromkeys(STAGES, 0),
        )
        entry[row["stage"]] = row["people"]
        entry["credited"] = round(entry["credited"] + row["credited"], 6)
    ranked = sorted(
        board.values(), key=lambda e: (-e["produce"], -e["use"], -e["aware"], e["name"])
    )
    return ranked


def workers(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """Stream workers seen recently, with the counters of their heartbeat."""
    since = (now or datetime.now(UTC)) - WORKER_RECENT
    H = models.WorkerHeartbeat
    out = []
    for worker_id, seen_at, info in session.execute(select(H.worker_id, H.seen_at, H.info)):
        seen = seen_at if seen_at.tzinfo else seen_at.replace(tzinfo=UTC)
        if seen >= since:
            out.append({"worker_id": worker_id, "seen_at": seen.isoformat(), **(info or {})})
    return sorted(out, key=lambda w: w["worker_id"])


class StreamHealth:
    """Cached answers about the stream from Kafka (lag, dead letters); never raises."""

    def __init__(self, settings: Settings, ttl: float = KAFKA_TTL):
        self.settings = settings
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = -1e9
        self._value: dict[str, Any] = {}

    def get(self) -> dict[str, Any]:
        with self._lock:
            if time.monotonic() - self._at >= self.ttl:
                self._value = self._ask()
                self._at = time.monotonic()
            return self._value

    def _ask(self) -> dict[str, Any]:
        if not self.settings.kafka_bootstrap:
            return {
                "lag": None,
                "total_lag": None,
                "deadletters": None,
                "error": "no Kafka configured",
            }
        try:
            pos = stream_position(self.settings)
        except Exception as exc:  # noqa: BLE001 - the panel says why; the page keeps working
            log.warning("stream position unavailable: %s", exc)
            return {"lag": None, "total_lag": None, "deadletters": None, "error": str(exc)[:200]}
        return {
            "lag": pos.lag,
            "total_lag": pos.total_lag,
            "deadletters": pos.deadletters,
            "error": None,
        }


def stream_health(container: Container) -> StreamHealth:
    """The container's one :class:`StreamHealth` (created on first use)."""
    if container.stream_health is None:
        container.stream_health = StreamHealth(container.settings)
    return container.stream_health


def refresh_prometheus(container: Container) -> None:
    """Set the gauges that come from Kafka, the workers' heartbeats and SQL (scrape time)."""
    health = stream_health(container).get()
    for topic, lag in (health.get("lag") or {}).items():
        CONSUMER_LAG.set(lag, topic=topic)
    if health.get("deadletters") is not None:
        DEAD_LETTERS.set(health["deadletters"])
    with container.sessions() as session:
        for w in workers(session):
            WORKER_EVENTS.mirror(w.get("events", 0), worker=w["worker_id"])
            WORKER_CREDITED.mirror(w.get("credited", 0), worker=w["worker_id"])
            WORKER_DEAD.mirror(w.get("dead", 0), worker=w["worker_id"])
            WORKER_SINK_STALLS.mirror(w.get("sink_stalls", 0), worker=w["worker_id"])
        S = models.Send
        for status, n in session.execute(select(S.status, func.count()).group_by(S.status)):
            SENDS.mirror(n, status=status)
