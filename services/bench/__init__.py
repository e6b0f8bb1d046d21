"""``winwin bench``: benchmarks, each figure against a baseline measured in the same run.

The machines are shared and noisy, so a figure alone says little: every bench measures
what the bare tool can do (a bare aiokafka consumer, a bare Starlette handler) in the
same run and reports the ratio. Progress goes to stderr; the table (or ``--json``) to
stdout. Exit status 0 when every bench ran, 1 when one failed (targets missed are
reported, not failed: they are findings).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from services.bench.dispatch import bench_dispatch
from services.bench.figures import Figure, table, to_json
from services.bench.latency import bench_latency
from services.bench.memory import bench_memory
from services.bench.pipeline import bench_pipeline
from services.bench.reads import ReadsRun, bench_reads
from services.bench.redirect import bench_redirect
from services.bench.scaleout import bench_scaleout
from services.bench.scaleout_workers import GROUPS, bench_scaleout_workers
from services.config import Settings

__all__ = ["BENCHES", "Figure", "run_bench", "table", "to_json"]

BENCHES = ("pipeline", "latency", "redirect", "dispatch", "memory", "scaleout", "reads")


def run_bench(settings: Settings, args: argparse.Namespace) -> int:
    """Run the benches asked for; print a table (or JSON with ``--json``)."""
    names = BENCHES if args.what == "all" else (args.what,)
    figures: list[Figure] = []
    failed: dict[str, str] = {}
    for name in names:
        try:
            figures += _run_one(name, args)
        except Exception as exc:  # noqa: BLE001 - report it, go on with the others
            traceback.print_exc(file=sys.stderr)
            failed[name] = f"{type(exc).__name__}: {exc}"
    if args.json:
        print(json.dumps(to_json(figures, failed), indent=2))
    else:
        print(table(figures, failed))
    return 1 if failed else 0


def _run_one(name: str, args: argparse.Namespace) -> list[Figure]:
    if name == "pipeline":
        return bench_pipeline(args.events or 200_000)
    if name == "latency":
        return bench_latency()
    if name == "redirect":
        return bench_redirect()
    if name == "memory":
        return bench_memory(getattr(args, "people", None) or 1_000_000)
    if name == "scaleout":
        return _scaleout(args)
    if name == "reads":
        return bench_reads(
            ReadsRun(args.events or 1_000_000, getattr(args, "people", None) or 100_000)
        )
    return bench_dispatch()


def _scaleout(args: argparse.Namespace) -> list[Figure]:
    """Joins and a leave (``scaleout``), group sizes (``scaleout --workers 1,2,4``); both
    in ``all`` (the group sizes at 100,000 records)."""
    real, events = getattr(args, "real_kafka", False), getattr(args, "events", None)
    groups = getattr(args, "workers", None)
    figures: list[Figure] = []
    if args.what == "all" or not groups:
        figures += bench_scaleout(events or 200_000, real_kafka=real)
    if args.what == "all" or groups:
        sizes = tuple(int(k) for k in groups.split(",")) if groups else GROUPS
        figures += bench_scaleout_workers(events or 100_000, sizes, real_kafka=real)
    return figures
