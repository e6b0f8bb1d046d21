"""Run-chart signals shared with the analyst role are found on published counts alone
(issue 18, part 3): a withheld cell is a "not useful" observation, so no signal can tell
on which side of the median, or of its neighbours, a withheld count lies."""

from __future__ import annotations

import random
from typing import Any

from services.analytics import sharing
from services.analytics.charts import RuleSet, p_charts, run_chart

PERIODS = [f"2023-{m:02d}" for m in range(1, 13)]


def result(use: list[int], produce: list[int], rules: RuleSet = RuleSet.IHI) -> dict[str, Any]:
    """A stage_metrics answer (exact) over twelve months, 40 aware each month."""
    rows = [{"period": p, "aware": 40, "use": u, "produce": r}
            for p, u, r in zip(PERIODS, use, produce, strict=True)]  # fmt: skip
    return {"period": "month", "baseline": PERIODS[0], "rows": rows,
            "growth": {"aware": 1.0, "use": 1.0, "produce": 1.0},
            **run_chart(PERIODS, rows, rules), "p_charts": p_charts(PERIODS, rows)}  # fmt: skip


def test_a_trend_through_a_withheld_count_is_not_shared():
    use = [30, 28, 26, 24, 22, 4, 25, 24, 26, 25, 24, 26]  # falls to a count of 4
    exact = result(use, [12, 13, 12, 14, 12, 2, 14, 13, 12, 13, 12, 13])
    assert exact["signals"]["use"] == [{"rule": "trend", "from": "2023-01", "to": "2023-06"}]
    shared = sharing.stages(exact, 11)
    withheld = {r["period"] for r in shared["rows"] if "use" in r.get("suppressed", ())}
    assert "2023-06" in withheld
    assert shared["signals"]["use"] == []  # 30..22 is 4 falls: no trend without the 4
    assert shared["signals"]["aware"] == exact["signals"]["aware"]  # nothing withheld there


def test_shared_signals_depend_on_published_counts_only():
    """Two tables that publish the same cells share the same signals, whatever their
    withheld counts are (random tables, both rule sets)."""
    rng = random.Random(18)
    compared = 0
    for _ in range(120):
        rules = rng.choice(list(RuleSet))
        use = [rng.choice([rng.randint(1, 10), rng.randint(11, 39)]) for _ in PERIODS]
        produce = [rng.randint(0, u) for u in use]
        first = sharing.stages(result(use, produce, rules), 11)
        other_use = [rng.randint(max(1, p), 10) if "use" in r.get("suppressed", ()) and p <= 10 else u
                     for u, p, r in zip(use, produce, first["rows"], strict=True)]  # fmt: skip
        second = sharing.stages(result(other_use, produce, rules), 11)
        if second["rows"] != first["rows"] or other_use == use:
            continue  # another pattern of withheld cells: not the same publication
        compared += 1
        assert second["signals"] == first["signals"]
    assert compared > 10
