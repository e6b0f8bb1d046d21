"""``winwin report``: stage counts and attribution as a table, CSV, JSON or a PNG chart.

The numbers are the API's (:mod:`services.analytics.metrics`); this module only opens the
database, runs the steps with a progress bar on a terminal, and renders. JSON is the
API's answer as is; CSV is one row per period (stages) or per key and stage
(attribution); the PNG is a run chart meant for a slide.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from services.analytics import metrics, sharing
from services.analytics.metrics import QueryError
from services.analytics.window_credits import other_window_ready, read_window
from services.config import Settings
from services.db.migrate import upgrade
from services.db.session import make_engine, make_sessionmaker
from services.domain.periods import PeriodKind, parse_period
from services.domain.stages import Stage
from services.errors import UsageError
from services.spreadsheet import csv_text

__all__ = ["run_report", "stages_png"]

STAGES = [s.value for s in Stage]
# QueryError names the API's parameters; the person at the terminal typed options.
OPTIONS = {"from": "--from", "to": "--to", "baseline": "--baseline", "model": "--model",
           "group_by": "--group-by", "window_days": "--window-days"}  # fmt: skip


def run_report(settings: Settings, args: argparse.Namespace) -> int:
    """Entry point of ``winwin report stages|attribution``; 0 on success.

    Bad input raises :class:`services.cli.UsageError` naming the option, before the
    database is touched whenever it can be told from the arguments alone.
    """
    if args.format == "png" and not args.out:
        raise UsageError("--format png needs --out FILE (a PNG is not written to a terminal)")
    try:
        if args.report_command == "stages":
            _check_months(args)
        elif args.window_days is not None and args.window_days <= 0:
            raise QueryError(
                "window_days", f"window_days: must be positive, got {args.window_days}"
            )
        output = _run(settings, args)
    except QueryError as exc:
        option = OPTIONS.get(exc.field, exc.field)
        detail = str(exc).removeprefix(f"{exc.field}: ")
        raise UsageError(f"report {args.report_command}: {option}: {detail}") from None
    _emit(output, args.out)
    return 0


def _check_months(args: argparse.Namespace) -> None:
    for field, value in (("from", args.start), ("to", args.end), ("baseline", args.baseline)):
        if value is None:
            continue
        try:
            parse_period(value, PeriodKind.MONTH)
        except ValueError as exc:
            raise QueryError(field, f"{field}: {exc}") from None


def _run(settings: Settings, args: argparse.Namespace) -> str | bytes:
    """Migrate, (recompute credits,) query and render: one progress step each."""
    window: int = getattr(args, "window_days", None) or settings.attribution_window_days
    steps = ["preparing database", "querying", "rendering"]
    if window != settings.attribution_window_days:
        steps.insert(1, f"attributing events for a {window}-day window")
    progress = _Progress(steps)
    try:
        progress.next()
        upgrade(settings.database_url)  # an empty database answers zeros, not an error
        engine = make_engine(settings.database_url)
        try:
            result = _query(make_sessionmaker(engine), settings, args, window, progress)
        finally:
            engine.dispose()
        progress.next()
        return _render(_shared(result, args, settings.min_cell), args, window, settings.min_cell)
    finally:
        progress.close()


def _shared(result: Any, args: argparse.Namespace, min_cell: int) -> Any:
    """A report is meant to be shared: small counts are withheld (``<11``)."""
    if args.report_command == "stages":
        return sharing.stages(result, min_cell)
    if args.campaign:
        return sharing.attribution(result, "period", min_cell)
    return result | {"rows": sharing.attribution(result["rows"], "key", min_cell)}


def _query(
    sessions: sessionmaker[Session],
    settings: Settings,
    args: argparse.Namespace,
    window: int,
    progress: _Progress,
) -> Any:
    if window != settings.attribution_window_days:
        progress.next()  # computed once per window and kept: later reports are quick
        other_window_ready(sessions, settings, window, datetime.now(UTC))
    progress.next()

    def read(session: Session) -> Any:
        if args.report_command == "stages":
            return metrics.stage_metrics(
                session, PeriodKind.MONTH, args.start, args.end, args.baseline
            )
        if args.campaign:
            return metrics.campaign_attribution(session, args.campaign, args.model, window)
        return metrics.attribution(session, args.model, window, group_by=args.group_by)

    return read_window(sessions, settings, window, datetime.now(UTC), read)


class _Progress:
    """A bar over the report's steps on stderr; silent when stderr is not a terminal."""

    FORMAT = "{desc}: {bar} {n_fmt}/{total_fmt} steps [{elapsed}]"

    def __init__(self, steps: list[str]):
        self.names = iter(steps)
        self.started = False
        self.bar = tqdm(total=len(steps), file=sys.stderr, disable=None, leave=False,
                        bar_format=self.FORMAT)  # fmt: skip

    def next(self) -> None:
        """The previous step is done; the next one starts."""
        self.bar.set_description_str(next(self.names), refresh=False)
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.refresh()  # now, not throttled: the step that starts may be the long one

    def close(self) -> None:
        self.bar.close()


def _emit(output: str | bytes, out: str | None) -> None:
    if out is None:
        assert isinstance(output, str)
        sys.stdout.write(output)
        sys.stdout.flush()
    elif isinstance(output, bytes):
        Path(out).write_bytes(output)
    else:
        Path(out).write_text(output, encoding="utf-8")


# -- rendering ---------------------------------------------------------------------------


def _render(result: Any, args: argparse.Namespace, window: int, min_cell: int) -> str | bytes:
    stages = args.report_command == "stages"
    rows = result["rows"] if isinstance(result, dict) else result
    key = "period" if stages or args.campaign else "key"
    columns = ["period", *STAGES] if stages else [key, "stage", "credited", "people", "events"]
    if args.format == "json":
        return json.dumps(result, indent=2) + "\n"
    rows = sharing.readable(rows, min_cell)
    if args.format == "csv":
        return csv_text(columns, rows)
    if args.format == "png":
        if stages:
            return stages_png(result)
        return _attribution_png(rows, key, _attribution_title(args, window))
    if stages:
        return _stages_table(result | {"rows": rows})
    return f"{_attribution_title(args, window)}\n\n{_table(columns, rows)}"


def _attribution_title(args: argparse.Namespace, window: int) -> str:
    what = f"for campaign {args.campaign}, per month" if args.campaign else f"per {args.group_by}"
    return f"Credited stage events {what}: {args.model} model, {window}-day window"


def _stages_table(result: dict[str, Any]) -> str:
    rows = result["rows"]
    first, last = rows[0]["period"], rows[-1]["period"]
    withheld = result.get("suppressed", {})
    growth = {s: _factor(result["growth"][s]) for s in STAGES}
    median = {s: _number(result["median"][s]) for s in STAGES}
    for name, values in (("growth", growth), ("median", median)):
        values.update(dict.fromkeys(withheld.get(name, []), "suppressed"))
    footer = [
        {"period": f"growth vs {result['baseline']}", **growth},
        {"period": "median", **median},
    ]
    lines = [
        f"Unique people per month, {first} to {last} (baseline {result['baseline']})",
        "",
        _table(["period", *STAGES], rows, footer),
        "Run-chart signals (shift: 6+ points on one side of the median; trend: 5+ rising "
        "or falling):",
    ]
    for stage in STAGES:
        found = result["signals"][stage]
        text = "; ".join(f"{s['rule']} {s['from']} to {s['to']}" for s in found) or "none"
        lines.append(f"  {stage:<8} {text}")
    return "\n".join(lines) + "\n"


def _table(
    columns: list[str], rows: list[dict[str, Any]], footer: list[dict[str, Any]] | None = None
) -> str:
    """Columns aligned: text to the left, numbers to the right; a rule above a footer."""
    if not rows:
        return "(no credited events)\n"
    footer = footer or []
    cells = [[_number(r[c]) for c in columns] for r in [*rows, *footer]]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    numeric = [c not in ("period", "key", "stage") for c in columns]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(columns), line(["-" * w for w in widths])]
    out += [line(row) for row in cells[: len(rows)]]
    if footer:
        out.append(line(["-" * w for w in widths]))
        out += [line(row) for row in cells[len(rows) :]]
    return "\n".join(out) + "\n"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0")
    return str(value)


def _credited(value: float) -> str:
    return _number(round(value, 1)) if value else ""


def _factor(value: float | None) -> str:
    return "n/a" if value is None else f"x{value:.2f}"


# -- charts (matplotlib is imported only here; the object API keeps pyplot's global state
# and GUI backends out: a Figure saved to PNG renders with Agg) ---------------------------

COLOURS = {"aware": "#0072B2", "use": "#E69F00", "produce": "#009E73"}  # colour-blind safe
MARKERS = {"aware": "o", "use": "s", "produce": "^"}
WIDTH_IN, HEIGHT_IN, DPI = 16, 9, 120  # 1920 x 1080 px


#: Run-chart rule -> its legend text; a signal's span is drawn in the rule's style.
RULES = {
    "shift": "shift: 6+ points on one side of the median",
    "trend": "trend: 5+ points rising or falling",
    "too_few_runs": "too few runs: the line crosses the median too seldom",
    "too_many_runs": "too many runs: the line crosses the median too often",
    "longest_run": "longest run: too many points on one side of the median",
    "few_crossings": "few crossings: the line crosses the median too seldom",
}
RULES_OF = {"ihi": ("shift", "trend", "too_few_runs", "too_many_runs"),
            "anhoej": ("longest_run", "few_crossings")}  # fmt: skip
HATCHES = {"too_few_runs": "//", "too_many_runs": "\\\\", "longest_run": "..",
           "few_crossings": "xx"}  # fmt: skip


def stages_png(result: dict[str, Any]) -> bytes:
    """The run chart: a line per stage of ``result["median"]``, its dashed median, each
    signal's span highlighted in its rule's style (legend: the rules of ``result["rules"]``)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rows, base = result["rows"], result["baseline"]
    periods, shown = [r["period"] for r in rows], [s for s in STAGES if s in result["median"]]
    with rc_context({"font.size": 14, "axes.spines.top": False, "axes.spines.right": False}):
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        for stage in shown:
            _plot_stage(ax, stage, [r[stage] for r in rows], periods, result)
        x = range(len(periods))
        if base in periods:
            ax.axvline(periods.index(base), color="#888888", ls=":", lw=1.5, label="baseline")
        step = -(-len(periods) // 24)  # at most 24 labels
        ax.set_xticks(x[::step], [_month(p) for p in periods[::step]], rotation=45, ha="right")
        ax.set_xlim(-0.5, len(periods) - 0.5 + max(0.6, len(periods) * 0.06))  # end labels
        top = max(max(r[s] or 0 for s in shown) for r in rows)
        ax.set_ylim(0, max(5, top * 1.05))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if not top:
            ax.text(0.5, 0.5, "nobody counted at any stage in this range", ha="center",
                    transform=ax.transAxes, size=18, color="#666666")  # fmt: skip
        ax.set_ylabel("unique people")
        ax.grid(axis="y", color="#dddddd")
        span = f"{_month(periods[0])} to {_month(periods[-1])}"
        fig.suptitle(f"Unique people {_verbs(shown)}: {span}", size=22, weight="bold")
        growth = ", ".join(f"{s} {_times(result['growth'][s])}" for s in shown)
        if None in (result["growth"][s] for s in shown):
            growth += " (n/a: nobody at that stage in the baseline month, or withheld)"
        ax.set_title(f"Growth since the {_month(base)} baseline: {growth}", size=17, pad=12)
        handles, _ = ax.get_legend_handles_labels()
        baseline = handles[len(shown) * 2 :]  # read column by column: stage, its median
        handles = handles[: len(shown) * 2] + _rule_handles(result) + baseline
        fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False, fontsize=13)
        return _png_bytes(fig)


def _verbs(stages: list[str]) -> str:
    verbs = [{"aware": "aware", "use": "using", "produce": "producing"}[s] for s in stages]
    return ", ".join(verbs[:-1]) + (" and " if len(verbs) > 1 else "") + verbs[-1]


def _rule_handles(result: dict[str, Any]) -> list[Any]:
    """One legend entry per rule of the rule set, in the style its spans are drawn."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = []
    for rule in RULES_OF[result.get("rules", "ihi")]:
        if rule == "shift":
            handles.append(Line2D([], [], marker="o", ms=16, mfc="none", mec="#444444", mew=2,
                                  ls="none", label=RULES[rule]))  # fmt: skip
        elif rule == "trend":
            handles.append(Line2D([], [], lw=12, color="#444444", alpha=0.25, label=RULES[rule]))
        else:
            handles.append(Patch(facecolor="#44444418", edgecolor="#444444", hatch=HATCHES[rule],
                                 label=RULES[rule]))  # fmt: skip
    return handles


def _plot_stage(
    ax: Any, stage: str, values: list[int | None], periods: list[str], result: dict[str, Any]
) -> None:
    min_cell = result.get("disclosure", {}).get("min_cell", 0)
    colour, centre = COLOURS[stage], result["median"][stage]
    x = list(range(len(values)))
    ax.plot(x, values, color=colour, marker=MARKERS[stage], lw=2.6, ms=8, label=stage, zorder=3)
    if centre is None:  # withheld: it would give a small count away
        centre, shown = float("nan"), "suppressed"
    else:
        shown = _number(centre)
    ax.axhline(centre, color=colour, ls="--", lw=1.5, alpha=0.85,
               label=f"{stage} median ({shown})")  # fmt: skip
    for i, value in enumerate(values):
        if value is None:  # a gap in the line, labelled as withheld
            ax.annotate(f"<{min_cell}", (i, 0), xytext=(0, 6), textcoords="offset points",
                        ha="center", color=colour, size=12)  # fmt: skip
    for signal in result["signals"][stage]:
        a, b = periods.index(signal["from"]), periods.index(signal["to"]) + 1
        if signal["rule"] in HATCHES:  # about the whole series or a long run: its span
            ax.axvspan(a - 0.5, b - 0.5, facecolor=colour, alpha=0.08, edgecolor=colour,
                       hatch=HATCHES[signal["rule"]], zorder=1)  # fmt: skip
        elif signal["rule"] == "shift":
            ax.scatter(x[a:b], values[a:b], s=380, facecolors="none", edgecolors=colour,
                       linewidths=2.2, zorder=4)  # fmt: skip
        else:  # a highlighter stroke behind the rising or falling run
            ax.plot(x[a:b], values[a:b], color=colour, lw=14, alpha=0.22, solid_capstyle="round",
                    zorder=2)  # fmt: skip
    last = f"<{min_cell}" if values[-1] is None else f"{values[-1]:,}"
    ax.annotate(last, (x[-1], values[-1] or 0), xytext=(18, 0), color=colour,
                textcoords="offset points", va="center", size=15, weight="bold")  # fmt: skip


def _attribution_png(rows: list[dict[str, Any]], key: str, title: str) -> bytes:
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    credited: dict[str, dict[str, float]] = {}
    labels: dict[tuple[str, str], str] = {}  # withheld bars: no bar, a "<11" label
    for r in rows:
        value = r["credited"]
        if isinstance(value, str):
            labels[r[key], r["stage"]], value = value, 0.0
        credited.setdefault(r[key], dict.fromkeys(STAGES, 0.0))[r["stage"]] = value
    keys = list(credited)  # periods stay in time order; keys go biggest first
    if key == "key":
        keys.sort(key=lambda k: -sum(credited[k].values()))
    shown = keys[:25]
    height = max(HEIGHT_IN, 2.5 + 0.55 * len(shown))
    with rc_context({"font.size": 14, "axes.spines.top": False, "axes.spines.right": False}):
        fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
        ax = fig.add_subplot()
        bar = 0.8 / len(STAGES)
        for i, stage in enumerate(STAGES):
            y = [n + (i - 1) * bar for n in range(len(shown))]
            values = [credited[k][stage] for k in shown]
            bars = ax.barh(y, values, height=bar, color=COLOURS[stage], label=stage)
            texts = [labels.get((k, stage)) or _credited(credited[k][stage]) for k in shown]
            ax.bar_label(bars, texts, padding=4,
                         fontsize=11)  # fmt: skip
        ax.set_yticks(range(len(shown)), shown)
        ax.invert_yaxis()  # first key on top
        ax.set_xlabel("credited stage events (credits per event sum to 1)")
        ax.grid(axis="x", color="#dddddd")
        ax.set_axisbelow(True)
        fig.legend(loc="outside lower center", ncol=len(STAGES), frameon=False)
        more = f" (top {len(shown)} of {len(keys)})" if len(keys) > len(shown) else ""
        fig.suptitle(title + more, fontsize=20, weight="bold")
        if not shown:
            ax.text(0.5, 0.5, "no credited events", ha="center", va="center",
                    transform=ax.transAxes, fontsize=18, color="#666666")  # fmt: skip
        return _png_bytes(fig)


def _png_bytes(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _month(label: str) -> str:
    return parse_period(label, PeriodKind.MONTH).strftime("%b %Y")


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"\u00d7{value:.1f}"
