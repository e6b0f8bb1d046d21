"""Measurement benchmark: ingest a synthetic network, time the read API, check the oracle.

    .venv/bin/python -m tests.bench.bench_measurement [--events N] [--people N]
        [--months N] [--database-url URL | --postgres] [--json]

Records go through ``services.analytics.sink.AttributionSink.write`` — the SQL writer the
Faust agent runs — one envelope's worth (``envelopes.MAX_RECORDS``) per call, in arrival
order. Kafka transport is not in this figure: ``winwin bench pipeline`` measures it. The
read side is timed through the real FastAPI app (TestClient), and every answer is compared
with a brute-force oracle computed in Python from the generated records. Progress on
stderr; the figures on stdout. Exit status 1 when an answer differs from the oracle.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.analytics.sink import AttributionSink
from services.api import create_app
from services.bootstrap import bootstrap
from services.bus.envelopes import MAX_RECORDS
from services.config import Settings
from services.db import models
from services.db.migrate import upgrade
from services.db.session import make_engine, make_sessionmaker
from services.domain import Model
from tests.bench.measurement_network import Network, Oracle, build_network, oracle

TOKEN = "bench-measurement-token-0123456789"
STAGES = ("aware", "use", "produce")
TABLES = {"engagement_events": models.EngagementEvent, "touches": models.Touch,
          "credits": models.Credit, "stage_facts": models.StageFact}  # fmt: skip


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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
            progress(f"ingest {lo + len(part):,}/{len(records):,} records ({rate:,.0f}/s)")
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
            name: conn.scalar(select(func.count()).select_from(m)) for name, m in TABLES.items()
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


def stage_rows(body: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {r["period"]: {s: r[s] for s in STAGES} for r in body["rows"]}


def same_counts(body: dict[str, Any], expected: dict[str, dict[str, int]]) -> bool:
    got = stage_rows(body)
    zero = dict.fromkeys(STAGES, 0)
    return got == {p: expected.get(p, zero) for p in got}


def same_attribution(body: dict[str, Any], expected: dict[tuple[str, str], tuple]) -> bool:
    """People and events exactly; credited within 1e-6 (the same floats summed in
    another order, then rounded to 6 places by the API)."""
    got = {(r["key"], r["stage"]): (r["credited"], r["people"], r["events"]) for r in body["rows"]}
    if got.keys() != expected.keys():
        return False
    return all(
        got[k][1:] == expected[k][1:]
        and abs(got[k][0] - expected[k][0]) <= 2e-6 * max(1, expected[k][0])
        for k in got
    )


Case = tuple[str, str, dict[str, Any], Callable[[dict[str, Any]], bool]]


def cases(net: Network, truth: Oracle, campaign: str) -> list[Case]:
    """(name, path, params, oracle check) of every timed endpoint."""
    span = {"from": net.months[0], "to": net.months[-1], "period": "month"}
    found: list[Case] = [
        ("stages", "/api/v1/metrics/stages", span, lambda b: same_counts(b, truth.months)),
        ("stages campaign", "/api/v1/metrics/stages", {**span, "campaign_id": campaign},
         lambda b: same_counts(b, truth.campaign_months)),
    ]  # fmt: skip
    for model in Model:
        expected = truth.attribution[model.value]
        found.append((f"attribution {model.value}", "/api/v1/attribution", {"model": model.value},
                      lambda b, e=expected: same_attribution(b, e)))  # fmt: skip
    return found


def query(url: str, todo: list[Case], calls: int, tmp: Path) -> list[dict[str, Any]]:
    """Each endpoint: one answer checked against the oracle, then ``calls`` timed calls."""
    settings = Settings(database_url=url, api_token=TOKEN, secret_key="b" * 32, state_dir=tmp)
    container = bootstrap(settings)
    client = TestClient(create_app(container), headers={"Authorization": f"Bearer {TOKEN}"})
    results = []
    try:
        for name, path, params, check in todo:
            response = client.get(path, params=params)
            response.raise_for_status()
            verdict = "OK" if check(response.json()) else "MISMATCH"

            def call(path: str = path, params: dict[str, Any] = params) -> None:
                client.get(path, params=params).raise_for_status()

            figures = timed(call, calls)
            results.append({"endpoint": name, "params": params, **figures, "oracle": verdict})
            progress(f"{name}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, {verdict}")
    finally:
        container.close()
    return results


def run(url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    load = os.getloadavg()
    progress(f"generating {args.events:,} events, {args.people:,} people, {args.months} months")
    net = build_network(args.events, args.people, args.months, args.seed)
    campaign = f"news-{net.months[len(net.months) // 2]}"
    upgrade(url)
    if args.reuse:
        figures = {"skipped": True, **table_rows(url)}
    else:
        require_empty(url)
        progress(f"ingesting {len(net.arrivals):,} records through AttributionSink.write")
        figures = ingest(url, net, args.batch)
    progress("computing the oracle")
    truth = oracle(net, campaign)
    endpoints = query(url, cases(net, truth, campaign), args.calls, tmp / "state")
    return {
        "database": url.split(":", 1)[0].split("+", 1)[0],
        "events": len(net.events), "touches": len(net.touches),
        "people": args.people, "months": args.months, "unique_events": len({r["event_id"] for r in net.events}),
        "campaign_filter": campaign, "ingest": figures, "endpoints": endpoints,
        "oracle_ok": all(e["oracle"] == "OK" for e in endpoints),
        "load_average": {"start": [round(x, 2) for x in load], "end": [round(x, 2) for x in os.getloadavg()]},
    }  # fmt: skip


def render(result: dict[str, Any]) -> str:
    i = result["ingest"]
    lines = [
        f"WINWIN measurement benchmark on {result['database']}: {result['events']:,} events "
        f"({result['unique_events']:,} unique) + {result['touches']:,} touches, {result['people']:,} people, "
        f"{result['months']} months",
    ]
    if i.get("skipped"):
        lines.append("ingest skipped (--reuse): reads only")
    else:
        lines += [
            f"ingest through services.analytics.sink.AttributionSink.write (the Faust agent's SQL writer), "
            f"{i['batch_records']} records per call; Kafka transport not included (`winwin bench pipeline`)",
            f"  {i['seconds']} s: {i['events_per_s']:,} events/s ({i['records_per_s']:,} records/s incl. touches)",
        ]
        if i.get("vacuum_s") is not None:
            lines.append(
                f"  then VACUUM ANALYZE of the fact tables: {i['vacuum_s']} s (not in the rate)"
            )
    lines += [
        "  rows: " + ", ".join(f"{k} {v:,}" for k, v in i["rows"].items()),
        f"{'endpoint':<28} {'p50 ms':>9} {'p99 ms':>9}  oracle",
    ]
    for e in result["endpoints"]:
        lines.append(f"{e['endpoint']:<28} {e['p50_ms']:>9} {e['p99_ms']:>9}  {e['oracle']}")
    lines.append(f"(stages: month, {result['months']} months; campaign filter {result['campaign_filter']}; "
                 f"attribution: default 30-day window, all time; load average {result['load_average']})")  # fmt: skip
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--people", type=int, default=100_000)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    p.add_argument(
        "--postgres", action="store_true", help="a fresh PostgreSQL database (tests/pg_cluster.py)"
    )
    p.add_argument("--keep", action="store_true", help="keep the --postgres database (for EXPLAIN)")
    p.add_argument("--calls", type=int, default=30, help="timed calls per endpoint")
    p.add_argument("--batch", type=int, default=MAX_RECORDS, help="records per sink.write")
    p.add_argument("--seed", type=int, default=2017)
    p.add_argument("--reuse", action="store_true",
                   help="the database already holds this network (same sizes, seed): time the reads only")  # fmt: skip
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="winwin-bench-") as tmp:
        server = None
        if args.postgres:
            from tests.pg_cluster import find_server

            server = find_server()
            url = server.create_database()
            progress(f"PostgreSQL database {url.rsplit('/', 1)[-1]} on {server.describe()}")
        else:
            url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        try:
            result = run(url, args, Path(tmp))
        finally:
            if server is not None and not args.keep:
                server.drop_database(url)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["oracle_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
