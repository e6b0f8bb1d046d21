"""A frozen sink process (SIGSTOP; a sink hung on a lock looks the same) is SIGKILLed
once a write has made no progress for ``stall_seconds``, and a new one writes the batch:
nothing lost, nothing twice, the kill counted, and the worker's heartbeat told to keep
quiet until the batch is written. On a real SQLite database through the real sink."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from sqlalchemy import func, select

from services.db.migrate import upgrade
from services.db.models import EngagementEvent
from services.db.session import make_engine, make_sessionmaker
from streams.writer import SinkProcess
from tests.integration.streams.test_isolation import record


def test_a_frozen_sink_process_is_killed_and_its_batch_written_by_a_new_one(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'winwin.db'}"
    upgrade(url)
    sink = SinkProcess(url, 30, "UTC", stall_seconds=1.0)
    try:
        asyncio.run(sink.write([], []))  # the child is up and idle
        assert not sink.stalled() and sink.stalls == 0
        (frozen,) = sink._pool._processes  # type: ignore[attr-defined]
        os.kill(frozen, signal.SIGSTOP)
        batch = [record(i, person="p" + f"{i:032x}") for i in range(20)]

        async def write_and_watch() -> tuple[int, list[bool]]:
            seen: list[bool] = []
            written = asyncio.ensure_future(sink.write_all(batch, []))
            while not written.done():
                seen.append(sink.stalled())
                await asyncio.sleep(0.02)
            result, failures = await written
            assert not failures
            return result.new_events, seen

        new_events, seen = asyncio.run(write_and_watch())
        assert new_events == 20 and sink.stalls == 1
        assert True in seen and not sink.stalled()  # quiet from the kill to the rewrite
        assert frozen not in sink._pool._processes  # type: ignore[attr-defined]
        with make_sessionmaker(make_engine(url))() as s:
            assert s.scalar(select(func.count()).select_from(EngagementEvent)) == 20
    finally:
        sink._pool.shutdown(cancel_futures=True)
