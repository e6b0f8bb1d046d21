"""Reads bench (``winwin bench reads``): ingest a synthetic network, time the read API,
check every answer against the brute-force oracle.

Records go through ``services.analytics.sink.AttributionSink.write`` — the SQL writer the
Faust agent runs — one envelope's worth (``envelopes.MAX_RECORDS``) per call, in arrival
order. Kafka transport is not in this figure: ``winwin bench pipeline`` measures it. The
read side is timed through the real FastAPI app (TestClient): per endpoint its first call
(checked against the oracle; for another attribution window, the one that computes it)
and then p50/p99 over ``calls`` calls: those read the answer kept for the data's
generation (:mod:`services.analytics.answers`), so each figure's baseline is its first call,
which computes it — what a read costs right after the stream wrote a batch. SQLite always; PostgreSQL too when
``WINWIN_DATABASE_URL`` names one (a fresh database on that server, dropped after).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.analytics.sink import AttributionSink
from services.api import create_app
from services.bench.env import BenchEnv, progress
from services.bench.figures import Figure
from services.bench.network import Network, build_network
from services.bench.oracle import Oracle, oracle
from services.bench.reads_cases import Case, cases
from services.bootstrap import bootstrap
from services.bus.envelopes import MAX_RECORDS
from services.config import Settings
from services.db import models
from services.db.migrate import upgrade
from services.db.session import make_engine, make_sessionmaker

TOKEN = "bench-measurement-token-0123456789"
TABLES = {"engagement_events": models.EngagementEvent, "touches": models.Touch,
          "credits": models.Credit, "stage_facts": models.StageFact}  # fmt: skip


@dataclass
class ReadsRun:
    """The network's size and how the reads are timed."""

    events: int = 1_000_000
    people: int = 100_000
    months: int = 24
    calls: int = 30
    batch: int = MAX_RECORDS
    seed: int = 2017
    reuse: bool = False  # the database already holds this network: time the reads only
    other_window: int = 7  # the non-default attribution window read


def ingest(url: str, net: Network, batch: int) -> dict[str, Any]:
    """Write the arrivals through the stream's sink; events/s over the whole run."""
    engine = make_engine(url)
    sink = AttributionSink(make_sessionmaker(engine))
    records, step = net.arrivals, max(1, len(net.arrivals) // 20)
    started = time.perf_counter()
    for lo in range(0, len(records), batch):
        part = records[lo : lo + batch]
        sink.write([r for k, r in part if k == "e"], [r for k, r in part if k == "t"])
        if (lo // batch) % max(1, step // batch) == 0:
            rate = (lo + len(part)) / (time.perf_counter() - started)
            progress(f"reads: ingest {lo + len(part):,}/{len(records):,} records ({rate:,.0f}/s)")
    seconds = time.perf_counter() - started
    engine.dispose()
    events = len(net.events)
    return {"seconds": round(seconds, 2), "events": events, "touches": len(net.touches),
            "events_per_s": round(events / seconds), "records_per_s": round(len(records) / seconds),
            "batch_records": batch, "vacuum_s": vacuum(url), **table_rows(url)}  # fmt: skip


def vacuum(url: str) -> float | None:
    """PostgreSQL: VACUUM ANALYZE the fact tables, as autovacuum soon would after a bulk
    load (statistics and the visibility map decide whether index-only scans are used).
    Seconds taken, or None on SQLite (nothing run: SQLite plans need no statistics)."""
    if not url.startswith("postgresql"):
        return None
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    with engine.connect() as conn:
        for table in TABLES:
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    engine.dispose()
    return round(time.perf_counter() - started, 1)


def table_rows(url: str) -> dict[str, dict[str, int]]:
    """Rows in each fact table (the read models' size)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = {
            name: int(conn.scalar(select(func.count()).select_from(m)) or 0)
            for name, m in TABLES.items()
        }
    engine.dispose()
    return {"rows": rows}


def require_empty(url: str) -> None:
    engine = make_engine(url)
    with engine.connect() as conn:
        found = conn.scalar(select(func.count()).select_from(models.EngagementEvent))
    engine.dispose()
    if found:
        raise SystemExit(f"the database already holds {found:,} events: give an empty one")


def timed(call: Callable[[], Any], times: int) -> dict[str, float]:
    """p50 and p99 (nearest rank) in milliseconds over ``times`` calls."""
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        spent.append((time.perf_counter() - started) * 1000)
    spent.sort()
    p99 = spent[max(0, math.ceil(0.99 * len(spent)) - 1)]
    return {"p50_ms": round(statistics.median(spent), 1), "p99_ms": round(p99, 1)}


def query(settings: Settings, todo: list[Case], calls: int) -> list[dict[str, Any]]:
    """Each endpoint: its first call timed alone and checked against the oracle, then
    ``calls`` timed calls."""
    container = bootstrap(settings)
    client = TestClient(create_app(container), headers={"Authorization": f"Bearer {TOKEN}"})
    results = []
    try:
        for case in todo:
            started = time.perf_counter()
            response = client.get(case.path, params=case.params)
            first_ms = round((time.perf_counter() - started) * 1000, 1)
            response.raise_for_status()
            verdict = "OK" if case.check(response.json()) else "MISMATCH"

            def call(case: Case = case) -> None:
                client.get(case.path, params=case.params).raise_for_status()

            figures = {"first_ms": first_ms, **timed(call, calls)}
            results.append({"endpoint": case.name, "path": case.path, "params": case.params,
                            "target_ms": case.target_ms, **figures, "oracle": verdict})  # fmt: skip
            progress(f"reads: {case.name}: first {first_ms} ms, p50 {figures['p50_ms']} ms, "
                     f"p99 {figures['p99_ms']} ms, {verdict}")  # fmt: skip
    finally:
        container.close()
    return results


@dataclass
class Expected:
    """The network and the oracle's answers: built once for every database of a run."""

    net: Network
    campaign: str  # the filter of the campaign reads: the middle month's newsletter
    truth: Oracle


def expect(run: ReadsRun, window_days: int) -> Expected:
    progress(f"reads: generating {run.events:,} events, {run.people:,} people, {run.months} months")
    net = build_network(run.events, run.people, run.months, run.seed)
    campaign = f"news-{net.months[len(net.months) // 2]}"
    progress("reads: computing the oracle")
    return Expected(net, campaign, oracle(net, campaign, window_days, run.other_window))


def settings_for(url: str, state_dir: Path) -> Settings:
    """The API's settings for the database ``url``: no Kafka (stream health says so)."""
    return Settings.model_validate({"database_url": url, "api_token": TOKEN, "secret_key": "b" * 32,
                                    "state_dir": state_dir, "kafka_bootstrap": ""})  # fmt: skip


def measure(
    url: str, run: ReadsRun, state_dir: Path, expected: Expected | None = None
) -> dict[str, Any]:
    """Ingest (unless ``run.reuse``) and time every read on the database ``url``."""
    load = os.getloadavg()
    settings = settings_for(url, state_dir)
    window = settings.attribution_window_days
    expected = expected or expect(run, window)
    net = expected.net
    upgrade(url)
    if run.reuse:
        figures: dict[str, Any] = {"skipped": True, **table_rows(url)}
    else:
        require_empty(url)
        progress(f"reads: ingesting {len(net.arrivals):,} records through AttributionSink.write")
        figures = ingest(url, net, run.batch)
    todo = cases(net, expected.truth, expected.campaign, run.other_window)
    endpoints = query(settings, todo, run.calls)
    return {
        "database": url.split(":", 1)[0].split("+", 1)[0],
        "events": len(net.events), "touches": len(net.touches),
        "people": run.people, "months": run.months, "unique_events": len({r["event_id"] for r in net.events}),
        "campaign_filter": expected.campaign, "window_days": window,
        "other_window": run.other_window, "ingest": figures, "endpoints": endpoints,
        "oracle_ok": all(e["oracle"] == "OK" for e in endpoints),
        "load_average": {"start": [round(x, 2) for x in load], "end": [round(x, 2) for x in os.getloadavg()]},
    }  # fmt: skip


def bench_reads(run: ReadsRun | None = None) -> list[Figure]:
    """The reads bench on SQLite, and on PostgreSQL when ``WINWIN_DATABASE_URL`` names one
    (one network and one oracle for both)."""
    run = run or ReadsRun()
    figures: list[Figure] = []
    expected: Expected | None = None
    postgres = os.environ.get("WINWIN_DATABASE_URL", "").startswith("postgresql")
    for on_postgres in (False, True) if postgres else (False,):
        with BenchEnv("reads", broker=False, postgres=on_postgres) as env:
            env.engine.dispose()
            state = env.dir / "state"
            window = settings_for(env.database_url, state).attribution_window_days
            expected = expected or expect(run, window)
            figures += _figures(measure(env.database_url, run, state, expected), run)
    return figures


def _figures(result: dict[str, Any], run: ReadsRun) -> list[Figure]:
    db, at_scale = result["database"], result["events"] >= 1_000_000
    size = f"{result['events']:,} events, {result['people']:,} people"
    out = []
    if not result["ingest"].get("skipped"):
        out.append(Figure("reads", f"{db}: ingest through AttributionSink.write ({size})",
                          result["ingest"]["events_per_s"], "ev/s", "reported",
                          details=result["ingest"]))  # fmt: skip
    for e in result["endpoints"]:
        target, goal = e["target_ms"], "reported"
        met = None
        if target is not None:
            goal = f"p50 <= {target:.0f} ms at 1M events"
            met = e["p50_ms"] <= target if at_scale else None
        # Baseline: the same read's first call, computed from the credits (nothing was
        # kept for it yet); the later calls read the answer kept for the data's generation.
        out.append(Figure("reads", f"{db}: {e['endpoint']} p50", e["p50_ms"], "ms", goal, met,
                          baseline=e["first_ms"], baseline_name="its first call (computed)",
                          details=e))  # fmt: skip
        if e["endpoint"].endswith(f"{run.other_window}d") and e is _first_other(result, run):
            out.append(Figure("reads", f"{db}: first read of the {run.other_window}-day window "
                              "(computes it)", e["first_ms"], "ms", "reported", details=e))  # fmt: skip
    ok = result["oracle_ok"]
    out.append(Figure("reads", f"{db}: answers equal to the brute-force oracle ({size})",
                      sum(e["oracle"] == "OK" for e in result["endpoints"]), "answers",
                      "every one", ok, details={"oracle_ok": ok, "load_average": result["load_average"]}))  # fmt: skip
    return out


def _first_other(result: dict[str, Any], run: ReadsRun) -> dict[str, Any]:
    return next(e for e in result["endpoints"] if e["endpoint"].endswith(f"{run.other_window}d"))
