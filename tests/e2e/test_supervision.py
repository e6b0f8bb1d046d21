"""`winwin up` on the embedded default (Tansu broker, memory storage, and SQLite) keeps
its children running and stops them all:

* a role killed alone is started again, and the supervisor's log says so;
* the broker stopped with SIGTERM while it alone held accepted events (the worker
  frozen): it is started again with the relay and the worker, the relay sends those
  events again from the outbox, every one is stored, and /readyz answers 200 again;
* a worker frozen (SIGSTOP) stops its heartbeat: it is killed and started again, and the
  events posted meanwhile are all stored;
* SIGTERM to `winwin up` stops everything: exit 0, and no process of the stack is left.
"""

from __future__ import annotations

import os
import random
import signal

import pytest

from services.db.models import EngagementEvent, OutboxMessage
from services.db.session import make_engine, make_sessionmaker
from tests.e2e.up import Up, post_until_answered
from tests.integration.test_reliability_crash import _workload
from tests.stack import wait_for

pytestmark = pytest.mark.e2e


def test_restarts_a_dead_role_and_the_broker_and_stops_everything(tmp_path):
    up = Up(tmp_path).start()
    count = _counter(up)
    try:
        with up.client() as client:
            up.wait_ready(client)
            dispatcher = up.kill("dispatcher", signal.SIGKILL)
            up.wait_restarted("dispatcher", dispatcher)
            wait_for(lambda: "restarted the dispatcher role" in up.log(), 30, 0.2, up.log())
            assert "the dispatcher role stopped (killed by SIGKILL)" in up.log()

            os.kill(up.children()["worker"], signal.SIGSTOP)  # from now on only the broker has them
            events, _ = _workload(random.Random(5), 1000)
            assert post_until_answered(client, events)["accepted"] == 1000
            unpublished = OutboxMessage.published_at.is_(None)
            wait_for(lambda: count(OutboxMessage) and not count(OutboxMessage, unpublished), 60)
            assert count(EngagementEvent) == 0
            broker = up.kill("broker", signal.SIGTERM)
            up.wait_restarted("broker", broker)
            wait_for(lambda: count(EngagementEvent) == 1000, 120, 0.3, f"1000 events\n{up.logs()}")
            up.wait_ready(client)
            assert "restarted the embedded broker" in up.log()
            wait_for(lambda: count(OutboxMessage) == 0, 30, 0.3, what="stored rows pruned")
        assert up.stop() == 0, up.logs()
        assert up.stack_processes() == []
    finally:
        up.close()


def test_restarts_a_frozen_worker(tmp_path):
    """Issue 13: a worker frozen with SIGSTOP was never restarted (its process lives)."""
    up = Up(tmp_path, WINWIN_WORKER_STALL_SECONDS="6").start()
    count = _counter(up)
    try:
        with up.client() as client:
            up.wait_ready(client)
            frozen = up.kill("worker", signal.SIGSTOP)
            events, _ = _workload(random.Random(7), 200)
            assert post_until_answered(client, events)["accepted"] == 200
            up.wait_restarted("worker", frozen)
            wait_for(lambda: count(EngagementEvent) == 200, 90, 0.3, f"200 events\n{up.logs()}")
            assert "the worker role stalled" in up.log()
            assert "the worker role stopped (killed by SIGKILL)" in up.log()
        assert up.stop() == 0, up.logs()
    finally:
        up.close()


def _counter(up: Up):  # type: ignore[no-untyped-def]
    """Rows of a table in the stack's database, optionally filtered."""
    from sqlalchemy import func, select

    sessions = make_sessionmaker(make_engine(up.env["WINWIN_DATABASE_URL"]))

    def count(model, *where) -> int:  # type: ignore[no-untyped-def]
        with sessions() as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    return count
