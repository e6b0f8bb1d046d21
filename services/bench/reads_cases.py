"""What the reads benchmark times: each read endpoint with its parameters and the oracle
check of its answer, and each figure's target (issue 19, "Reads at scale").

The dashboard's panels are the calls ``templates/web/dashboard.js`` makes on every
refresh: stage metrics with a baseline, attribution by campaign and by channel over the
chosen months, and ``/api/v1/dashboard/panels`` (leaderboard, bot report, stream health).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.bench.network import Network
from services.bench.oracle import Oracle, Rows, same_attribution, same_counts
from services.domain import Model
from services.domain.attribution import DEFAULT_MODEL

Check = Callable[[Any], bool]


@dataclass(frozen=True)
class Case:
    """One timed read: its name, path and query parameters, the oracle check, the target
    (p50 in ms at 1M events, or None when the figure is only reported)."""

    name: str
    path: str
    params: dict[str, Any]
    check: Check
    target_ms: float | None = None


def _rows(expected: Rows, key: str = "key") -> Check:
    return lambda body: same_attribution(body, expected, key)


def _bots(expected: dict[str, int]) -> Check:
    return lambda body: {k: body["bots"][k] for k in expected} == expected


def cases(net: Network, truth: Oracle, campaign: str, other_window: int) -> list[Case]:
    """Every timed read, in order: the first read of ``other_window`` computes it."""
    span = {"from": net.months[0], "to": net.months[-1]}
    found = [
        Case("stages", "/api/v1/metrics/stages", {**span, "period": "month"},
             lambda b: same_counts(b, truth.months)),
        Case("stages campaign", "/api/v1/metrics/stages",
             {**span, "period": "month", "campaign_id": campaign},
             lambda b: same_counts(b, truth.campaign_months)),
    ]  # fmt: skip
    for model in Model:
        found.append(Case(f"attribution {model.value}", "/api/v1/attribution",
                          {"model": model.value}, _rows(truth.attribution[model.value]), 250))  # fmt: skip
    for model in Model:
        found.append(Case(f"attribution {model.value} {other_window}d", "/api/v1/attribution",
                          {"model": model.value, "window_days": other_window},
                          _rows(truth.other_window[model.value]), 100))  # fmt: skip
    found.append(Case("campaign attribution", f"/api/v1/campaigns/{campaign}/attribution", {},
                      _rows(truth.campaign, "period")))  # fmt: skip
    return found + dashboard(span, truth)


def dashboard(span: dict[str, str], truth: Oracle) -> list[Case]:
    """The four calls of one dashboard refresh (default model and window)."""
    credit = {"model": DEFAULT_MODEL.value, **span}
    return [
        Case("dashboard stages", "/api/v1/metrics/stages",
             {**span, "period": "month", "baseline": span["from"]},
             lambda b: same_counts(b, truth.months)),
        Case("dashboard by campaign", "/api/v1/attribution", {**credit, "group_by": "campaign"},
             _rows(truth.in_range["campaign"])),
        Case("dashboard by channel", "/api/v1/attribution", {**credit, "group_by": "channel"},
             _rows(truth.in_range["channel"])),
        Case("dashboard panels", "/api/v1/dashboard/panels", credit, _bots(truth.bots)),
    ]  # fmt: skip
