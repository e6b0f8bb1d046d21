"""A stream worker whose broker is gone still ends after SIGTERM: within its grace period
(services.roles.GRACE), whatever Faust waits for (one hung in ``wait_empty`` for 12
minutes). The offsets it could not commit mean re-delivery, which the sink ignores."""

from __future__ import annotations

import random
import signal

from services.bus.embedded import EmbeddedBroker
from services.db.models import EngagementEvent
from services.roles import GRACE
from tests.integration.test_reliability_crash import _workload
from tests.stack import Stack, wait_for


def test_a_worker_without_its_broker_ends_within_its_grace_period(tmp_path, monkeypatch):
    monkeypatch.setenv("BROKER_SESSION_TIMEOUT", "10")  # as `winwin up` sets it: joins in ~5 s
    broker = EmbeddedBroker().start()
    stack = Stack(broker.bootstrap, f"sqlite:///{tmp_path}/w.db", tmp_path, partitions=2)
    try:
        stack.start_relay()
        worker = stack.start_worker()
        stack.wait_worker_consuming()
        events, _ = _workload(random.Random(1), 3000)
        with stack.client() as client:
            for start in range(0, len(events), 500):
                assert (
                    client.post("/api/v1/events", json=events[start : start + 500]).status_code
                    == 202
                )
        wait_for(lambda: stack.count(EngagementEvent) > 0, 60, 0.05, what="the worker busy")
        stack.stop_relay()  # not blocked in a send to the dead broker, spinning, for 30 s
        broker.proc.kill()  # type: ignore[union-attr]
        broker.proc.wait()  # type: ignore[union-attr]
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(GRACE + 30)  # raises TimeoutExpired if it hangs on
        assert code is not None
    finally:
        stack.close()
        broker.stop()
