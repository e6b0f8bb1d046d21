"""Small-cell suppression: nothing small is shown, nothing withheld can be worked out."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain.disclosure import (
    is_small,
    shown,
    suppress,
    suppress_with_margins,
    with_margins,
)

MIN = 11


def constraints(full: list[list[int]]) -> np.ndarray:
    """One equation per row and column of the table with margins: cells - total = 0."""
    m, n = len(full) - 1, len(full[0]) - 1
    index = {(i, j): i * (n + 1) + j for i in range(m + 1) for j in range(n + 1)}
    equations = []
    for i in range(m + 1):
        eq = np.zeros(len(index))
        for j in range(n):
            eq[index[i, j]] = 1
        eq[index[i, n]] = -1
        equations.append(eq)
    for j in range(n + 1):
        eq = np.zeros(len(index))
        for i in range(m):
            eq[index[i, j]] = 1
        eq[index[m, j]] = -1
        equations.append(eq)
    return np.array(equations), index


def derivable(full: list[list[int]], hidden: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Hidden cells whose unit vector lies in the row space of the published constraints
    (restricted to the hidden unknowns): exactly those a linear combination recovers."""
    matrix, index = constraints(full)
    order = sorted(hidden)
    unknowns = matrix[:, [index[c] for c in order]]
    rank = np.linalg.matrix_rank(unknowns)
    found = []
    for k, cell in enumerate(order):
        unit = np.zeros((1, len(order)))
        unit[0, k] = 1
        if np.linalg.matrix_rank(np.vstack([unknowns, unit])) == rank:
            found.append(cell)
    return found


counts = st.one_of(st.integers(0, 14), st.integers(0, 400))
tables = st.integers(1, 6).flatmap(
    lambda rows: st.integers(1, 5).flatmap(
        lambda cols: st.lists(
            st.lists(counts, min_size=cols, max_size=cols), min_size=rows, max_size=rows
        )  # fmt: skip
    )
)


@settings(max_examples=300, deadline=None)
@given(tables)
def test_no_withheld_count_is_recoverable_from_rows_columns_and_totals(table):
    full = with_margins(table)
    hidden = suppress_with_margins(table, MIN)
    small = {(i, j) for i, row in enumerate(full) for j, v in enumerate(row) if is_small(v, MIN)}
    assert small <= hidden
    if hidden:
        assert derivable(full, hidden) == []


def test_a_lone_small_cell_gets_a_partner_in_its_row_and_column():
    table = [[5, 40, 50], [30, 60, 70], [20, 90, 100]]
    hidden = suppress(table, MIN)
    assert (0, 0) in hidden and len(hidden) >= 4  # a rectangle: no line with one withheld
    assert {(0, 1), (1, 0), (1, 1)} <= hidden  # the smallest counts are the partners
    assert derivable(with_margins(table), suppress_with_margins(table, MIN)) == []


def test_zero_is_shown_and_min_cell_zero_turns_suppression_off():
    assert suppress([[0, 50], [60, 70]], MIN) == set()
    assert suppress([[3, 50], [60, 70]], 0) == set()
    assert shown(None, 11) == "<11" and shown(7, 11) == "<11" and shown(12, 11) == "12"
    assert shown(0, 11) == "0"
