"""Group commit for the hot endpoints (redirects, open pixels): the clicks of a moment
share one transaction, and each is answered once that transaction has committed, or,
when SQL fails or is slow, once the click is durably queued in the click spool
(services/tracking/spool.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.ports import EventPublisher
    from services.tracking.ingest import Ingest
    from services.tracking.spool import ClickSpool

log = logging.getLogger(__name__)


class Receipt:
    """A :meth:`Gatherer.later` task that settles one hand-over's future on its event loop:
    called once the records handed over before it are committed (True); the Gatherer
    calls :meth:`failed` instead when storing them failed (False: they are in the click
    spool, and held in memory and retried). Any other event publisher just calls it, as every ``later`` task."""

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

    When storing fails (the database is down or locked), the batch is appended to the
    click ``spool`` (one fsync), held in memory and retried every ``retry_after`` seconds,
    its receipts answered False: clicks keep being redirected, and a click answered is
    never lost. Once SQL answers, the spooled clicks (those of a process killed before,
    too) are stored, idempotently by event id, and the spool files deleted."""

    def __init__(
        self,
        ingest: Ingest,
        max_delay: float = 0.0,
        max_batch: int = 500,
        retry_after: float = 1.0,
        spool: ClickSpool | None = None,
    ):
        self.ingest = ingest
        self.max_delay = max_delay
        self.max_batch = max_batch
        self.retry_after = retry_after
        self.spool = spool
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
        if self._spooled_waiting():
            self._store_spool()
        if self._held:
            where = "kept in the click spool" if self.spool else "lost"
            log.error("%d tracking events were not stored (%s): the database is unreachable",
                      len(self._held), where)  # fmt: skip
        if self.spool is not None:
            self.spool.close()

    def step(self, wait: float = 0.0) -> None:
        """One pass of the gatherer's thread: store what is queued (waiting up to ``wait``
        for it) with what is held, then settle receipts and run tasks; then store what
        waits in the click spool, if SQL answers."""
        batch = self._drain(wait)
        if batch or self._held:
            self._flush(batch)
        if self._spooled_waiting():
            self._store_spool()

    def _spooled_waiting(self) -> bool:
        """Clicks in the spool, SQL storing again (or not tried lately)?"""
        return (
            self.spool is not None
            and self.spool.pending
            and not self._held
            and time.monotonic() >= self._retry_at
        )

    def _store_spool(self) -> None:
        if self.spool is not None and not self.spool.store(self.ingest.replay):
            self._retry_at = time.monotonic() + self.retry_after

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
        if not stored:  # durable before the receipts answer (those held already are)
            self._spool([item for item in items if isinstance(item, dict)])
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
            self._retry_at = 0.0
            return True
        except Exception:  # noqa: BLE001 - held in memory and retried
            log.exception(
                "could not store %d tracking events; holding them, retrying", len(records)
            )
            self._retry_at = time.monotonic() + self.retry_after
            return False

    def _spool(self, records: list[dict[str, Any]]) -> None:
        if self.spool is None or not records:
            return
        try:
            self.spool.append(records)
        except OSError:
            log.exception("could not spool %d tracking events; held in memory", len(records))


class _Batch:
    """The clicks of one event-loop iteration and the future they share."""

    __slots__ = ("future", "loop", "records")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[bool] = loop.create_future()
        self.records: list[dict[str, Any]] = []


class HandOver:
    """Clicks of one event-loop iteration handed to the Gatherer together, right after
    it (``call_soon``): one wake-up of the Gatherer thread per burst instead of a thread
    hand-off per click, which cost about a third of the redirect's throughput. They
    share one future (:meth:`store`), settled once their transaction is committed, and
    one deadline (``max_wait``): past it, they are appended to the click ``spool`` (one
    fsync for them all) and answered."""

    def __init__(
        self, gatherer: EventPublisher, max_wait: float = 2.0, spool: ClickSpool | None = None
    ) -> None:
        self.gatherer, self.max_wait, self.spool = gatherer, max_wait, spool
        self.batch: _Batch | None = None  # the clicks of this iteration, not handed yet

    def add(self, record: dict[str, Any]) -> None:
        self._hand_over(record)

    async def store(self, record: dict[str, Any]) -> bool:
        """Hand ``record`` over and wait until it is committed (True), or until storing
        it failed or took longer than ``max_wait`` and it is in the spool (False: the
        Gatherer stores it when SQL answers, or the API's next start does)."""
        return await asyncio.shield(self._hand_over(record))  # a dropped request: not theirs

    def _hand_over(self, record: dict[str, Any]) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        batch = self.batch
        if batch is None or batch.loop is not loop:  # also after a closed loop
            batch = self.batch = _Batch(loop)
            loop.call_soon(self.flush)
        batch.records.append(record)
        return batch.future

    def flush(self) -> None:
        batch, self.batch = self.batch, None
        if batch is None:
            return
        for record in batch.records:
            self.gatherer.add(record)
        self.gatherer.later(Receipt(batch.future))
        deadline = batch.loop.call_later(self.max_wait, self._late, batch)
        batch.future.add_done_callback(lambda _: deadline.cancel())

    def _late(self, batch: _Batch) -> None:
        """The deadline passed before the commit: spool the clicks (in a thread: fsync),
        then answer them."""
        if batch.future.done():
            return
        log.warning("%d clicks waited %.1f s for SQL; spooled, stored when SQL answers",
                    len(batch.records), self.max_wait)  # fmt: skip
        if self.spool is None:
            _settle(batch.future, False)
            return
        spooled = batch.loop.run_in_executor(None, self.spool.append, batch.records)
        spooled.add_done_callback(lambda done: _spooled(done, batch.future))


def _spooled(done: asyncio.Future[None], future: asyncio.Future[bool]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("could not spool clicks; held in memory", exc_info=done.exception())
    _settle(future, False)
