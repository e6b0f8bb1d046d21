"""Accepting engagement: the ingest ledger and the outbox, in one transaction.

``POST /api/v1/events`` and the public tracking endpoints both end here. An event is
*accepted* once its id is in the ledger and its pseudonymised record is in the outbox,
committed together; the relay then carries it to Kafka. Kafka being down delays
delivery, never acceptance.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from services.analytics import prometheus
from services.db.repositories import SqlEventLedger
from services.db.unit_of_work import SqlUnitOfWork
from services.domain.events import NormalisedEvent, format_timestamp
from services.domain.pseudonyms import pseudonymise
from services.journeys.identity import resolve
from services.service_layer.handlers import IngestResult, accept_events, record_events
from services.tracking.bots import SCANNERS

if TYPE_CHECKING:
    from services.ports import EventPublisher

log = logging.getLogger(__name__)
MAX_EVENTS = 1000


class Ingest:
    """Validates, pseudonymises, deduplicates and spools engagement events."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        secret: bytes,
        now: Callable[[], datetime] | None = None,
    ):
        self.sessions = sessions
        self.secret = secret
        self.now = now or (lambda: datetime.now(UTC))

    def person(self, person_ref: str) -> str:
        """The pseudonym ``person_ref`` counts as (a visitor merged into a contact: the contact's)."""
        return resolve(self.sessions, pseudonymise(self.secret, person_ref))

    def accept(self, items: Sequence[Any]) -> IngestResult:
        """The contract's ``POST /api/v1/events`` semantics for a list of 1..1000 items."""
        uow = SqlUnitOfWork(self.sessions)
        result = accept_events(uow, items, now=self.now(), to_record=self.to_record)
        _observe(result)
        return result

    def record(self, records: Sequence[dict[str, Any]]) -> IngestResult:
        """Spool server-made records (clicks, opens, webhooks) with unique event ids."""
        result = IngestResult()
        with self.sessions() as session, session.begin():
            self._spool(session, records, result)
        _observe(result)
        return result

    def spool(self, session: Session, records: Sequence[dict[str, Any]]) -> IngestResult:
        """``record`` inside the caller's transaction; ``observe`` it once committed."""
        result = IngestResult()
        self._spool(session, records, result)
        return result

    @staticmethod
    def observe(result: IngestResult) -> None:
        _observe(result)

    def _spool(
        self, session: Session, records: Sequence[dict[str, Any]], result: IngestResult
    ) -> None:
        record_events(SqlEventLedger(session), records, result)

    def to_record(self, e: NormalisedEvent) -> dict[str, Any]:
        """The outbox record of a checked event: its person pseudonymised (and resolved),
        flagged when the site says a scanner sent it."""
        record: dict[str, Any] = {
            "event_id": e.event_id,
            "type": e.type,
            "occurred_at": format_timestamp(e.occurred_at),
            "person": self.person(e.person_ref),
            "source": "api",
            "properties": e.properties,
        }
        reason = _machine_reason(e.properties)
        if reason:
            record |= {"bot": True, "bot_reason": reason}
        for name in ("campaign_id", "channel", "messenger_id", "resource_id"):
            value = getattr(e, name)
            if value is not None:
                record[name] = value
        return record


def _observe(result: IngestResult) -> None:
    """Count a committed ingest in the Prometheus counters (``/metrics``)."""
    prometheus.EVENTS_ACCEPTED.inc(result.accepted)
    prometheus.EVENTS_DUPLICATE.inc(result.duplicates)
    prometheus.EVENTS_REJECTED.inc(len(result.rejected))


def _machine_reason(properties: dict[str, Any]) -> str | None:
    """The network's site may pass the visitor's user agent; scanners and crawlers are
    kept and flagged, not counted (DESIGN.md, Measurement semantics)."""
    agent = properties.get("user_agent")
    if isinstance(agent, str) and SCANNERS.search(agent):
        return "scanner-user-agent"
    return None


class Gatherer:
    """Collects single events from hot endpoints (redirects, pixels) for a few
    milliseconds and spools them in one transaction: one SQL round trip per flush,
    not per click. Work those endpoints must not wait for (an identity merge after a
    click) is handed over with :meth:`later` and done on the same thread, after."""

    def __init__(self, ingest: Ingest, max_delay: float = 0.005, max_batch: int = 500):
        self.ingest = ingest
        self.max_delay = max_delay
        self.max_batch = max_batch
        self._queue: queue.Queue[dict[str, Any] | Callable[[], None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gatherer", daemon=True)
        self._thread.start()

    def add(self, record: dict[str, Any]) -> None:
        self._queue.put(record)

    def later(self, task: Callable[[], None]) -> None:
        """Run ``task`` on the gatherer's thread, after the records added before it."""
        self._queue.put(task)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        while batch := self._drain(0):
            self._flush(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._drain(0.1)
            if batch:
                self._flush(batch)

    def _drain(self, wait: float) -> list[dict[str, Any] | Callable[[], None]]:
        """The first record (waiting up to ``wait``), then whatever arrives within
        ``max_delay`` of it, up to ``max_batch``."""
        try:
            first = self._queue.get(timeout=wait) if wait else self._queue.get_nowait()
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.max_delay
        while len(batch) < self.max_batch and (remaining := deadline - time.monotonic()) > 0:
            try:
                batch.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _flush(self, items: list[dict[str, Any] | Callable[[], None]]) -> None:
        self._spool([item for item in items if isinstance(item, dict)])
        for task in items:
            if callable(task):
                try:
                    task()
                except Exception:  # noqa: BLE001 - a task's failure is its own
                    log.exception("a task handed to the gatherer failed")

    def _spool(self, batch: list[dict[str, Any]]) -> None:
        while batch:
            try:
                self.ingest.record(batch)
                return
            except Exception:  # noqa: BLE001 - the database is the spool; keep trying
                log.exception("could not spool %d tracking events; retrying", len(batch))
                if self._stop.wait(1.0):
                    self.ingest.record(batch)
                    return


class HandOver:
    """Clicks of one event-loop iteration handed to the Gatherer together, right after
    it (``call_soon``): one wake-up of the Gatherer thread per burst instead of a thread
    hand-off per click, which cost about a third of the redirect's throughput."""

    def __init__(self, gatherer: EventPublisher) -> None:
        self.gatherer = gatherer
        self.records: list[dict[str, Any]] = []
        self.scheduled: asyncio.AbstractEventLoop | None = None  # where flush will run

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        loop = asyncio.get_running_loop()
        if self.scheduled is not loop:  # also when a previous loop closed before its flush
            self.scheduled = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = None
        records, self.records = self.records, []
        for record in records:
            self.gatherer.add(record)
