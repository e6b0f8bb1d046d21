"""The attribution sink: turns a batch of engagement and touch records into SQL facts.

One batch, one transaction, a handful of round trips whatever its size. Every write is
keyed (event id, touch id, (event, window, touch), (period, stage, person)), so a
batch delivered twice — a worker killed before it committed its Kafka offsets, a
rebalance — inserts nothing the second time: the stream is at-least-once, the counts are
exactly-once (DESIGN.md, Reliability rules).

Touches and stage events arrive on two topics, so a touch may be processed after an
event it should have been credited with. Such a late touch re-attributes that person's
stage events in ``[touch, touch + window)``: credits are replaced, never added to. Their
credits of the other windows (stored when someone read them) are dropped too, as are
those of later events within the widest window read. Each batch's stage events, and
those whose credits it dropped, are credited in every window computed so far too, so a
window someone has read stays complete as the stream goes on; the sink bumps the stored
data's generation whenever it changes credits and carries those windows on to it
(:mod:`services.analytics.windows`). A window recorded while a batch ran is left behind
and its next read looks for what it lacks
(:func:`~services.analytics.window_credits.ensure_window`).

Each touch is stored with when the sink received it: of two touches of one instant, the
one received first is the earlier (:func:`services.domain.attribution.touch_order`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from services.analytics import windows
from services.analytics.bulk import BulkInsert
from services.analytics.credit_rows import credit_rows
from services.analytics.erased import rekey_late
from services.analytics.stage_map import load_stage_map, version_in_force
from services.analytics.window_credits import touches_of
from services.db import models
from services.db.values import chunks, utc
from services.domain.attribution import Touch
from services.domain.periods import PeriodKind, period_label
from services.domain.stages import Stage, StageMap, implied

log = logging.getLogger(__name__)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def unstorable(record: Any) -> str | None:
    """Why SQL could not store a schema-valid record (the stream dead-letters it rather
    than stall on it): a NUL, a lone surrogate, an RFC 3339 time fromisoformat refuses."""
    try:
        text = json.dumps(record, ensure_ascii=False)
        text.encode("utf-8")
        parse_time(record["occurred_at"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"not storable: {exc}"
    return "not storable: NUL character" if "\\u0000" in text else None


@dataclass
class BatchResult:
    """What one batch changed: new events and touches, and the credits written."""

    new_events: int = 0
    duplicates: int = 0
    new_touches: int = 0
    credits: list[dict[str, Any]] = field(default_factory=list)


class AttributionSink:
    """Writes engagement and touch records idempotently and attributes stage events."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        window_days: int = 30,
        timezone: str = "UTC",
        secret: bytes | None = None,
    ):
        self.sessions = sessions
        self._secret = secret  # erased people's late events (services/analytics/erased.py)
        self.window_days = window_days
        self.window = timedelta(days=window_days)
        self.timezone = timezone
        self._zone = ZoneInfo(timezone)
        self._labels: dict[Any, dict[str, str]] = {}
        self._stage_map: StageMap | None = None
        self._stage_map_version = -1
        self._received = datetime.min.replace(tzinfo=UTC)

    def received_now(self) -> datetime:
        """When this batch's touches were received: now, and always after the last batch
        (a clock stepped back must not reorder arrivals)."""
        self._received = max(datetime.now(UTC), self._received + timedelta(microseconds=1))
        return self._received

    def stage_map(self, session: Session) -> StageMap:
        """The map in force until this batch commits (a change waits for the batch, or
        the batch for the change): first in the batch's transaction, one lookup by
        primary key; the map is read again only when its version changed."""
        version = version_in_force(session)
        if self._stage_map is None or version != self._stage_map_version:
            self._stage_map = load_stage_map(session)
            self._stage_map_version = version
        return self._stage_map

    def write(
        self, events: Sequence[dict[str, Any]], touches: Sequence[dict[str, Any]]
    ) -> BatchResult:
        result = BatchResult()
        with self.sessions() as session, session.begin():
            stage_map = self.stage_map(session)
            kept = windows.recorded(session)  # the windows this batch keeps complete
            events, touches = rekey_late(session, self._secret, events, touches)
            new_events = self._insert_events(session, events, stage_map, result)
            received = self.received_now()
            derived = [
                _touch_from_event(e, received)
                for e in new_events
                if e["campaign_id"] and not e["bot"]
            ]
            mine = [_touch_row(t, received) for t in touches]
            new_touches = self._insert_touches(session, [*mine, *derived], result)
            stage_events = [e for e in new_events if e["stage"] and not e["bot"]]
            self._insert_stage_facts(session, stage_events)
            late, wide = self._events_after(
                session, new_touches, {e["event_id"] for e in stage_events}
            )
            self._drop_stale_credits(session, late, wide)
            result.credits = self._attribute(session, stage_events, late)
            others = self._keep_complete(session, kept, stage_events + late, wide)
            if stage_events or late or wide:  # last: its row lock is held to the commit
                current = windows.data_changed(session)
                windows.carried(session, [self.window_days, *others], current)
        return result

    # -- steps ---------------------------------------------------------------------

    def _insert_events(
        self,
        session: Session,
        records: Sequence[dict[str, Any]],
        stage_map: StageMap,
        result: BatchResult,
    ) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for r in records:
            if r["event_id"] in rows:
                continue
            stage = stage_map.stage_of(r["type"])
            rows[r["event_id"]] = {
                "event_id": r["event_id"],
                "type": r["type"],
                "occurred_at": parse_time(r["occurred_at"]),
                "person": r["person"],
                "campaign_id": r.get("campaign_id"),
                "channel": r.get("channel"),
                "messenger_id": r.get("messenger_id"),
                "resource_id": r.get("resource_id"),
                "stage": stage.value if stage else None,
                "bot": bool(r.get("bot", False)),
                "bot_reason": r.get("bot_reason"),
                "properties": r.get("properties") or {},
            }
        new_ids = _EVENTS.insert_new(session, list(rows.values()), "event_id")
        result.new_events += len(new_ids)
        result.duplicates += len(records) - len(new_ids)
        return [row for eid, row in rows.items() if eid in new_ids]

    def _insert_touches(
        self, session: Session, rows: Sequence[dict[str, Any]], result: BatchResult
    ) -> list[dict[str, Any]]:
        unique = {r["touch_id"]: r for r in rows}
        new_ids = _TOUCHES.insert_new(session, list(unique.values()), "touch_id")
        result.new_touches += len(new_ids)
        return [r for tid, r in unique.items() if tid in new_ids]

    def _insert_stage_facts(self, session: Session, stage_events: Iterable[dict[str, Any]]) -> None:
        facts = set()
        for e in stage_events:
            labels = self.labels(e["occurred_at"]).items()
            for stage in _IMPLIED[e["stage"]]:
                for kind, label in labels:
                    facts.add((kind, label, stage, e["person"]))
        _FACTS.insert_ignore(session, list(facts))

    def labels(self, moment: datetime) -> dict[str, str]:
        """``{"month", "week", "day"}`` labels of ``moment`` (period_of's, cached per date)."""
        day = moment.astimezone(self._zone).date()
        labels = self._labels.get(day)
        if labels is None:
            if len(self._labels) > 20_000:
                self._labels.clear()
            labels = self._labels[day] = {k.value: period_label(day, k) for k in PeriodKind}
        return labels

    def _events_after(
        self, session: Session, new_touches: Sequence[dict[str, Any]], exclude: set[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Stored stage events that a late touch falls into the stream's window of, and
        those only in a wider window's (one that has been read)."""
        if not new_touches:
            return [], []
        span: dict[str, tuple[datetime, datetime]] = {}
        for t in new_touches:
            lo, hi = span.get(t["person"], (t["occurred_at"], t["occurred_at"]))
            span[t["person"]] = (min(lo, t["occurred_at"]), max(hi, t["occurred_at"]))
        C, E = models.Credit, models.EngagementEvent
        widest = session.execute(select(func.max(C.window_days))).scalar() or 0
        horizon = timedelta(days=max(widest, self.window_days))
        found: list[dict[str, Any]] = []
        wide: list[dict[str, Any]] = []
        for chunk in chunks(list(span)):
            lo = min(span[p][0] for p in chunk)
            hi = max(span[p][1] for p in chunk) + horizon
            stmt = select(E.event_id, E.person, E.occurred_at, E.stage).where(
                E.person.in_(chunk),
                E.stage.is_not(None),
                E.bot.is_(False),
                E.occurred_at >= lo,
                E.occurred_at < hi,
            )
            for row in session.connection().execute(stmt):  # Core rows: no ORM loading
                first, last = span[row.person]
                at = utc(row.occurred_at)
                if row.event_id in exclude or not first <= at < last + horizon:
                    continue
                stage_event = {"event_id": row.event_id, "person": row.person}
                stage_event |= {"occurred_at": at, "stage": row.stage}
                (wide if at >= last + self.window else found).append(stage_event)
        return found, wide

    def _drop_stale_credits(
        self, session: Session, late: Sequence[dict[str, Any]], wide: Sequence[dict[str, Any]]
    ) -> None:
        """Delete the credits a late touch makes wrong, in every window (written again
        at once in the stream's and the recorded windows, in others on their next read):
        every row of the event's id (a row holds every model's weight)."""
        C = models.Credit
        for chunk in chunks([e["event_id"] for e in late]):
            session.execute(delete(C).where(C.event_id.in_(chunk)))
        for chunk in chunks([e["event_id"] for e in wide]):
            session.execute(
                delete(C).where(C.event_id.in_(chunk), C.window_days > self.window_days)
            )

    def _attribute(
        self, session: Session, fresh: list[dict[str, Any]], late: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        events = fresh + late
        if not events:
            return []
        touches = touches_of(session, events, self.window_days)
        rows = [row for e in events for row in self._credit_rows(e, touches.get(e["person"], []))]
        _CREDITS.insert_ignore(session, [*map(_CREDITS.key, rows)])
        return rows

    def _keep_complete(
        self,
        session: Session,
        kept: dict[int, int],
        events: list[dict[str, Any]],
        wide: list[dict[str, Any]],
    ) -> list[int]:
        """Credit in every other recorded window the batch's stage events and those whose
        credits it dropped there (``wide`` only in windows wider than the stream's);
        returns those windows."""
        others = [w for w in sorted(kept) if w != self.window_days]
        for window in others:
            todo = events + wide if window > self.window_days else events
            if not todo:
                continue
            touches = touches_of(session, todo, window)
            rows = [
                row
                for e in todo
                for row in self._credit_rows(e, touches.get(e["person"], []), window)
            ]
            _CREDITS.insert_ignore(session, [*map(_CREDITS.key, rows)])
        return others

    def _credit_rows(
        self, event: dict[str, Any], touches: Iterable[Touch], window: int | None = None
    ) -> list[dict[str, Any]]:
        labels = self.labels(event["occurred_at"])
        return credit_rows(event, touches, window or self.window_days, self.timezone, labels)


def _touch_row(r: dict[str, Any], received: datetime) -> dict[str, Any]:
    return {
        "touch_id": r["touch_id"],
        "person": r["person"],
        "campaign_id": r["campaign_id"],
        "channel": r.get("channel"),
        "messenger_id": r.get("messenger_id"),
        "kind": r["kind"],
        "occurred_at": parse_time(r["occurred_at"]),
        "received_at": received,
    }


def _touch_from_event(e: dict[str, Any], received: datetime) -> dict[str, Any]:
    """An event carrying a campaign is also an exposure to it (a click, a toolkit visit)."""
    return {
        "touch_id": f"e:{e['event_id']}",
        "person": e["person"],
        "campaign_id": e["campaign_id"],
        "channel": e["channel"],
        "messenger_id": e["messenger_id"],
        "kind": e["type"][:50],  # touches.kind is 50 characters, event types 100
        "occurred_at": e["occurred_at"],
        "received_at": received,
    }


_IMPLIED = {s.value: tuple(i.value for i in implied(s)) for s in Stage}
_FACTS = BulkInsert(models.StageFact.__table__, ("period_kind", "period", "stage", "person"))  # type: ignore[arg-type]
# Credits are inserted in the order of their widest index (the primary key's event ids
# come roughly in order anyway): ~30 % less insert time (SQLite). (window_days is one
# value per sink and weight never decides the order, so they are left out.)
_CREDITS = BulkInsert(
    models.Credit.__table__,  # type: ignore[arg-type]
    order=("campaign_id", "stage", "day", "person", "event_id"),  # its index's
)
_EVENTS = BulkInsert(models.EngagementEvent.__table__)  # type: ignore[arg-type]
_TOUCHES = BulkInsert(models.Touch.__table__)  # type: ignore[arg-type]
