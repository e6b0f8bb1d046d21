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

__all__ = ["COLUMNS", "forest_png", "lift_rows", "p_charts_png", "run_lift_report"]

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
        return forest_png([{**r, "label": r["stage"]} for r in result["stages"]], what)
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


def forest_png(labelled: list[dict[str, Any]], what: str) -> bytes:
    """A forest plot: per row (``label``, ``difference``, ``ci95``) a dot and its 95%
    interval, a dashed line at no effect; rows without an interval are left out."""
    from matplotlib.figure import Figure

    rows = [r for r in labelled if r["ci95"] is not None]
    fig = Figure(figsize=(12, 2.5 + 0.5 * len(rows)), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    for y, row in enumerate(rows):
        low, high = row["ci95"]
        ax.plot([low, high], [y, y], color="#0072B2", linewidth=3)
        ax.plot([row["difference"]], [y], "o", color="#0072B2", markersize=10)
    ax.axvline(0, color="#666666", linestyle="--")
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("difference in conversion, treatment minus control (95% interval)")
    fig.suptitle(f"Did it work? Lift of {what}", fontsize=16, weight="bold")
    return _png_bytes(fig)


def p_charts_png(charts: dict[str, Any], span: str) -> bytes:
    """One panel per p-chart (``use_of_aware``, ``produce_of_use``): the monthly
    proportion, the centre line, the 3-sigma limits as steps (each month its own) and
    the points outside them marked. A withheld value (``None``) is a gap, not a point."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4 + 3.5 * len(charts)), dpi=120, layout="constrained")
    axes = fig.subplots(len(charts), 1, squeeze=False)[:, 0]
    for ax, (name, chart) in zip(axes, charts.items(), strict=True):
        points = chart["points"]
        x = list(range(len(points)))
        ax.plot(x, _gaps(points, "p"), "o-", color="#0072B2", label="proportion")
        if chart["centre"] is not None:
            ax.axhline(chart["centre"], color="#444444", label=f"centre {chart['centre']:.1%}")
        for key in ("upper", "lower"):
            ax.step(x, _gaps(points, key), where="mid", color="#D55E00", ls="--",
                    label="3-sigma limits" if key == "upper" else None)  # fmt: skip
        out = [i for i, p in enumerate(points) if p["outside"]]
        ax.plot(out, [points[i]["p"] for i in out], "o", ms=14, mfc="none", mec="#D55E00",
                mew=2.5, ls="none", label="outside the limits")  # fmt: skip
        ax.set_xticks(x, [p["period"] for p in points], rotation=45, ha="right")
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.set_title(name.replace("_of_", " ÷ "), weight="bold")
        ax.legend(loc="upper left", frameon=False, fontsize=9)
    fig.suptitle(f"p-charts, {span}", fontsize=16, weight="bold")
    return _png_bytes(fig)


def _gaps(points: list[dict[str, Any]], key: str) -> list[float]:
    """``key`` of every point; a withheld one (``None``) is NaN: a gap in the line."""
    return [float("nan") if p[key] is None else p[key] for p in points]
