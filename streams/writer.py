"""The attribution sink in a process of its own, next to the stream worker.

A worker's CPU went ~3/4 to the sink (SQL writes, touches, credits) and ~1/4 to Kafka
(fetch, decode, validate, publish credits). Both are Python under one GIL, so a sink
thread ran them one after the other (two batches in flight in threads gained nothing).
In a child process the sink writes batch N while the worker decodes batch N+1 on the
other core (`winwin bench pipeline`, README "Performance").

The child does only what the thread did: ``AttributionSink.write`` (one SQL transaction
per batch), then the journeys hook. ``streams.agents`` commits a batch's offsets only after
the child has written it and its credits are published. The child dies with the worker
(``PR_SET_PDEATHSIG``), so a killed worker leaves no writer behind, and if the child dies
alone (OOM killer) a new one is started and the batch written again: writes are keyed,
so writing it twice stores it once.

No Faust here: the child imports only the sink and its database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from services.analytics.sink import AttributionSink, BatchResult

log = logging.getLogger(__name__)

_sink: AttributionSink | None = None  # the child's, set by _open()
#: New sink processes per batch before its write is given up (and the worker stops).
RESTARTS = 5


class SinkProcess:
    """Writes batches through an :class:`AttributionSink` living in a child process."""

    def __init__(self, database_url: str, window_days: int, timezone: str):
        self._args = (database_url, window_days, timezone)
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the worker has threads (Faust's consumer) and open sockets.
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=get_context("spawn"),
            initializer=_open,
            initargs=(os.getpid(), *self._args),
        )
        pool.submit(_ready)  # start it now, not on the first batch
        return pool

    async def write(
        self, engagement: Sequence[dict[str, Any]], touches: Sequence[dict[str, Any]]
    ) -> BatchResult:
        """Write one batch (in order with the batches written before it). If the child
        dies, start another and write the batch again, up to :data:`RESTARTS` times."""
        loop = asyncio.get_running_loop()
        for attempt in range(RESTARTS + 1):
            pool = self._pool
            try:
                return await loop.run_in_executor(pool, _write, engagement, touches)
            except BrokenProcessPool:
                if attempt == RESTARTS:
                    raise
                if self._pool is pool:  # the first of the batches in flight to hear of it
                    log.error("the sink process died; starting a new one")
                    self._pool = self._start()
        raise AssertionError("unreachable")


# -- in the child ------------------------------------------------------------------------


def _open(parent: int, database_url: str, window_days: int, timezone: str) -> None:
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the worker, which stops us
    from services.db.session import make_engine, make_sessionmaker
    from services.logs import configure

    configure(role="worker")
    global _sink
    _sink = AttributionSink(make_sessionmaker(make_engine(database_url)), window_days, timezone)


def _ready() -> None:
    pass


def _write(engagement: Sequence[dict[str, Any]], touches: Sequence[dict[str, Any]]) -> BatchResult:
    from services.journeys.stream import on_batch as journeys_on_batch

    assert _sink is not None, "the sink process was not opened"
    result = _sink.write(engagement, touches)
    journeys_on_batch(_sink.sessions, engagement)
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
