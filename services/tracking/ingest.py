"""Accepting engagement: the ingest ledger and the outbox, in one transaction.

``POST /api/v1/events`` and the public tracking endpoints both end here. An event is
*accepted* once its id is in the ledger and its pseudonymised record is in the outbox,
committed together; the relay then carries it to Kafka. Kafka being down delays
delivery, never acceptance.
"""

from __future__ import annotations

import asyncio
import contextlib
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


class Receipt:
    """A :meth:`Gatherer.later` task that settles one hand-over's future on its event loop:
    called once the records handed over before it are committed (True); the Gatherer
    calls :meth:`failed` instead when storing them failed (False: they are held in memory
    and retried). Any other event publisher just calls it, as every ``later`` task."""

    def __init__(self, future: asyncio.Future[bool]) -> None:
        self.future = future

    def __call__(self) -> None:
        self._settle(True)

    def failed(self) -> None:
        self._settle(False)

    def _settle(self, stored: bool) -> None:
        with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits any more
            self.future.get_loop().call_soon_threadsafe(_settle, self.future, stored)


def _settle(future: asyncio.Future[bool], stored: bool) -> None:
    if not future.done():
        future.set_result(stored)


class Gatherer:
    """Group commit for the hot endpoints (redirects, pixels): the single events handed
    over while the previous transaction ran are stored together, one SQL round trip per
    batch, and a :class:`Receipt` handed over after them says when they are committed.
    Work those endpoints must not wait for (an identity merge after a click) is handed
    over with :meth:`later` and done on the same thread, after the records before it.

    When storing fails (the database is down or locked), the batch is held in memory and
    retried every ``retry_after`` seconds, its receipts answered False at once: clicks keep
    being redirected, and what is held is lost only if the process dies before the
    database is back (a SIGTERM tries once more)."""

    def __init__(
        self,
        ingest: Ingest,
        max_delay: float = 0.0,
        max_batch: int = 500,
        retry_after: float = 1.0,
    ):
        self.ingest = ingest
        self.max_delay = max_delay
        self.max_batch = max_batch
        self.retry_after = retry_after
        self._queue: queue.Queue[dict[str, Any] | Callable[[], None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._held: list[dict[str, Any]] = []  # records not stored yet (the store failed)
        self._held_tasks: list[Callable[[], None]] = []  # tasks waiting for them
        self._retry_at = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gatherer", daemon=True)
        self._thread.start()

    def add(self, record: dict[str, Any]) -> None:
        self._queue.put(record)

    def later(self, task: Callable[[], None]) -> None:
        """Run ``task`` on the gatherer's thread, after the records added before it are
        stored (a :class:`Receipt` also when storing them failed)."""
        self._queue.put(task)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        items: list[dict[str, Any] | Callable[[], None]] = []
        while batch := self._drain(0):
            items += batch
        self._retry_at = 0.0  # one last try, now
        self._flush(items)
        if self._held:
            log.error(
                "%d tracking events were not stored: the database is unreachable", len(self._held)
            )

    def step(self, wait: float = 0.0) -> None:
        """One pass of the gatherer's thread: store what is queued (waiting up to ``wait``
        for it) with what is held, then settle receipts and run tasks."""
        batch = self._drain(wait)
        if batch or self._held:
            self._flush(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step(0.1)

    def _drain(self, wait: float) -> list[dict[str, Any] | Callable[[], None]]:
        """The first item (waiting up to ``wait``), all those queued behind it, then
        whatever arrives within ``max_delay``, up to ``max_batch`` items."""
        try:
            first = self._queue.get(timeout=wait) if wait else self._queue.get_nowait()
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.max_delay
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                if (remaining := deadline - time.monotonic()) <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
        return batch

    def _flush(self, items: list[dict[str, Any] | Callable[[], None]]) -> None:
        """Store the held records and those of ``items`` in one transaction; then settle
        the receipts and, once stored, run the tasks, in order."""
        records = self._held + [item for item in items if isinstance(item, dict)]
        receipts = [item for item in items if isinstance(item, Receipt)]
        tasks = self._held_tasks + [
            item for item in items if callable(item) and not isinstance(item, Receipt)
        ]
        stored = self._store(records)
        self._held, self._held_tasks = ([], []) if stored else (records, tasks)
        for receipt in receipts:
            receipt() if stored else receipt.failed()
        for task in tasks if stored else ():
            try:
                task()
            except Exception:  # noqa: BLE001 - a task's failure is its own
                log.exception("a task handed to the gatherer failed")

    def _store(self, records: list[dict[str, Any]]) -> bool:
        """``records`` committed? Not tried while the last failure is recent."""
        if not records:
            return True
        if self._held and time.monotonic() < self._retry_at:
            return False
        try:
            self.ingest.record(records)
            return True
        except Exception:  # noqa: BLE001 - held in memory and retried
            log.exception(
                "could not store %d tracking events; holding them, retrying", len(records)
            )
            self._retry_at = time.monotonic() + self.retry_after
            return False


class HandOver:
    """Clicks of one event-loop iteration handed to the Gatherer together, right after
    it (``call_soon``): one wake-up of the Gatherer thread per burst instead of a thread
    hand-off per click, which cost about a third of the redirect's throughput. They
    share one future (:meth:`store`), settled once their transaction is committed."""

    def __init__(self, gatherer: EventPublisher, max_wait: float = 2.0) -> None:
        self.gatherer, self.max_wait = gatherer, max_wait
        self.records: list[dict[str, Any]] = []
        self.scheduled: asyncio.AbstractEventLoop | None = None  # where flush will run
        self.batch: asyncio.Future[bool] | None = None  # settled when they are stored

    def add(self, record: dict[str, Any]) -> None:
        self._hand_over(record)

    async def store(self, record: dict[str, Any]) -> bool:
        """Hand ``record`` over and wait until it is committed (True), or until storing
        it failed or took longer than ``max_wait`` (False: the Gatherer holds it, stores
        it when SQL answers; lost only if the process dies before that)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._hand_over(record)), self.max_wait)
        except TimeoutError:
            log.warning("a click waited %.1f s for SQL; answered, stored when SQL answers",
                        self.max_wait)  # fmt: skip
            return False

    def _hand_over(self, record: dict[str, Any]) -> asyncio.Future[bool]:
        self.records.append(record)
        loop = asyncio.get_running_loop()
        if self.scheduled is not loop or self.batch is None:  # also after a closed loop
            self.scheduled = loop
            self.batch = loop.create_future()
            loop.call_soon(self.flush)
        return self.batch

    def flush(self) -> None:
        self.scheduled = None
        records, self.records = self.records, []
        batch, self.batch = self.batch, None
        for record in records:
            self.gatherer.add(record)
        if batch is not None:
            self.gatherer.later(Receipt(batch))
