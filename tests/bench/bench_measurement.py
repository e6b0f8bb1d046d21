"""Measurement benchmark: ingest a synthetic network, time the read API, check the oracle.

    .venv/bin/python -m tests.bench.bench_measurement [--events N] [--people N]
        [--months N] [--database-url URL | --postgres] [--json]

The bench itself is ``services.bench.reads`` (``winwin bench reads``, in ``make bench``);
this command adds what only a checkout has: ``--postgres`` (a fresh database from
tests/pg_cluster.py), ``--database-url``, ``--reuse`` and ``--keep`` for a database to
inspect with EXPLAIN, and a plain report. Progress on stderr; the figures on stdout.
Exit status 1 when an answer differs from the oracle.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from services.bench.env import progress
from services.bench.oracle import same_attribution, same_counts
from services.bench.reads import ReadsRun, measure
from services.bus.envelopes import MAX_RECORDS

__all__ = ["main", "same_attribution", "same_counts"]


def run(url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    sizes = ReadsRun(args.events, args.people, args.months, args.calls, args.batch, args.seed,
                     args.reuse, args.other_window)  # fmt: skip
    return measure(url, sizes, tmp / "state")


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
        f"{'endpoint':<32} {'first ms':>9} {'p50 ms':>9} {'p99 ms':>9}  oracle",
    ]
    for e in result["endpoints"]:
        lines.append(f"{e['endpoint']:<32} {e['first_ms']:>9} {e['p50_ms']:>9} {e['p99_ms']:>9}  {e['oracle']}")  # fmt: skip
    lines.append(f"(stages: month, {result['months']} months; campaign filter {result['campaign_filter']}; "
                 f"attribution: {result['window_days']}-day window unless named, all time; "
                 f"dashboard: its months; load average {result['load_average']})")  # fmt: skip
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
    p.add_argument("--other-window", type=int, default=7, help="the non-default window read")
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
