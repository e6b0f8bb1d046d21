"""The attribution sink in a process of its own, next to the stream worker.

A worker's CPU went ~3/4 to the sink (SQL writes, touches, credits) and ~1/4 to Kafka
(fetch, decode, validate, publish credits). Both are Python under one GIL, so a sink
thread ran them one after the other (two batches in flight in threads gained nothing).
In a child process the sink writes batch N while the worker decodes batch N+1 on the
other core (`winwin bench pipeline`, README "Performance").

The child does only what the thread did: ``AttributionSink.write`` (one SQL transaction
per batch), then the journeys hook, then the batch's identity changes (merges and their
undo: rows moved, persons recounted, ``services/journeys/recount.py``): the one writer
of read models. ``streams.agents`` commits a batch's offsets only after
the child has written it and its credits are published. The child dies with the worker
(``PR_SET_PDEATHSIG``), so a killed worker leaves no writer behind, and if the child dies
alone (OOM killer) a new one is started and the batch written again: writes are keyed,
so writing it twice stores it once.

A batch whose write raises (a record the sink cannot write, or cannot even pickle) is
written again in halves, in order, until the records at fault stand alone: those come
back as :class:`Failure` (the worker dead-letters them) and all the others are written.
A failure of the database itself (unreachable, locked) is no record's fault: it stops
the worker as before, and nothing is committed past it.

A child that makes no progress (frozen by SIGSTOP, hung on a lock or a page-in) would
stall the worker forever: a call to it that runs longer than ``stall_seconds``
(``WINWIN_SINK_STALL_SECONDS``) gets it SIGKILLed, and the path of a child that died
alone takes over (a new child, the batch written again). :attr:`SinkProcess.stalls`
counts those kills, and :meth:`SinkProcess.stalled` tells the heartbeat not to claim
health while a write is overdue. A child stalled :data:`RESTARTS` times in a row is the
database's fault, not a record's: :class:`SinkStalled` stops the worker.

No Faust here: the child imports only the sink and its database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from sqlalchemy import exc as sql_errors
from sqlalchemy import text

from services.analytics.sink import AttributionSink, BatchResult
from services.db.session import make_engine, make_sessionmaker
from services.journeys.recount import apply_changes
from services.journeys.stream import on_batch as journeys_on_batch
from services.logs import configure

log = logging.getLogger(__name__)

_sink: AttributionSink | None = None  # the child's, set by _open()
#: New sink processes per batch before its write is given up (and the worker stops).
RESTARTS = 5
ENGAGEMENT, TOUCHES, IDENTITY = "engagement", "touches", "identity"
#: Errors of the sink's surroundings, not of a record: never a reason to dead-letter one.
_ENVIRONMENT = (
    sql_errors.OperationalError,
    sql_errors.InterfaceError,
    sql_errors.DisconnectionError,
    sql_errors.TimeoutError,
    OSError,
)
#: Default of ``stall_seconds``: a batch (~20k records) is written in 1 to 3 s; 60 s is
#: far past any write of a live sink, yet short against a worker frozen for good.
STALL_SECONDS = 60.0
#: Seconds a new sink process gets to come up (spawn, imports: 1 to 3 s) before it counts
#: as stalled: its first write must not be cut short by its start.
STARTUP_SECONDS = 30.0


class SinkStalled(TimeoutError):
    """The sink process made no progress, again after every restart (an environment error)."""


@dataclass(frozen=True)
class Failure:
    """A record the sink could not write, alone: which list, its index there, and why."""

    kind: str  # ENGAGEMENT, TOUCHES or IDENTITY
    index: int
    error: str


class SinkProcess:
    """Writes batches through an :class:`AttributionSink` living in a child process."""

    def __init__(
        self,
        database_url: str,
        window_days: int,
        timezone: str,
        secret: bytes | None = None,
        stall_seconds: float = STALL_SECONDS,
    ):
        self._args = (database_url, window_days, timezone, secret)
        self.stall_seconds = stall_seconds
        #: Children killed because a call to them ran longer than ``stall_seconds``.
        self.stalls = 0
        self._calls = 0  # calls in flight
        self._progress_at = self._done_at = time.monotonic()
        self._stalled_pool: ProcessPoolExecutor | None = None
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        self._started_at = time.monotonic()
        # spawn, not fork: the worker has threads (Faust's consumer) and open sockets.
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=get_context("spawn"),
            initializer=_open,
            initargs=(os.getpid(), *self._args),
        )
        # Start it now, not on the first batch; its kill timer starts once it is up.
        self._ready = pool.submit(_ready)
        self._ready.add_done_callback(self._up)
        return pool

    def _up(self, _: object) -> None:
        self._progress_at = time.monotonic()

    async def write(
        self,
        engagement: Sequence[dict[str, Any]],
        touches: Sequence[dict[str, Any]],
        restarts: int = RESTARTS,
        identity: Sequence[dict[str, Any]] = (),
    ) -> BatchResult:
        """Write one batch (in order with the batches written before it). If the child
        dies, start another and write the batch again, up to ``restarts`` times."""
        args = (engagement, touches, identity)
        result: BatchResult = await self._call(_write, args, restarts)
        return result

    async def write_all(
        self,
        engagement: Sequence[dict[str, Any]],
        touches: Sequence[dict[str, Any]],
        identity: Sequence[dict[str, Any]] = (),
    ) -> tuple[BatchResult, list[Failure]]:
        """:meth:`write`, or, when that raises for a reason other than the database, the
        batch written in halves (in order) until each record at fault stands alone: the
        others written, those returned as failures."""
        try:
            return await self.write(engagement, touches, identity=identity), []
        except _ENVIRONMENT:
            raise
        except Exception as exc:  # noqa: BLE001 - any record may be at fault: find it
            log.warning(
                "a batch of %d records could not be written (%s); writing it in parts",
                len(engagement) + len(touches) + len(identity),
                describe(exc),
            )
        pick = {ENGAGEMENT: engagement, TOUCHES: touches, IDENTITY: identity}
        items = [(kind, i) for kind, records in pick.items() for i in range(len(records))]
        result, failures = BatchResult(), []
        parts = deque(_halves(items))
        while parts:
            part = parts.popleft()
            e, t, ids = ([pick[k][i] for k, i in part if k == kind] for kind in pick)
            try:
                _add(result, await self.write(e, t, restarts=1, identity=ids))
            except _ENVIRONMENT:
                raise
            except Exception as exc:  # noqa: BLE001 - narrowed down below
                if len(part) > 1:
                    parts.extendleft(reversed(_halves(part)))
                    continue
                await self._call(_probe, (), RESTARTS)  # the sink itself works: the record fails
                failures.append(Failure(part[0][0], part[0][1], describe(exc)))
        return result, failures

    async def _call(self, fn: Callable[..., Any], args: tuple[Any, ...], restarts: int) -> Any:
        loop = asyncio.get_running_loop()
        if self._calls == 0:  # the child was idle: its time starts now
            self._progress_at = self._done_at = time.monotonic()
        self._calls += 1
        try:
            for attempt in range(restarts + 1):
                pool = self._pool
                try:
                    return await self._watched(loop.run_in_executor(pool, fn, *args), pool)
                except BrokenProcessPool as exc:
                    if attempt == restarts and pool is self._stalled_pool:
                        raise SinkStalled(f"the sink stalled {self.stalls} times") from exc
                    if attempt == restarts:
                        raise
                    if self._pool is pool:  # the first of the batches in flight to hear of it
                        log.error("the sink process died; starting a new one")
                        self._pool = self._start()
        finally:
            self._calls -= 1
        raise AssertionError("unreachable")

    def stalled(self) -> bool:
        """Whether calls have been in flight for ``stall_seconds`` with none finished
        (through the kills and restarts it took): the heartbeat then says nothing."""
        return self._calls > 0 and time.monotonic() - self._done_at >= self.stall_seconds

    async def _watched(self, call: asyncio.Future[Any], pool: ProcessPoolExecutor) -> Any:
        """Await ``call`` to ``pool``'s child; SIGKILL the child once the calls to it have
        made no progress for ``stall_seconds`` (the call then raises BrokenProcessPool)."""
        while True:
            done, _ = await asyncio.wait({call}, timeout=max(0.1, self._time_left()))
            if done:
                self._progress_at = time.monotonic()  # the next call's time starts
                if not isinstance(call.exception(), BrokenProcessPool):
                    self._done_at = self._progress_at
                return call.result()
            if self._time_left() <= 0:
                self._kill(pool)

    def _time_left(self) -> float:
        """Seconds before the current child counts as stalled: ``stall_seconds`` since its
        last progress once it is up, :data:`STARTUP_SECONDS` at least to come up."""
        if self._ready.done():
            return self._progress_at + self.stall_seconds - time.monotonic()
        startup = max(self.stall_seconds, STARTUP_SECONDS)
        return self._started_at + startup - time.monotonic()

    def _kill(self, pool: ProcessPoolExecutor) -> None:
        self._progress_at = time.monotonic()  # once per stall, whichever call saw it first
        if pool is not self._pool:
            return  # replaced already: its child died
        self.stalls += 1
        self._stalled_pool = pool
        for pid, child in dict(pool._processes or {}).items():  # the stdlib's: no public way
            log.error(
                "the sink process (pid %d) wrote nothing for %.0f s (frozen, or stuck on a "
                "lock); killing it: a new one writes the batch again (stall %d)",
                pid,
                self.stall_seconds,
                self.stalls,
            )
            child.kill()


def describe(exc: BaseException) -> str:
    """One line for a dead letter: the exception's type and message, at most 500 chars."""
    return f"{type(exc).__name__}: {exc}"[:500]


def _halves(items: list[Any]) -> list[list[Any]]:
    middle = len(items) // 2
    return [items[:middle], items[middle:]] if middle else [items]


def _add(total: BatchResult, part: BatchResult) -> None:
    total.new_events += part.new_events
    total.duplicates += part.duplicates
    total.new_touches += part.new_touches
    total.credits += part.credits


# -- in the child ------------------------------------------------------------------------


def _open(
    parent: int, database_url: str, window_days: int, timezone: str, secret: bytes | None
) -> None:
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the worker, which stops us

    configure(role="worker")
    global _sink
    sessions = make_sessionmaker(make_engine(database_url))
    _sink = AttributionSink(sessions, window_days, timezone, secret=secret)


def _ready() -> None:
    pass


def _probe() -> None:
    """Raise when the sink cannot reach its database."""
    assert _sink is not None, "the sink process was not opened"
    with _sink.sessions() as session:
        session.execute(text("SELECT 1"))


def _write(
    engagement: Sequence[dict[str, Any]],
    touches: Sequence[dict[str, Any]],
    identity: Sequence[dict[str, Any]] = (),
) -> BatchResult:
    assert _sink is not None, "the sink process was not opened"
    result = _sink.write(engagement, touches)
    journeys_on_batch(_sink.sessions, engagement)
    apply_changes(_sink.sessions, identity, _sink.timezone, _sink.window_days)
    return result


def _die_with(parent: int) -> None:
    """SIGKILL this process when ``parent`` exits (Linux): a worker killed midway leaves
    no writer behind, and the batch being written rolls back, to be replayed in full
    (credits topic included) by the worker that takes over its partitions."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)
