"""Outputs meant to be shared: small counts withheld (:mod:`services.domain.disclosure`).

Applied to ``winwin report`` (every format), the dashboard's CSV exports, and the API and
dashboard as seen by a role that must not see exact counts (``analyst``): see
:func:`exact_for`. Admins and staff see exact counts, marked "not for sharing".

JSON shape (kept readable for existing readers): a withheld number is ``null`` and its
row names it in a sibling list, ``"suppressed": ["aware"]`` (only on rows that withhold
something). Growth factors and medians that come from a withheld count are ``null`` too,
listed under the answer's ``"suppressed": {"growth": [...], "median": [...]}``; run-chart
signals of a stage with a withheld count are found on its published points alone. Every
answer says how it was made: ``"disclosure": {"exact": false, "min_cell": 11}`` or
``{"exact": true, "note": "not for sharing"}``. On screen, in CSV and in a PNG a withheld
count reads ``<11``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from services.analytics.charts import CONVERSIONS, RuleSet, signals
from services.domain.disclosure import is_small, shown, suppress
from services.domain.stages import Stage

STAGES = [s.value for s in Stage]
#: Roles that see exact counts (in the console, marked "not for sharing").
EXACT_ROLES = frozenset({"admin", "staff"})
NOT_FOR_SHARING = "not for sharing"
#: The fields of an attribution row withheld together (credits come from the events).
ATTRIBUTION_FIELDS = ["credited", "people", "events"]


def exact_for(role: str) -> bool:
    """Whether ``role`` may see exact counts; every other role (``analyst``, a service
    token of that role, an unknown role) gets the shared, suppressed figures."""
    return role in EXACT_ROLES


def min_cell(role: str, configured: int) -> int:
    """The smallest count ``role`` is shown: 0 (exact) for admins and staff, else
    ``configured`` (``WINWIN_MIN_CELL``). The one place a role becomes a cell size."""
    return 0 if exact_for(role) else configured


def exact_marker() -> dict[str, Any]:
    return {"exact": True, "note": NOT_FOR_SHARING}


def stages(result: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    """A :func:`services.analytics.metrics.stage_metrics` answer, safe to share (as it is
    when ``min_cell`` is 0: suppression off)."""
    out = copy.deepcopy(dict(result))
    if min_cell <= 0:
        return out
    out["disclosure"] = {"exact": False, "min_cell": min_cell}
    rows = out["rows"]
    hidden = suppress([[row[s] or 0 for s in STAGES] for row in rows], min_cell)
    for i, row in enumerate(rows):
        withheld = [s for j, s in enumerate(STAGES) if (i, j) in hidden]
        for stage in withheld:
            row[stage] = None
        if withheld:
            row["suppressed"] = withheld
    growth = [s for s in STAGES if _growth_withheld(result, rows, s, min_cell)]
    medians = [s for j, s in enumerate(STAGES) if _median_withheld(result, hidden, j, min_cell)]
    for stage in growth:
        out["growth"][stage] = None
    for stage in medians:
        out["median"][stage] = None
    if growth or medians:
        out["suppressed"] = {"growth": growth, "median": medians}
    _withhold_p_charts(out.get("p_charts", {}), rows)
    if "signals" in out:
        _published_signals(out, rows)
    return out


def _published_signals(out: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Run-chart signals of a stage with a withheld count, found again on the published
    series alone: a withheld point is left out as a "not useful" observation (as QI
    practice does with a missing point), and the centre is the published points' median.
    Signals found on exact values could tell on which side of the median, or of its
    neighbours, a withheld count lies."""
    rules = RuleSet(out.get("rules", RuleSet.IHI))
    for stage in STAGES:
        kept = [(row["period"], row[stage]) for row in rows if row[stage] is not None]
        if len(kept) == len(rows):
            continue
        values = [float(v) for _, v in kept]
        found = signals(values, rules) if values else []
        out["signals"][stage] = [
            {"rule": r, "from": kept[a][0], "to": kept[b][0]} for r, a, b in found
        ]


def _withhold_p_charts(charts: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """A p-chart point shows its two counts: withheld with them. A hidden denominator
    hides the limits too (they give the denominator back: p̄ ± 3√(p̄(1−p̄)/n))."""
    for name, chart in charts.items():
        top, bottom = CONVERSIONS[name]
        for row, point in zip(rows, chart["points"], strict=True):
            hidden = set(row.get("suppressed", ()))
            if top in hidden or bottom in hidden:
                point.update(numerator=None, p=None, outside=None, suppressed=True)
            if bottom in hidden:
                point.update(denominator=None, lower=None, upper=None)


def _growth_withheld(result: Mapping[str, Any], rows: list[dict[str, Any]], stage: str,
                     min_cell: int) -> bool:  # fmt: skip
    """A growth factor is last / baseline: withheld when either count is."""
    factor, last = result["growth"].get(stage), result["rows"][-1][stage]
    if rows[-1][stage] is None:
        return True
    by_period = {row["period"]: row for row in rows}
    base = by_period.get(result["baseline"])
    if base is not None:
        return base[stage] is None
    return bool(factor) and is_small(round(last / factor), min_cell)


def _median_withheld(result: Mapping[str, Any], hidden: set[tuple[int, int]], column: int,
                     min_cell: int) -> bool:  # fmt: skip
    """A median of a column with a withheld count could give it away: withheld."""
    value = result.get("median", {}).get(STAGES[column])
    return is_small(value, min_cell) or any(j == column for _, j in hidden)


def attribution(rows: list[dict[str, Any]], key: str, min_cell: int) -> list[dict[str, Any]]:
    """Attribution rows (``key`` and ``stage`` per row), safe to share: people and events
    are each a table of keys by stages; a withheld cell withholds its credits too."""
    out = copy.deepcopy(rows)
    keys = sorted({row[key] for row in out})
    where = {(row[key], row["stage"]): row for row in out}
    withheld: set[tuple[str, str]] = set()
    for field in ("people", "events"):
        grid = [[_get(where, k, s, field) for s in STAGES] for k in keys]
        withheld |= {(keys[i], STAGES[j]) for i, j in suppress(grid, min_cell)}
    for cell in withheld & where.keys():
        row = where[cell]
        for field in ATTRIBUTION_FIELDS:
            row[field] = None
        row["suppressed"] = list(ATTRIBUTION_FIELDS)
    return out


def _get(where: Mapping[tuple[str, str], Mapping[str, Any]], key: str, stage: str,
         field: str) -> int:  # fmt: skip
    row = where.get((key, stage))
    return int(row[field]) if row else 0


def readable(rows: Iterable[Mapping[str, Any]], min_cell: int) -> list[dict[str, Any]]:
    """Rows for a screen or CSV: a withheld number reads ``<11``; the list goes away."""
    return [
        {
            k: shown(None, min_cell) if k in row.get("suppressed", ()) else v
            for k, v in row.items()
            if k != "suppressed"
        }  # fmt: skip
        for row in rows
    ]


def leaderboard(board: list[dict[str, Any]], min_cell: int) -> list[dict[str, Any]]:
    """Messengers by stages (people); a messenger with a withheld count hides its credits."""
    out = copy.deepcopy(board)
    hidden = suppress([[m[s] for s in STAGES] for m in out], min_cell)
    for i, m in enumerate(out):
        withheld = [s for j, s in enumerate(STAGES) if (i, j) in hidden]
        for stage in withheld:
            m[stage] = None
        if withheld:
            m["credited"] = None
            m["suppressed"] = [*withheld, "credited"]
    return out


COUNTERS = ("today", "month", "range")


def counters(snapshot: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    """The live counters (today, this month, the selected months) as one table."""
    out = copy.deepcopy(dict(snapshot))
    hidden = suppress([[out[part][s] for s in STAGES] for part in COUNTERS], min_cell)
    for i, part in enumerate(COUNTERS):
        withheld = [s for j, s in enumerate(STAGES) if (i, j) in hidden]
        for stage in withheld:
            out[part][stage] = None
        if withheld:
            out[part]["suppressed"] = withheld
    out["disclosure"] = {"exact": False, "min_cell": min_cell}
    return out


LIFT_ARMS = ("treatment", "control")
#: The figures of a lift row that give its counts back (rates times people).
LIFT_FIGURES = ["rate_treatment", "rate_control", "difference", "ci95", "relative_lift",
                "p_value", "p_holm", "incremental_people"]  # fmt: skip


def lift(result: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    """A holdout's lift (``arms`` and ``stages``, as :mod:`services.experiments.lift` and
    the global holdout give it), safe to share: arms are a table of arm by people and
    stages; a stage with a withheld count withholds its rates, difference, interval and
    p-values (they give the count back); withheld people withhold the sample ratio."""
    out = copy.deepcopy(dict(result))
    if min_cell <= 0:
        return out
    columns = ["people", *STAGES]
    arms = out["arms"]
    hidden = suppress([[arms[a][k] for k in columns] for a in LIFT_ARMS], min_cell)
    for i, arm in enumerate(LIFT_ARMS):
        withheld = [k for j, k in enumerate(columns) if (i, j) in hidden]
        for k in withheld:
            arms[arm][k] = None
        if withheld:
            arms[arm]["suppressed"] = withheld
    people_hidden = any(j == 0 for _, j in hidden)
    for row in out["stages"]:
        if people_hidden or any(j == columns.index(row["stage"]) for _, j in hidden):
            row.update(dict.fromkeys(LIFT_FIGURES))
            row["suppressed"] = list(LIFT_FIGURES)
    if people_hidden and "srm" in out:
        out["srm"].update(observed_share=None, p_value=None)
    out["disclosure"] = {"exact": False, "min_cell": min_cell}
    return out


def decision(found: Mapping[str, Any] | None, min_cell: int) -> dict[str, Any] | None:
    """A content test's decision, safe to share: a variant with a count of 1 to
    ``min_cell`` - 1 people shows neither its counts nor its rate (with a partner, so
    none can be worked out), and the comparisons' p-values go with them."""
    if found is None or min_cell <= 0:
        return None if found is None else dict(found)
    out = copy.deepcopy(dict(found))
    table = [[v["people"] or 0, v["converters"] or 0] for v in out["variants"]]
    hidden = {i for i, _ in suppress(table, min_cell)}
    for i in hidden:
        out["variants"][i].update(people=None, converters=None, rate=None, suppressed=True)
    labels = {out["variants"][i]["variant"] for i in hidden}
    for comparison in out["comparisons"]:
        if {comparison["variant"], comparison["against"]} & labels:
            comparison.update(p_value=None, p_holm=None, suppressed=True)
    out["disclosure"] = {"exact": False, "min_cell": min_cell}
    return out


def campaign(view: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    """A campaign as staff see it, safe to share: its sending progress (people per
    status) and its content test's figures with counts of 1 to ``min_cell`` - 1 withheld."""
    out = copy.deepcopy(dict(view))
    if min_cell <= 0:
        return out
    withhold_counts(out.get("progress") or {}, min_cell)
    test = out.get("content_test")
    if test and test.get("decision"):
        test["decision"] = decision(test["decision"], min_cell)
    return out


def journey(view: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    """A journey as staff see it, safe to share: its statistics (people per state)."""
    out = copy.deepcopy(dict(view))
    if min_cell > 0:
        withhold_counts(out.get("stats") or {}, min_cell)
    return out


def withhold_counts(counts: dict[str, Any], min_cell: int) -> None:
    """One row of counts of people (per status, per state), in place: counts of 1 to
    ``min_cell`` - 1 become None with a partner, so no total or sum gives one back;
    their names are listed under ``suppressed``."""
    names = [k for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)]
    hidden = suppress([[counts[k] for k in names]], min_cell)
    for _, j in hidden:
        counts[names[j]] = None
    if hidden:
        counts["suppressed"] = sorted(names[j] for _, j in hidden)
