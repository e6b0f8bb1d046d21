"""``winwin report lift --campaign ID | --journey ID``: a holdout's lift as a table, CSV,
JSON (the API's answer as is) or a PNG forest plot (difference and 95% interval per
stage, a line at no effect). Output helpers are the stage report's."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from services.analytics import sharing
from services.analytics.reports import _emit, _png_bytes, _table, run_report
from services.config import Settings
from services.db.migrate import upgrade
from services.db.session import make_engine, make_sessionmaker
from services.errors import UsageError
from services.experiments.lift import experiment_lift
from services.spreadsheet import csv_text

__all__ = ["COLUMNS", "lift_rows", "run_lift_report"]

COLUMNS = ["stage", "rate_treatment", "rate_control", "difference", "ci95_low", "ci95_high",
           "relative_lift", "p_value", "p_holm", "incremental_people"]  # fmt: skip


def run_report_command(settings: Settings, args: argparse.Namespace) -> int:
    """``winwin report``: ``lift`` here; ``stages`` and ``attribution`` in analytics.reports."""
    if args.report_command == "lift":
        return run_lift_report(settings, args)
    return run_report(settings, args)


def run_lift_report(settings: Settings, args: argparse.Namespace) -> int:
    """Entry point of ``winwin report lift``; 0 on success."""
    if args.format == "png" and not args.out:
        raise UsageError("--format png needs --out FILE (a PNG is not written to a terminal)")
    kind, subject = ("campaign", args.campaign) if args.campaign else ("journey", args.journey)
    if not subject:
        raise UsageError("report lift: give --campaign ID or --journey ID")
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            result = experiment_lift(session, kind, subject, datetime.now(UTC))
    finally:
        engine.dispose()
    if result is None:
        raise UsageError(f"report lift: --{kind}: {subject!r} not found or without a holdout")
    shared = sharing.lift(result, settings.min_cell)  # a report is meant to be shared
    _emit(render(shared, args.format, f"{kind} {subject}"), args.out)
    return 0


def lift_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per stage (the interval in two columns; blanks where undefined)."""
    rows = []
    for stage in result["stages"]:
        low, high = stage["ci95"] or (None, None)
        row = {k: stage.get(k) for k in COLUMNS} | {"ci95_low": low, "ci95_high": high}
        rows.append({k: "" if v is None else v for k, v in row.items()})
    return rows


def render(result: dict[str, Any], fmt: str, what: str) -> str | bytes:
    if fmt == "json":
        return json.dumps(result, indent=2) + "\n"
    if fmt == "csv":
        return csv_text(COLUMNS, lift_rows(result))
    if fmt == "png":
        return _forest_png(result, what)
    arms, srm = result["arms"], result["srm"]
    head = [
        f"Lift of {what}: {result['share']:.0%} held out, {result['window_days']}-day window"
        + ("" if result["complete"] else " (not complete: windows still open)"),
        f"treatment: {arms['treatment']['people']} people; control: "
        f"{arms['control']['people']} people",
        "sample ratio: "
        + (
            "MISMATCH (p < 0.001): check the assignment" if srm["flag"] else "as configured"
        ),  # fmt: skip
    ]
    rounded = [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
               for r in lift_rows(result)]  # fmt: skip
    return "\n".join(head) + "\n\n" + _table(COLUMNS, rounded)


def _forest_png(result: dict[str, Any], what: str) -> bytes:
    from matplotlib.figure import Figure

    rows = [r for r in result["stages"] if r["ci95"] is not None]
    fig = Figure(figsize=(12, 5), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    for y, row in enumerate(rows):
        low, high = row["ci95"]
        ax.plot([low, high], [y, y], color="#0072B2", linewidth=3)
        ax.plot([row["difference"]], [y], "o", color="#0072B2", markersize=10)
    ax.axvline(0, color="#666666", linestyle="--")
    ax.set_yticks(range(len(rows)), [r["stage"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("difference in conversion, treatment minus control (95% interval)")
    fig.suptitle(f"Did it work? Lift of {what}", fontsize=16, weight="bold")
    return _png_bytes(fig)
