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
from dataclasses import asdict, dataclass, field
from typing import Any

from services.config import Settings

BENCHES = ("pipeline", "latency", "redirect", "dispatch", "memory", "scaleout")


@dataclass
class Figure:
    """One measured figure: its value, the baseline of the same run, the target."""

    bench: str
    name: str
    value: float
    unit: str
    target: str
    met: bool | None = None
    baseline: float | None = None
    baseline_name: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None


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
        from services.bench.pipeline import bench_pipeline

        return bench_pipeline(args.events or 200_000)
    if name == "latency":
        from services.bench.latency import bench_latency

        return bench_latency()
    if name == "redirect":
        from services.bench.redirect import bench_redirect

        return bench_redirect()
    if name == "memory":
        from services.bench.memory import bench_memory

        return bench_memory(getattr(args, "people", None) or 1_000_000)
    if name == "scaleout":
        from services.bench.scaleout import bench_scaleout

        return bench_scaleout(
            getattr(args, "events", None) or 200_000, real_kafka=getattr(args, "real_kafka", False)
        )
    from services.bench.dispatch import bench_dispatch

    return bench_dispatch()


def to_json(figures: list[Figure], failed: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "figures": [asdict(f) | {"ratio": f.ratio} for f in figures],
        "failed": failed or {},
    }


def table(figures: list[Figure], failed: dict[str, str] | None = None) -> str:
    """A plain-text table: bench, figure, value, baseline, ratio, target, met."""
    head = ("bench", "figure", "value", "baseline", "ratio", "target", "met")
    rows = [head]
    for f in figures:
        base = f"{_num(f.baseline)} {f.unit} ({f.baseline_name})" if f.baseline else "-"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        met = {True: "yes", False: "NO", None: "-"}[f.met]
        rows.append((f.bench, f.name, f"{_num(f.value)} {f.unit}", base, ratio, f.target, met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for name, error in (failed or {}).items():
        lines.append(f"{name}: FAILED: {error}")
    return "\n".join(lines)


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"
