"""The experiment estimator (services/analytics/stats.py), at the estimator level."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from services.analytics.stats import (
    Arm,
    choose_variant,
    crossings_limit,
    holm,
    lift,
    sample_ratio,
    stage_lift,
)

STAGES = ["aware", "use", "produce"]


def test_a_known_effect_is_found_with_its_size() -> None:
    # 5,000 eligible people, 20% holdout, use 10% -> 14%: 4,000 treated (560 use),
    # 1,000 controls (100 use).
    row = stage_lift(Arm(4000, 560), Arm(1000, 100))
    low, high = row["ci95"]
    assert low <= 0.04 <= high and low > 0
    assert row["difference"] == pytest.approx(0.04)
    assert row["relative_lift"] == pytest.approx(0.4)
    assert row["p_value"] < 0.01


def test_null_intervals_cover_zero_in_at_least_94_percent_of_200_seeded_runs() -> None:
    rng = np.random.default_rng(20170814)
    covered = 0
    for _ in range(200):
        treated, controls = int(rng.binomial(4000, 0.1)), int(rng.binomial(1000, 0.1))
        low, high = stage_lift(Arm(4000, treated), Arm(1000, controls))["ci95"]
        covered += low <= 0 <= high
    assert covered >= 188  # 94% of 200


def test_small_cells_use_fishers_exact_test() -> None:
    # expected converters in the control arm: 4 * 10 / 50 < 5 -> Fisher, not z.
    row = stage_lift(Arm(40, 4), Arm(10, 0))
    assert row["p_value"] == pytest.approx(scipy_stats.fisher_exact([[4, 36], [0, 10]])[1])
    assert row["relative_lift"] is None  # no control converted: no ratio


def test_large_cells_use_the_pooled_z_test() -> None:
    x1, n1, x2, n2 = 560, 4000, 100, 1000
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    row = stage_lift(Arm(n1, x1), Arm(n2, x2))
    assert row["p_value"] == pytest.approx(2 * scipy_stats.norm.sf(abs(z)))


def test_holm_across_the_stages_and_incremental_people() -> None:
    treatment = {"aware": Arm(4000, 2000), "use": Arm(4000, 560), "produce": Arm(4000, 40)}
    control = {"aware": Arm(1000, 500), "use": Arm(1000, 100), "produce": Arm(1000, 10)}
    rows = lift(STAGES, treatment, control)
    raw = [r["p_value"] for r in rows]
    # Holm by hand: the k-th smallest of m p-values times (m - k + 1), kept monotone.
    order = sorted(range(3), key=raw.__getitem__)
    by_hand, running = [0.0] * 3, 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (3 - k) * raw[i]))
        by_hand[i] = running
    assert [r["p_holm"] for r in rows] == pytest.approx(by_hand)
    use = rows[1]
    assert use["incremental_people"] == pytest.approx(0.04 * 4000)
    assert holm([None, 0.01]) == [None, 0.01]


def test_an_empty_arm_has_no_estimate() -> None:
    row = stage_lift(Arm(10, 1), Arm(0, 0))
    assert row["difference"] is None and row["ci95"] is None and row["rate_treatment"] == 0.1


def test_sample_ratio_mismatch() -> None:
    assert not sample_ratio(4000, 1000, 0.2)["flag"]
    assert sample_ratio(4000, 1000, 0.2)["observed_share"] == 0.2
    broken = sample_ratio(3800, 1200, 0.2)  # 200 too many controls out of 5,000
    assert broken["flag"] and broken["p_value"] < 0.001


def test_crossings_limit_matches_anhoej_and_olesen_table() -> None:
    assert [crossings_limit(n) for n in (10, 20, 24, 30)] == [2, 6, 8, 10]


def test_a_broken_assignment_raises_the_srm_flag() -> None:
    from services.domain.holdouts import CONTROL, arm_of, assignment_unit

    key = b"srm-test-key-0123456789abcdef"
    units = [assignment_unit(key, "campaign:c1", f"p{i}") for i in range(5000)]
    right = [arm_of(u, 0.2) for u in units]
    # Broken: controls whose send failed are dropped from the analysis (a third of them).
    broken = [a for i, a in enumerate(right) if not (a == CONTROL and i % 3 == 0)]
    for arms, flagged in ((right, False), (broken, True)):
        controls = arms.count(CONTROL)
        assert sample_ratio(len(arms) - controls, controls, 0.2)["flag"] is flagged


def test_a_content_test_picks_the_variant_with_a_real_effect() -> None:
    # Three subject lines, 1,000 people each; B truly converts 14% against 10%.
    rng = np.random.default_rng(17)
    rates = [0.10, 0.14, 0.10]
    variants = [Arm(1000, int(rng.binomial(1000, r))) for r in rates]
    decision = choose_variant(variants)
    assert decision["clear_winner"] is True and decision["winner"] == 1
    assert len(decision["comparisons"]) == 2


def test_equal_variants_give_no_clear_winner_and_the_first_is_used() -> None:
    rng = np.random.default_rng(18)
    unclear = 0
    for _ in range(20):
        variants = [Arm(1000, int(rng.binomial(1000, 0.1))) for _ in range(3)]
        decision = choose_variant(variants)
        if not decision["clear_winner"]:
            unclear += 1
            assert decision["winner"] == 0
    assert unclear >= 18  # a false winner needs two Holm-adjusted wins at 5%
