"""Crash safety: at-least-once transport, idempotent sinks, exact counts.

* 50,000 events with 5% re-sent duplicates while the stream worker is SIGKILLed at 5
  random moments (and restarted), and a second worker joins and leaves (two rebalances):
  the final SQL counts equal the ground truth exactly (PostgreSQL).
* The worker's sink process SIGKILLed three times mid-stream: the worker starts another
  and the counts stay exact; a SIGKILLed worker leaves no sink process behind.
* The outbox relay crashing between the SQL commit and the publish, and between the
  publish and the delete of the rows: every committed record is published at least once,
  its effects are applied once.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.bench.memory import child_pids
from services.bus import topics
from services.bus.envelopes import decode
from services.bus.relay import Relay, drain
from services.db.models import EngagementEvent, OutboxMessage
from services.tracking.replay import read_topic
from tests.stack import Stack, wait_for

pytestmark = pytest.mark.kafka
#: 20,000 in `make test`; WINWIN_CRASH_EVENTS=50000 is the README's measured run.
EVENTS = int(os.environ.get("WINWIN_CRASH_EVENTS", "20000"))
TYPES = {
    "page.view": 0,
    "link.click": 0,
    "resource.view": 1,
    "resource.download": 1,
    "contribution.submitted": 2,
}
MONTHS = ("2017-08", "2017-09", "2017-10")


def _workload(rng: random.Random, n: int) -> tuple[list[dict], dict]:
    events, oracle = [], defaultdict(set)
    for i in range(n):
        who, kind = f"fam-{rng.randrange(6000)}", rng.choice(list(TYPES))
        at = datetime(2017, 8, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(60 * 24 * 90))
        events.append(
            {
                "event_id": f"c{i}",
                "type": kind,
                "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "person_ref": who,
            }
        )
        for stage in range(TYPES[kind] + 1):
            oracle[(at.strftime("%Y-%m"), stage)].add(who)
    return events, oracle


def _stage_rows_when(client, expected: list[dict]) -> list[dict]:
    """The API's monthly stage rows, once they equal ``expected`` (or time out)."""

    def rows() -> list[dict]:
        params = {"from": MONTHS[0], "to": MONTHS[-1]}
        found = client.get("/api/v1/metrics/stages", params=params).json()["rows"]
        return found if found == expected else []

    return wait_for(rows, 60, 0.5, what="exact stage counts")


def _expected(oracle: dict) -> list[dict]:
    return [
        {
            "period": m,
            "aware": len(oracle[(m, 0)]),
            "use": len(oracle[(m, 1)]),
            "produce": len(oracle[(m, 2)]),
        }
        for m in MONTHS
    ]


@pytest.fixture
def pg_stack(kafka_bootstrap, postgres_server, tmp_path):
    url = postgres_server.create_database()
    s = Stack(kafka_bootstrap, url, tmp_path, partitions=4)
    yield s
    s.close()
    postgres_server.drop_database(url)


def test_sigkills_and_a_rebalance_lose_nothing_and_double_nothing(pg_stack: Stack):
    stack, rng = pg_stack, random.Random(2024)
    events, oracle = _workload(rng, EVENTS)
    duplicates = rng.sample(events, EVENTS * 5 // 100)
    sent = events + duplicates
    rng.shuffle(sent)
    stack.start_relay()
    with stack.client() as client:
        for start in range(0, len(sent), 1000):
            assert client.post("/api/v1/events", json=sent[start : start + 1000]).status_code == 202
        worker = stack.start_worker()
        kills = sorted(rng.sample(range(EVENTS // 25, EVENTS * 4 // 5), 5))
        joined = None
        for n, threshold in enumerate(kills):
            wait_for(
                lambda t=threshold: stack.count(EngagementEvent) >= t,
                180,
                0.2,
                what=f"{threshold} events",
            )
            stack.kill_worker(worker, signal.SIGKILL)
            worker = stack.start_worker()
            if n == 1:  # a second worker joins: the group rebalances
                joined, since = stack.start_worker(), time.time()
                wait_for(
                    lambda s=since: _workers_assigned(stack, s) >= 2,
                    120,
                    0.3,
                    what="two workers sharing",
                )
            if n == 3 and joined is not None:  # ...and leaves: it rebalances again
                stack.kill_worker(joined, signal.SIGTERM)
        wait_for(
            lambda: stack.count(EngagementEvent) == EVENTS,
            240,
            0.5,
            what="all events after the kills",
        )
        expected = _expected(oracle)
        rows = _stage_rows_when(client, expected)
    assert rows == expected
    assert stack.count(EngagementEvent) == EVENTS
    print(
        f"\n[crash] {len(sent)} events ({len(duplicates)} duplicates), 5 SIGKILLs at {kills} processed events, "
        f"a second worker joined and left; SQL {EVENTS} events = ground truth; stage counts exact; lost 0, doubled 0"
    )


def _workers_assigned(stack: Stack, since: float) -> int:
    from sqlalchemy import select

    from services.db.models import WorkerHeartbeat

    with stack.sessions() as s:
        rows = s.execute(select(WorkerHeartbeat.seen_at, WorkerHeartbeat.info)).all()
    start = datetime.fromtimestamp(since, UTC)
    return sum(
        1
        for seen, info in rows
        if (seen if seen.tzinfo else seen.replace(tzinfo=UTC)) >= start
        and (info or {}).get("assigned_partitions", 0) > 0
    )


class CrashingRelay(Relay):
    """A relay that dies at a chosen point of publish_once (the process would be gone)."""

    def __init__(self, *args, crash: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.crash = crash

    def _send(self, by_topic):
        if self.crash == "before-publish":  # rows committed by ingest, nothing sent yet
            raise SystemExit("crash between commit and publish")
        count = super()._send(by_topic)  # acknowledged by Kafka...
        raise SystemExit("crash between publish and delete")  # ...rows not deleted
        return count


@pytest.fixture
def stack(kafka_bootstrap, database_url, tmp_path):
    s = Stack(kafka_bootstrap, database_url, tmp_path, partitions=2)
    yield s
    s.close()


def test_outbox_crashes_publish_every_committed_row_and_apply_it_once(stack: Stack):
    events, _ = _workload(random.Random(7), 3000)
    with stack.client() as client:
        for start in range(0, len(events), 1000):
            assert (
                client.post("/api/v1/events", json=events[start : start + 1000]).status_code == 202
            )
    rows = stack.count(OutboxMessage)
    crashes = 0
    for crash in ("before-publish", "after-publish", "after-publish"):
        relay = CrashingRelay(stack.settings, stack.sessions, batch_rows=1, crash=crash)
        with pytest.raises(SystemExit):
            relay.publish_once()
        relay._reset()
        crashes += 1
        assert stack.count(OutboxMessage) == rows  # the transaction rolled back: rows kept
    published = drain(Relay(stack.settings, stack.sessions))
    assert stack.count(OutboxMessage) == 0
    in_kafka = [
        r["event_id"]
        for m in read_topic(stack.settings, topics.ENGAGEMENT)
        for r in decode(m.value)
    ]
    assert set(in_kafka) == {e["event_id"] for e in events}  # every committed row, at least once
    doubled_in_kafka = len(in_kafka) - len(set(in_kafka))
    assert doubled_in_kafka == 2000  # the two outbox rows published before the "crash"
    stack.start_worker()
    wait_for(lambda: stack.count(EngagementEvent) == len(events), 120, 0.3, what="all events")
    assert stack.count(EngagementEvent) == len(events)
    print(
        f"\n[outbox] {len(events)} events in {rows} outbox rows; {crashes} relay crashes (1 before publish, "
        f"2 after publish); {published} records published after restart, {doubled_in_kafka} twice in Kafka; "
        f"SQL {len(events)} events: lost 0, doubled 0"
    )


def _writers(worker: int) -> list[int]:
    """The worker's live sink processes (not its multiprocessing resource tracker, the
    other child)."""
    return [p for p in child_pids(worker) if _alive(p) and b"spawn_main" in _command(p)]


def _command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_sink_process_killed_is_replaced_and_a_killed_worker_leaves_no_writer(stack: Stack):
    """The worker writes through a child process (streams/writer.py). SIGKILL that child
    in each of three waves of events, mid-write or between writes: the same worker starts
    another and writes the batches again, and the counts stay exact. SIGKILL the worker:
    its writer dies with it."""
    rng = random.Random(11)
    events, oracle = _workload(rng, 12_000)
    waves = [events[i : i + 3_000] for i in range(0, len(events), 3_000)]
    stack.start_relay()
    worker = stack.start_worker()
    stack.wait_worker_consuming()
    killed: list[int] = []
    with stack.client() as client:
        for n, wave in enumerate(waves):
            for start in range(0, len(wave), 1000):
                batch = wave[start : start + 1000]
                assert client.post("/api/v1/events", json=batch).status_code == 202
            writer = wait_for(  # after a kill, the wave's first write starts a new one
                lambda: [p for p in _writers(worker.pid) if p not in killed],
                60,
                0.02,
                what="a sink process",
            )
            if n < len(waves) - 1:  # the last wave is written by the third replacement
                time.sleep(rng.uniform(0.0, 0.3))  # into the wave: mid-write, or just after
                os.kill(writer[0], signal.SIGKILL)
                killed.append(writer[0])
            total = 3_000 * (n + 1)
            wait_for(lambda t=total: stack.count(EngagementEvent) == t, 120, 0.1, what=f"{total}")
        assert worker.poll() is None, "the worker itself kept running"
        assert stack.worker_log().count("the sink process died") == len(killed)
        expected = _expected(oracle)
        rows = _stage_rows_when(client, expected)
        assert rows == expected
    writer = wait_for(lambda: _writers(worker.pid), 30, 0.05, what="the current writer")[0]
    stack.kill_worker(worker, signal.SIGKILL)
    wait_for(lambda: not _alive(writer), 10, 0.05, what="the writer to die with its worker")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
