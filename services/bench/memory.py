"""Memory bench: the stream worker's resident memory while it attributes the engagement
of many distinct people active in one 30-day attribution window.

The worker keeps no per-person state in memory (touches, events and credits live in SQL;
the window is a SQL range, so "expired touches" are simply never read again). What it
holds is bounded by configuration, not by the number of people: Faust's stream buffer
(``stream_buffer_maxsize`` envelopes), aiokafka's fetch buffers, ``IN_FLIGHT``
``take_events`` batches (``BATCH_MESSAGES`` envelopes each), and in its sink process one
batch, the period-label cache (at most 20,000 dates) and one stage map. This bench
checks that claim: it samples ``VmRSS`` of the worker and its children from
``/proc/<pid>/status`` every 0.5 s against the worker's progress, reports the peak and
final RSS, RSS at 25/50/75/100 % of the events, and the peaks over the first and the
second half of the people (equal if nothing grows with them). Records are produced
faster than the worker consumes them: a backlog, the worst case for its buffers.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import distinct, func, select

from services.bench.env import BenchEnv, progress, wait_for, wait_worker
from services.bench.figures import Figure
from services.bench.workload import CAMPAIGNS, EPOCH, MIX, person
from services.bus import envelopes, topics
from services.bus.producer import ensure_topics, make_producer
from services.db import models

TARGET_MIB = 1024
CHUNK = 5000  # people per produced chunk
WINDOW_MINUTES = 30 * 24 * 60
TOUCHED = 10  # every 10th person got a campaign touch before their event


def people_records(
    people: int, seed: int = 11, per_person: int = 1
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Chunks of (events, touches): ``per_person`` events per person, all inside one 30-day
    window; every ``TOUCHED``-th event also has an email touch up to a day before it."""
    rng = random.Random(seed)
    types, weights = [m[0] for m in MIX], [m[1] for m in MIX]
    with_campaign = {m[0] for m in MIX if m[2]}
    for start in range(0, people, CHUNK):
        events: list[dict[str, Any]] = []
        touches: list[dict[str, Any]] = []
        for k in range(start * per_person, min(start + CHUNK, people) * per_person):
            i = k // per_person
            who, minute = person(i), 1440 + rng.randrange(WINDOW_MINUTES - 1440)
            kind = rng.choices(types, weights)[0]
            event: dict[str, Any] = {
                "event_id": f"me{k}",
                "type": kind,
                "occurred_at": _at(minute),
                "person": who,
                "source": "api",
                "properties": {},
            }
            if kind in with_campaign:
                event |= {"campaign_id": rng.choice(CAMPAIGNS), "channel": "email"}
            events.append(event)
            if k % TOUCHED == 0:
                touches.append(
                    {
                        "touch_id": f"mt{k}",
                        "person": who,
                        "campaign_id": rng.choice(CAMPAIGNS),
                        "channel": "email",
                        "messenger_id": None,
                        "kind": "email.sent",
                        "occurred_at": _at(minute - rng.randrange(1, 1440)),
                    }
                )
        yield events, touches


def _at(minute: int) -> str:
    return (EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected(people: int, per_person: int = 1) -> dict[str, int]:
    """What SQL must hold afterwards (events, touch rows incl. derived exposures)."""
    events = touches = 0
    for evs, ts in people_records(people, per_person=per_person):
        events += len(evs)
        touches += len(ts) + sum(1 for e in evs if e.get("campaign_id"))
    return {"events": events, "touch_rows": touches, "people": people}


def produce(env: BenchEnv, people: int, per_person: int = 1) -> tuple[int, int]:
    """Send every person's records as envelopes; returns (envelopes, records)."""
    partitions = ensure_topics(env.settings)
    producer = make_producer(env.settings)
    prefix, sent, records = env.settings.topic_prefix, 0, 0
    for events, touches in people_records(people, per_person=per_person):
        for name, batch in ((topics.TOUCHES, touches), (topics.ENGAGEMENT, events)):
            records += len(batch)
            for e in envelopes.pack(batch, partitions[name]):
                topic = topics.physical(name, prefix)
                producer.send(topic, value=e.value, key=e.key, partition=e.partition)
                sent += 1
    producer.flush(120)
    producer.close()
    return sent, records


class RssSampler(threading.Thread):
    """Samples a process's VmRSS (MiB) every ``interval`` s, with the progress then."""

    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float, int]] = []  # (t, rss MiB, events done)
        self.done = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            rss = vm_rss_mib(self.pid)
            if rss is not None:
                self.samples.append((time.monotonic(), rss, self.done))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def vm_rss_mib(pid: int) -> float | None:
    """VmRSS in MiB of ``pid`` plus its children (the worker's sink process and the
    multiprocessing resource tracker); None once ``pid`` is gone."""
    own = _rss_kib(pid)
    if own is None:
        return None
    return (own + sum(_rss_kib(child) or 0 for child in child_pids(pid))) / 1024


def _rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc; zombies included)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = stat.read_text().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(ppid) == pid:
            found.append(int(stat.parent.name))
    return found


def heartbeat_events(env: BenchEnv) -> int:
    with env.sessions() as s:
        infos = s.scalars(select(models.WorkerHeartbeat.info)).all()
    return sum(int((i or {}).get("events", 0)) for i in infos)


def bench_memory(people: int = 1_000_000, per_person: int = 1) -> list[Figure]:
    """Peak and final worker RSS over ``people`` distinct people in one 30-day window
    (``per_person`` > 1: as many records over fewer people, to tell the two apart)."""
    truth = expected(people, per_person)
    progress(f"memory: {people:,} people, {truth['events']:,} events, touches included")
    with BenchEnv("memory") as env:
        worker = env.role("worker")  # on empty topics: its idle RSS is the baseline
        sampler = RssSampler(worker.pid)
        sampler.start()
        wait_worker(env)
        time.sleep(3)
        idle = vm_rss_mib(worker.pid)
        start = time.monotonic()
        try:
            sent, records = produce(
                env, people, per_person
            )  # faster than the worker: a backlog forms
            progress(f"memory: produced {records:,} records in {sent:,} envelopes")
            follow(env, worker, sampler, truth["events"])
            span = time.monotonic() - start
            sql = wait_for(lambda: _complete(env, truth), 120, 1.0, "all touches in SQL")
        finally:
            sampler.stop()
        final = vm_rss_mib(worker.pid) or sampler.samples[-1][1]
        env.stop(worker)
    figure = _figure(people, sampler.samples, idle, final, span, records, sql)
    figure.details["events_per_person"] = per_person
    return [figure]


def follow(env: BenchEnv, worker: Any, sampler: RssSampler, events: int) -> None:
    """Until the worker's heartbeat says it stored ``events`` events."""
    deadline, last = time.monotonic() + max(600, events / 500), 0.0
    while sampler.done < events:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited; log:\n{env.log_tail('worker')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker stuck at {sampler.done} of {events} events")
        sampler.done = heartbeat_events(env)
        if time.monotonic() - last > 10:
            rss = sampler.samples[-1][1] if sampler.samples else 0
            progress(f"memory: {sampler.done:,}/{events:,} events, RSS {rss:.0f} MiB")
            last = time.monotonic()
        time.sleep(0.5)


def _complete(env: BenchEnv, truth: dict[str, int]) -> dict[str, int] | None:
    E = models.EngagementEvent
    with env.sessions() as s:
        people = int(s.scalar(select(func.count(distinct(E.person)))) or 0)
    got = {
        "events": env.count(E),
        "touch_rows": env.count(models.Touch),
        "people": people,
    }
    if got["events"] > truth["events"] or got["touch_rows"] > truth["touch_rows"]:
        raise AssertionError(f"SQL holds more than was sent: {got} vs {truth}")
    return got if got == truth else None


def _figure(
    people: int,
    samples: list[tuple[float, float, int]],
    idle: float | None,
    final: float,
    span: float,
    records: int,
    sql: dict[str, int],
) -> Figure:
    peak = max(rss for _, rss, _ in samples)
    by_progress = _at_progress(samples, sql["events"])
    mid = sql["events"] // 2
    first = max((r for _, r, done in samples if 0 < done < mid), default=None)
    second = max((r for _, r, done in samples if done >= mid), default=None)
    details = {
        "people": people,
        "records": records,
        "sql": sql,
        "exact": True,
        "rss_mib_idle": _r(idle),
        "rss_mib_peak": _r(peak),
        "rss_mib_final": _r(final),
        "rss_mib_by_progress": by_progress,
        "rss_mib_peak_first_half": _r(first),  # people grew from 0 to half...
        "rss_mib_peak_second_half": _r(second),  # ...and to all: equal if nothing grows
        "samples": len(samples),
        "worker_seconds": round(span, 1),
        "records_per_second": round(records / span),
    }
    return Figure(
        "memory",
        f"worker peak RSS, {people:,} people in 30 days",
        peak,
        "MiB",
        f"<= {TARGET_MIB} MiB",
        peak <= TARGET_MIB,
        idle,
        "idle worker, same run",
        details,
    )


def _at_progress(samples: list[tuple[float, float, int]], total: int) -> dict[str, float]:
    """RSS at 0 %, 25 %, 50 %, 75 %, 100 % of the events (first sample at or past it)."""
    out: dict[str, float] = {}
    for pct in (0, 25, 50, 75, 100):
        mark = total * pct // 100
        rss = next((r for _, r, done in samples if done >= mark), None)
        if rss is not None:
            out[f"{pct}%"] = round(rss, 1)
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)
