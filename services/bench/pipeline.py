"""Pipeline bench: Kafka envelopes → one stream worker → attributed and visible in SQL.

Records are produced first (as the relay would: envelopes, kafka-python, acks=all); a
bare aiokafka consumer then reads them all (the baseline: what the Kafka client itself
can consume here), then one ``winwin worker`` process consumes them. The worker's span
runs from its first batch (its heartbeat reports when that arrived) to the moment every
event and touch is visible in SQL; credits are written in the same transaction.
Then the same rows are bulk-loaded bare, and a hand-written per-event agent is timed
(:mod:`services.bench.pipeline_baselines`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import distinct, func, select

from services.bench.env import BenchEnv, progress, wait_for, wait_worker
from services.bench.figures import Figure
from services.bench.pipeline_baselines import bulk_load, peer_rate, start_peer
from services.bench.workload import Workload, make_workload
from services.bus import envelopes, topics
from services.bus.producer import ensure_topics, make_producer
from services.db import models

CHUNK = 5000  # records per pack() call, like a relay batch
TARGET_RATE = 20_000
TARGET_RATIO = 0.25
TARGET_LOAD_RATIO = 0.5  # of the bare bulk load of the same rows
TARGET_PEER_FACTOR = 20  # times the hand-written per-event agent


def bench_pipeline(n: int = 200_000, people: int = 50_000, peer: bool = True) -> list[Figure]:
    """The figures; ``peer=False`` leaves out the per-event agent (its Faust start-up
    alone takes ~40 s on a loaded machine: the smoke test checks it without Kafka)."""
    work = make_workload(n, people=min(people, max(n // 4, 1)))
    progress(f"pipeline: {len(work.events)} events + {len(work.touches)} touches, {people} people")
    with BenchEnv("pipeline") as env:
        produced, produce_s = produce(env, work)
        progress(f"pipeline: produced {produced} envelopes in {produce_s:.1f}s")
        base_span = asyncio.run(bare_consume(env, produced))
        decode_span = asyncio.run(bare_consume(env, produced, decode=True))
        progress(
            f"pipeline: bare aiokafka consumer read them in {base_span:.2f}s "
            f"({decode_span:.2f}s with JSON decoding)"
        )
        hand_written = start_peer(env) if peer else None
        span, rss = run_worker(env, work)
        progress(f"pipeline: worker done in {span:.2f}s")
        checks = verify(env, work)
        load_span = bulk_load(env)
        progress(f"pipeline: a bare bulk load wrote the same rows in {load_span:.2f}s")
        peer_speed = peer_rate(env, hand_written, work.total) if hand_written else None
    rate, base_rate, decode_rate = (work.total / x for x in (span, base_span, decode_span))
    load_rate = work.total / load_span
    details = {
        "records": work.total,
        "events": len(work.events),
        "touches": len(work.touches),
        "envelopes": produced,
        "worker_seconds": round(span, 3),
        "baseline_seconds": round(base_span, 3),
        "produce_seconds": round(produce_s, 3),
        "worker_rss_mib": rss,
    } | checks
    figures = [
        Figure(
            "pipeline",
            "records/s, 1 worker",
            rate,
            "rec/s",
            f">= {TARGET_RATE:,}",
            rate >= TARGET_RATE and rate / base_rate >= TARGET_RATIO,
            base_rate,
            "bare aiokafka",
            details,
        ),
        Figure(
            "pipeline",
            "records/s vs decoding consumer",
            rate,
            "rec/s",
            f">= {TARGET_RATIO} of baseline",
            rate / decode_rate >= TARGET_RATIO,
            decode_rate,
            "aiokafka + json.loads",
        ),
        Figure(
            "pipeline",
            "records/s vs bare bulk load of its rows",
            rate,
            "rec/s",
            f">= {TARGET_LOAD_RATIO} of baseline",
            rate / load_rate >= TARGET_LOAD_RATIO,
            load_rate,
            "COPY (PostgreSQL) / executemany (SQLite)",
        ),
    ]
    if peer_speed:
        figures.append(
            Figure(
                "pipeline",
                "records/s vs per-event Faust agent",
                rate,
                "rec/s",
                f">= {TARGET_PEER_FACTOR}x baseline",
                rate / peer_speed >= TARGET_PEER_FACTOR,
                peer_speed,
                "hand-written per-event agent",
            )
        )
    return figures


def produce(env: BenchEnv, work: Workload) -> tuple[int, float]:
    """Send the workload as envelopes (touches and events interleaved by chunk)."""
    partitions = ensure_topics(env.settings)
    producer = make_producer(env.settings)
    prefix, count, start = env.settings.topic_prefix, 0, time.monotonic()
    n_chunks = max(1, -(-len(work.events) // CHUNK))
    n_t = len(work.touches)
    for k in range(n_chunks):
        batches = [
            (topics.TOUCHES, work.touches[k * n_t // n_chunks : (k + 1) * n_t // n_chunks]),
            (topics.ENGAGEMENT, work.events[k * CHUNK : (k + 1) * CHUNK]),
        ]
        for name, records in batches:
            for env_ in envelopes.pack(records, partitions[name]):
                producer.send(
                    topics.physical(name, prefix),
                    value=env_.value,
                    key=env_.key,
                    partition=env_.partition,
                )
                count += 1
    producer.flush(60)
    producer.close()
    return count, time.monotonic() - start


async def bare_consume(env: BenchEnv, expected: int, decode: bool = False) -> float:
    """A bare aiokafka consumer over both topics: seconds from first to last message
    (with ``decode``, each envelope is also parsed: the least any consumer must do)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    prefix = env.settings.topic_prefix
    names = [topics.physical(t, prefix) for t in (topics.ENGAGEMENT, topics.TOUCHES)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=env.settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        parts = [
            TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.assign(parts)
        seen, first, last = 0, 0.0, 0.0
        deadline = time.monotonic() + 120
        while seen < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for msgs in batch.values():
                if msgs and not first:
                    first = time.monotonic()
                seen += len(msgs)
                if decode:
                    records = sum(len(envelopes.decode(m.value)) for m in msgs)
                    assert records > 0
            if batch:
                last = time.monotonic()
        if seen < expected:
            raise RuntimeError(f"bare consumer saw {seen} of {expected} messages")
        return max(last - first, 1e-6)
    finally:
        await consumer.stop()


def run_worker(env: BenchEnv, work: Workload) -> tuple[float, float | None]:
    """Start one worker; seconds from its first batch until everything is in SQL."""
    worker = env.role("worker")
    wait_worker(env)
    deadline = time.monotonic() + max(300, work.total / 1000)
    last_report, rss, events, touches = 0.0, None, 0, 0
    while True:
        # One table at a time: counting is work the worker's machine shares.
        if events < len(work.events):
            events = env.count(models.EngagementEvent)
        else:
            touches = env.count(models.Touch)
        if events >= len(work.events) and touches >= work.expected_touch_rows:
            done = time.time()
            break
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited; log:\n{env.log_tail('worker')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker stuck at {events} events, {touches} touches")
        rss = _rss_mib(worker.pid) or rss
        if time.monotonic() - last_report > 5:
            progress(f"pipeline: {events}/{len(work.events)} events, {touches} touches in SQL")
            last_report = time.monotonic()
        time.sleep(0.1)
    first = _first_batch_at(env)
    env.stop(worker)
    return done - first, rss


def _first_batch_at(env: BenchEnv) -> float:
    """When the worker received its first batch (from its heartbeat; waits for it)."""

    def read() -> float | None:
        with env.sessions() as s:
            infos = s.scalars(select(models.WorkerHeartbeat.info)).all()
        stamps = [i.get("first_batch_at") for i in infos if i and i.get("first_batch_at")]
        return min(stamps) if stamps else None

    return float(wait_for(read, 10, 0.2, "the worker's heartbeat"))


def _rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def verify(env: BenchEnv, work: Workload) -> dict[str, Any]:
    """Exactness: every event and touch once, every counted event credited."""
    C = models.Credit
    with env.sessions() as s:
        credited = s.scalar(select(func.count(distinct(C.event_id))).where(C.touch_id.is_not(None)))
        facts = s.scalar(select(func.count()).select_from(models.StageFact))
    events, touches = env.count(models.EngagementEvent), env.count(models.Touch)
    ok = events == len(work.events) and touches == work.expected_touch_rows
    ok = ok and credited == work.stage_events
    if not ok:
        raise AssertionError(
            f"SQL does not match: events {events}/{len(work.events)}, touches "
            f"{touches}/{work.expected_touch_rows}, credited {credited}/{work.stage_events}"
        )
    return {"credited_events": credited, "stage_facts": facts, "exact": ok}
