"""Scale-out bench: workers join and leave a multi-partition topic mid-run; counts stay exact.

A backlog of N records (the pipeline bench's mix, touches included) is produced to
8-partition engagement and touches topics. One ``winwin worker`` starts; at 25 % of the
events stored a second joins, at 50 % a third, at 75 % the first leaves (SIGTERM: Faust
drains, commits and leaves the group). Each join or leave is a consumer-group rebalance;
batches in flight may be redelivered to the new owner, which the sink's idempotent keys
absorb. At the end SQL must hold exactly the ground truth: every event, touch and credit
once. Per phase the bench reports the throughput of the whole group, of each worker and
per partition, from the workers' heartbeats (``worker_heartbeats.info``: cumulative
``events`` stored, ``assigned_partitions``; sampled every second, written every 2 s).

Real Kafka gives the honest figure: set ``WINWIN_KAFKA_BOOTSTRAP``, or pass
``--real-kafka`` to start one (``services/devtools/kafka_launcher.py``: the jars of a
checkout's ``deploy/kafka/lib``, or of ``$WINWIN_KAFKA_HOME``); otherwise the embedded
broker is used.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import distinct, func, select

from services.bench.env import BenchEnv, progress, wait_for, wait_worker
from services.bench.figures import Figure
from services.bench.workload import Workload, make_workload
from services.bus import envelopes, topics
from services.bus.producer import ensure_topics, make_producer
from services.db import models
from services.devtools.kafka_launcher import KafkaBroker

PARTITIONS = 8
RELAY_ROWS = 500  # records per pack() call, as the relay publishes outbox batches
#: (fraction of the events stored when the phase ends, action that starts it)
PLAN = [(0.25, "start w1"), (0.50, "start w2"), (0.75, "start w3"), (1.0, "stop w1")]


@dataclass
class Phase:
    """One phase of the run: which workers ran, and the heartbeat samples taken."""

    name: str
    started: float
    running: list[str] = field(default_factory=list)  # pids of the workers in this phase
    ended: float = 0.0
    #: (time, {pid: (events, partitions)} from heartbeats, events in SQL)
    samples: list[tuple[float, dict[str, tuple[int, int]], int]] = field(default_factory=list)


def bench_scaleout(
    n: int = 200_000, partitions: int = PARTITIONS, real_kafka: bool = False
) -> list[Figure]:
    """Join/leave run over ``n`` records on ``partitions`` partitions; exact counts."""
    work = make_workload(n, people=min(50_000, max(n // 4, 1)))
    with broker_for(real_kafka) as broker_kind, BenchEnv("scaleout", partitions) as env:
        progress(f"scaleout: {work.total:,} records, {partitions} partitions, {broker_kind}")
        produced, seconds = produce(env, work)
        progress(f"scaleout: produced {produced:,} envelopes in {seconds:.1f}s")
        phases, names = run_phases(env, work)
        checks = wait_for(lambda: exact_counts(env, work), 120, 1.0, "exact counts in SQL")
        redelivered = _duplicates(env)
    return _figures(phases, names, work, checks, redelivered, partitions, broker_kind)


@contextlib.contextmanager
def broker_for(real: bool) -> Iterator[str]:
    """The broker this run uses: configured Kafka, one started here, or embedded."""
    if os.environ.get("WINWIN_KAFKA_BOOTSTRAP"):
        yield "Kafka (WINWIN_KAFKA_BOOTSTRAP)"
        return
    if not real:
        yield "embedded broker"
        return
    broker = KafkaBroker().start()
    os.environ["WINWIN_KAFKA_BOOTSTRAP"] = broker.bootstrap
    try:
        yield "Apache Kafka (started by the bench)"
    finally:
        del os.environ["WINWIN_KAFKA_BOOTSTRAP"]
        broker.stop()


def run_phases(env: BenchEnv, work: Workload) -> tuple[list[Phase], dict[str, str]]:
    """Start/stop workers at the planned fractions; sample heartbeats every second."""
    total, workers, names = len(work.events), {}, {}
    phases: list[Phase] = []
    deadline = time.monotonic() + max(600, work.total / 200)
    for fraction, action in PLAN:
        verb, who = action.split()
        if verb == "start":
            workers[who] = env.spawn(who, ["-m", "services.cli", "worker"])
            names[str(workers[who].pid)] = who
            if who == "w1":
                wait_worker(env)
        else:
            env.stop(workers.pop(who))
        phase = Phase(f"{len(workers)} worker(s) after {action}", time.monotonic())
        phase.running = [str(p.pid) for p in workers.values()]
        phases.append(phase)
        progress(f"scaleout: {phase.name}")
        while True:
            stored = env.count(models.EngagementEvent)  # a leaver's last beat may lag
            phase.samples.append((time.monotonic(), heartbeats(env), stored))
            if stored >= total * fraction:
                break
            still_going(env, workers, deadline, f"stuck in phase {phase.name!r}")
        phase.ended = time.monotonic()
    return phases, names


def still_going(env: BenchEnv, workers: dict[str, Any], deadline: float, stuck: str) -> None:
    """One second of a wait on the workers: RuntimeError (with its log) when one has
    exited, TimeoutError (``stuck``) past ``deadline``."""
    for name, proc in workers.items():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited; log:\n{env.log_tail(name)}")
    if time.monotonic() > deadline:
        raise TimeoutError(stuck)
    time.sleep(1.0)


def produce(env: BenchEnv, work: Workload) -> tuple[int, float]:
    """The workload as the relay would send it: 500-record batches, envelopes per partition
    (so ~60 records per envelope on 8 partitions, and a worker batch is ~12,000 records)."""
    partitions = ensure_topics(env.settings)
    producer = make_producer(env.settings)
    prefix, count, start = env.settings.topic_prefix, 0, time.monotonic()
    records = [(topics.TOUCHES, t) for t in work.touches] + [
        (topics.ENGAGEMENT, e) for e in work.events
    ]
    records.sort(key=lambda r: r[1]["occurred_at"])  # touches and events interleaved
    for k in range(0, len(records), RELAY_ROWS):
        for name in (topics.TOUCHES, topics.ENGAGEMENT):
            chunk = [r for t, r in records[k : k + RELAY_ROWS] if t == name]
            for e in envelopes.pack(chunk, partitions[name]):
                topic = topics.physical(name, prefix)
                producer.send(topic, value=e.value, key=e.key, partition=e.partition)
                count += 1
    producer.flush(120)
    producer.close()
    return count, time.monotonic() - start


def heartbeats(env: BenchEnv) -> dict[str, tuple[int, int]]:
    """``{pid: (events stored, partitions assigned)}`` of every worker that beat."""
    with env.sessions() as s:
        rows = s.execute(select(models.WorkerHeartbeat.worker_id, models.WorkerHeartbeat.info))
        return {
            wid.rsplit(":", 1)[-1]: (
                int((i or {}).get("events", 0)),
                int((i or {}).get("assigned_partitions", 0)),
            )
            for wid, i in rows
        }


def _duplicates(env: BenchEnv) -> int:
    with env.sessions() as s:
        infos = s.scalars(select(models.WorkerHeartbeat.info)).all()
    return sum(int((i or {}).get("duplicates", 0)) for i in infos)


def exact_counts(env: BenchEnv, work: Workload) -> dict[str, int] | None:
    """SQL against the ground truth; None while still short, an error if over."""
    C = models.Credit
    with env.sessions() as s:
        credited = s.scalar(select(func.count(distinct(C.event_id))).where(C.touch_id.is_not(None)))
    got = {
        "events": env.count(models.EngagementEvent),
        "touch_rows": env.count(models.Touch),
        "credited_events": int(credited or 0),
    }
    truth = {
        "events": len(work.events),
        "touch_rows": work.expected_touch_rows,
        "credited_events": work.stage_events,
    }
    if any(got[k] > truth[k] for k in truth):
        raise AssertionError(f"SQL holds more than the ground truth: {got} vs {truth}")
    return got if got == truth else None


def phase_rates(phase: Phase, names: dict[str, str], partitions: int) -> dict[str, Any]:
    """Events/s of the group, of each worker and per partition over one phase. A worker's
    engagement partitions are its share of all assigned partitions (the heartbeat counts
    every topic partition the worker holds)."""
    (t0, first, sql0), (t1, last, sql1) = phase.samples[0], phase.samples[-1]
    span = max(t1 - t0, 1e-6)
    done = {pid: ev - first.get(pid, (0, 0))[0] for pid, (ev, _) in last.items()}
    active = {pid: last.get(pid, (0, 0))[1] for pid in phase.running}
    held = sum(active.values()) or 1
    workers: dict[str, Any] = {}
    for pid, assigned in active.items():
        rate, share = done.get(pid, 0) / span, partitions * assigned / held
        workers[names.get(pid, pid)] = {
            "events_per_s": round(rate),
            "engagement_partitions": round(share, 1),
            "events_per_s_per_partition": round(rate / share) if share else None,
        }
    total = sql1 - sql0
    return {
        "seconds": round(span, 1),
        "events": total,
        "events_per_s": total / span,
        "events_per_s_per_partition": round(total / span / partitions),
        "workers": workers,
    }


def _figures(
    phases: list[Phase],
    names: dict[str, str],
    work: Workload,
    checks: dict[str, int],
    redelivered: int,
    partitions: int,
    broker: str,
) -> list[Figure]:
    figures = []
    for phase in phases:
        rates = phase_rates(phase, names, partitions)
        progress(f"scaleout: {phase.name}: {rates['events_per_s']:,.0f} events/s, {rates}")
        figures.append(
            Figure(
                "scaleout",
                f"events/s, {phase.name}",
                rates["events_per_s"],
                "ev/s",
                "reported",
                None,
                details=rates | {"broker": broker},
            )
        )
    figures.append(
        Figure(
            "scaleout",
            "events in SQL after joins and a leave",
            checks["events"],
            "events",
            "exact (no loss, no duplicates)",
            True,
            details=checks
            | {
                "records": work.total,
                "touches": len(work.touches),
                "redelivered_and_ignored": redelivered,
                "partitions": partitions,
                "broker": broker,
                "exact": True,
            },
        )
    )
    return figures
