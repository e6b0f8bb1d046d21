"""The statistics of experiments and run charts: SciPy and statsmodels live here only.

* :func:`crossings_limit` — Anhøj's lower limit for crossings, the 5% quantile of
  Binomial(N - 1, 0.5) (Anhøj & Olesen, PLoS One 2014).
* :func:`lift` — a holdout's lift, analysed as assigned (intention to treat): per stage
  the two rates, their difference with a 95% Newcombe hybrid-score interval
  (Newcombe, Stat Med 1998;17:873-890, method 10), the relative lift, a two-sided
  p-value (pooled two-proportion z-test; Fisher's exact test when any expected cell is
  below 5), Holm-adjusted p-values across the stages, and the incremental people.
* :func:`choose_variant` — the A/B/n content-test decision: a variant wins only if it
  beats every other at α = 0.05, Holm-adjusted; otherwise the first, "no clear winner".
* :func:`sample_ratio` — the sample-ratio-mismatch check: a chi-square goodness-of-fit
  test of the arm sizes against the configured share, flagged when p < 0.001.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

__all__ = [
    "SRM_ALPHA",
    "Arm",
    "choose_variant",
    "crossings_limit",
    "lift",
    "sample_ratio",
    "stage_lift",
]

SRM_ALPHA = 0.001
FISHER_BELOW = 5.0  # an expected cell below this: Fisher's exact test, not the z-test


@dataclass(frozen=True)
class Arm:
    """One arm at one stage: people assigned and those who converted."""

    people: int
    converters: int

    @property
    def rate(self) -> float | None:
        return self.converters / self.people if self.people else None


def crossings_limit(useful: int) -> int:
    """Fewer crossings than this among ``useful`` observations is an Anhøj signal."""
    if useful < 2:
        return 0
    return int(scipy_stats.binom.ppf(0.05, useful - 1, 0.5))


def stage_lift(treatment: Arm, control: Arm) -> dict[str, float | list[float] | None]:
    """Rates, difference with its 95% interval, relative lift and p-value for one stage."""
    if not treatment.people or not control.people:
        return dict.fromkeys(
            ["rate_treatment", "rate_control", "difference", "ci95", "relative_lift", "p_value"]
        ) | {"rate_treatment": treatment.rate, "rate_control": control.rate}
    rt, rc = treatment.rate or 0.0, control.rate or 0.0
    low, high = confint_proportions_2indep(
        treatment.converters, treatment.people, control.converters, control.people,
        method="newcomb", compare="diff", alpha=0.05,
    )  # fmt: skip
    return {
        "rate_treatment": rt,
        "rate_control": rc,
        "difference": rt - rc,
        "ci95": [float(low), float(high)],
        "relative_lift": (rt - rc) / rc if rc else None,
        "p_value": _p_value(treatment, control),
    }


def _p_value(treatment: Arm, control: Arm) -> float:
    table = [
        [treatment.converters, treatment.people - treatment.converters],
        [control.converters, control.people - control.converters],
    ]
    total = treatment.people + control.people
    columns = [table[0][0] + table[1][0], table[0][1] + table[1][1]]
    expected = [row * col / total for row in (treatment.people, control.people) for col in columns]
    if min(expected) < FISHER_BELOW:
        return float(scipy_stats.fisher_exact(table, alternative="two-sided")[1])
    _, p = proportions_ztest(
        [treatment.converters, control.converters], [treatment.people, control.people]
    )
    return float(p)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values; ``None`` stays ``None`` and is not counted."""
    known = [p for p in p_values if p is not None and not math.isnan(p)]
    if not known:
        return [None] * len(p_values)
    adjusted = iter(multipletests(known, method="holm")[1])
    return [None if p is None or math.isnan(p) else float(next(adjusted)) for p in p_values]


def lift(
    stages: Sequence[str], treatment: dict[str, Arm], control: dict[str, Arm]
) -> list[dict[str, object]]:
    """One row per stage (in the given order), Holm-adjusted across them."""
    rows: list[dict[str, object]] = [
        {"stage": s, **stage_lift(treatment[s], control[s])} for s in stages
    ]
    adjusted = holm([row["p_value"] for row in rows])  # type: ignore[misc]
    for row, p_holm, stage in zip(rows, adjusted, stages, strict=True):
        row["p_holm"] = p_holm
        difference = row["difference"]
        people = treatment[stage].people
        row["incremental_people"] = (
            None if difference is None else float(difference) * people  # type: ignore[arg-type]
        )
    return rows


def sample_ratio(treatment: int, control: int, expected_share: float) -> dict[str, object]:
    """Observed control share against ``expected_share``; flag when p < 0.001."""
    total = treatment + control
    if total == 0:
        return {"expected_share": expected_share, "observed_share": None,
                "p_value": None, "flag": False}  # fmt: skip
    expected = [total * (1 - expected_share), total * expected_share]
    p = float(scipy_stats.chisquare([treatment, control], f_exp=expected)[1])
    return {
        "expected_share": expected_share,
        "observed_share": control / total,
        "p_value": p,
        "flag": p < SRM_ALPHA,
    }


def choose_variant(variants: Sequence[Arm], alpha: float = 0.05) -> dict[str, object]:
    """A/B/n decision: the best variant wins only if it beats every other at ``alpha``,
    Holm-adjusted over its comparisons; otherwise the first variant, "no clear winner".

    ``variants`` are in the campaign's order (people who got each, converters on the
    decision metric fixed in advance).
    """
    if len(variants) < 2:
        raise ValueError("a content test needs at least two variants")
    rates = [v.rate or 0.0 for v in variants]
    best = max(range(len(variants)), key=lambda i: (rates[i], -i))
    others = [i for i in range(len(variants)) if i != best]
    raw = [_p_value(variants[best], variants[i]) for i in others]
    adjusted = holm(raw)
    beats = all(rates[best] > rates[i] and p is not None and p < alpha
                for i, p in zip(others, adjusted, strict=True))  # fmt: skip
    return {
        "winner": best if beats else 0,
        "clear_winner": beats,
        "rates": rates,
        "comparisons": [
            {"variant": best, "against": i, "p_value": p, "p_holm": ph}
            for i, p, ph in zip(others, raw, adjusted, strict=True)
        ],
    }
