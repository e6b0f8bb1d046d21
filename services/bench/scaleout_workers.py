"""Scale-out by group size (``winwin bench scaleout --workers 1,2,4``): the same backlog
consumed by 1, then 2, then 4 workers, each from the start.

Each run has a fresh database (a new one on ``WINWIN_DATABASE_URL``'s PostgreSQL server,
else SQLite) and fresh topics (its own prefix). The backlog (the pipeline bench's mix,
touches included) is produced first; then the workers start together. The rate is taken
from the moment every worker holds partitions (the group has settled: heartbeats say so)
until SQL holds every event: events/s of the group, of each worker and per partition
(:func:`services.bench.scaleout.phase_rates`), records/s of the group (events/s scaled by
the backlog's records per event), and the growth against 1 worker. SQL must then hold
exactly the ground truth, every run. The broker is chosen as in
:mod:`services.bench.scaleout` (``--real-kafka`` starts Apache Kafka).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from services.bench.env import BenchEnv, progress, wait_for
from services.bench.figures import Figure
from services.bench.scaleout import (
    PARTITIONS,
    Phase,
    broker_for,
    exact_counts,
    heartbeats,
    phase_rates,
    still_going,
)
from services.bench.scaleout import produce as produce_backlog
from services.bench.workload import Workload, make_workload
from services.db import models

GROUPS = (1, 2, 4)


def bench_scaleout_workers(
    n: int = 100_000,
    groups: tuple[int, ...] = GROUPS,
    partitions: int = PARTITIONS,
    real_kafka: bool = False,
) -> list[Figure]:
    """One run per group size over the same ``n`` records; exact counts after each."""
    work = make_workload(n, people=min(50_000, max(n // 4, 1)))
    runs: list[dict[str, Any]] = []
    with broker_for(real_kafka) as broker:
        for size in groups:
            with BenchEnv(f"scaleout{size}", partitions) as env:
                progress(f"scaleout: {size} worker(s), {work.total:,} records, {broker}")
                produce_backlog(env, work)
                rates = consume(env, work, size, partitions)
                checks = wait_for(partial(exact_counts, env, work), 120, 1.0, "exact counts")
                runs.append(rates | {"workers_started": size, "exact": checks, "broker": broker})
                progress(f"scaleout: {size} worker(s): {rates['events_per_s']:,.0f} events/s")
    return growth_figures(runs, work, partitions)


def consume(env: BenchEnv, work: Workload, size: int, partitions: int) -> dict[str, Any]:
    """Start ``size`` workers together; sample from a settled group until all is stored."""
    workers = {f"w{k + 1}": env.spawn(f"w{k + 1}", ["-m", "services.cli", "worker"]) for k in range(size)}  # fmt: skip
    names = {str(p.pid): name for name, p in workers.items()}
    phase = Phase(f"{size} worker(s) from the start", time.monotonic(), running=list(names))
    deadline = time.monotonic() + max(600, work.total / 200)
    settled_at: int | None = None  # the first sample with every worker holding partitions
    while True:
        beats, stored = heartbeats(env), env.count(models.EngagementEvent)
        phase.samples.append((time.monotonic(), beats, stored))
        if settled_at is None and all(beats.get(pid, (0, 0))[1] > 0 for pid in names):
            settled_at = len(phase.samples) - 1
        if stored >= len(work.events):
            break
        still_going(env, workers, deadline, f"{size} worker(s): stuck at {stored:,} events")
    return group_rates(phase, names, partitions, work, settled_at)


def group_rates(
    phase: Phase, names: dict[str, str], partitions: int, work: Workload, settled_at: int | None
) -> dict[str, Any]:
    """From the settled group to the end; from the workers' start when the backlog was
    stored before the group settled (a backlog too small: ``settled`` says so)."""
    settled = settled_at is not None and settled_at < len(phase.samples) - 1
    if settled:
        phase.samples = phase.samples[settled_at:]
    rates = phase_rates(phase, names, partitions)
    per_event = work.total / len(work.events)
    return rates | {"records_per_s": rates["events_per_s"] * per_event, "settled": settled}


def growth_figures(runs: list[dict[str, Any]], work: Workload, partitions: int) -> list[Figure]:
    one = runs[0]["records_per_s"] if runs and runs[0]["workers_started"] == 1 else None
    figures = []
    per_event = work.total / len(work.events)
    for run in runs:
        size = run["workers_started"]
        figures.append(
            Figure(
                "scaleout",
                f"records/s, {size} worker(s) from the start, {partitions} partitions",
                run["records_per_s"],
                "rec/s",
                "reported (ratio: growth against 1 worker)",
                None,
                baseline=one,
                baseline_name="1 worker" if one else None,
                details=run,
            )  # fmt: skip
        )
        each = [w["events_per_s"] * per_event for w in run["workers"].values()]
        figures.append(
            Figure(
                "scaleout",
                f"  records/s per worker (mean of {size}); per partition "
                f"{run['records_per_s'] / partitions:,.0f}",
                sum(each) / len(each),
                "rec/s",
                "reported",
                None,
                details={"per_worker": dict(zip(run["workers"], each, strict=True))},
            )  # fmt: skip
        )
    exact = all(run["exact"] for run in runs)
    figures.append(
        Figure(
            "scaleout",
            "events in SQL after each group size's run",
            len(work.events),
            "events",
            "exact (no loss, no duplicates), every run",
            exact,
            details={"records": work.total, "runs": len(runs), "exact": exact},
        )  # fmt: skip
    )
    return figures
