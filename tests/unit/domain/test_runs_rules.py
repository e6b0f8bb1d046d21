"""Runs rules worked by hand against the published limits.

Limits: Perla, Provost & Murray, BMJ Qual Saf 2011;20:46-51, Table 1 (too few / too
many runs for 10-60 useful observations); Anhøj & Olesen, PLoS One 2014;9(11):e113825,
Table 1 (longest run > round(log2 N) + 3; crossings < the 5% quantile of
Binomial(N - 1, 0.5)): N = 10 -> longest 6, crossings 2; N = 20 -> 7 and 6;
N = 24 -> 8 and 8; N = 30 -> 8 and 10.
"""

from services.domain.runcharts import median
from services.domain.runs_rules import (
    RUNS_TABLE,
    anhoej_signals,
    crossings,
    longest_run,
    longest_run_limit,
    runs,
    runs_signals,
)


def test_the_published_table_rows_used_below() -> None:
    assert RUNS_TABLE[10] == (3, 9)
    assert RUNS_TABLE[20] == (6, 16)
    assert RUNS_TABLE[24] == (8, 18)
    assert set(RUNS_TABLE) == set(range(10, 61))
    assert all(lo < hi for lo, hi in RUNS_TABLE.values())


def test_counting_runs_skips_points_on_the_median() -> None:
    # Counting as Perla et al. describe: circle each run, skip points on the median.
    # Above/below 5: + + 5 - - + 5 + -  ->  runs ++ | -- | ++ | -  = 4.
    values = [7, 8, 5, 2, 1, 9, 5, 6, 3]
    assert runs(values, 5) == 4
    assert crossings(values, 5) == 3
    assert longest_run(values, 5) == (2, 0, 1)  # three runs of 2: the first wins
    assert longest_run([7, 5, 8, 2], 5) == (2, 0, 2)  # the 5 is skipped, not counted


def test_too_few_runs_ihi() -> None:
    # 20 useful points, 10 below then 10 above the median: 2 runs < 6 (table, N = 20).
    values = [1.0] * 10 + [9.0] * 10
    assert runs_signals(values, median(values)) == [("too_few_runs", 0, 19)]


def test_too_many_runs_ihi() -> None:
    # 20 points alternating about the median: 20 runs > 16 (table, N = 20).
    values = [1.0, 9.0] * 10
    assert runs_signals(values, median(values)) == [("too_many_runs", 0, 19)]


def test_runs_within_the_limits_and_outside_the_table() -> None:
    # 10 useful points in 4 runs: within 3..9.
    values = [1, 1, 9, 9, 9, 1, 1, 1, 9, 9]
    assert runs(values, 5) == 4 and runs_signals(values, 5) == []
    # 8 useful points: the table starts at 10, the rule is not applied.
    assert runs_signals([1, 9] * 4, 5) == []
    # 12 points, 2 on the median: 10 useful, 2 runs < 3 -> too few.
    values = [1, 1, 5, 1, 1, 1, 9, 9, 5, 9, 9, 9]
    assert runs_signals(values, 5) == [("too_few_runs", 0, 11)]


def test_anhoej_limits_match_the_published_table() -> None:
    assert [longest_run_limit(n) for n in (10, 20, 24, 30)] == [6, 7, 8, 8]


def test_anhoej_longest_run_and_few_crossings() -> None:
    # 24 points, 12 ones and 12 nines: median 5, 24 useful points. Sides:
    # - + - (+ x9) - + - - - + - - - - - -  ->  9 runs, 8 crossings (not < 8); the run
    # of 9 above (indices 3..11) is longer than 8 (N = 24).
    values = [1, 9, 1, 9] + [9] * 8 + [1, 9, 1, 1, 1, 9, 1, 1, 1, 1, 1, 1]
    assert median(values) == 5
    assert longest_run(values, 5) == (9, 3, 11)
    assert crossings(values, 5) == 8
    assert anhoej_signals(values, 5, crossings_limit=8) == [("longest_run", 3, 11)]


def test_anhoej_few_crossings_without_a_long_run() -> None:
    # 20 points in runs of 5, 5, 5, 5 about 5: 3 crossings < 6, longest 5 <= 7.
    values = [1] * 5 + [9] * 5 + [1] * 5 + [9] * 5
    assert anhoej_signals(values, 5, crossings_limit=6) == [("few_crossings", 0, 19)]
    # random-looking: 10 crossings, longest 3 -> nothing.
    values = [1, 1, 9, 1, 9, 9, 9, 1, 9, 1, 1, 9, 1, 1, 1, 9, 9, 1, 9, 9]
    assert crossings(values, 5) >= 6
    assert anhoej_signals(values, 5, crossings_limit=6) == []
