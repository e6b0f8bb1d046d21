"""Small cells are never published: primary and complementary suppression of count tables.

The rule (CMS cell size suppression policy; PCORnet uses the same number): no count of
people from 1 to ``min_cell - 1`` (default 11, so 1 to 10) is shown in an output meant to
be shared, nor any figure from which such a count can be worked out. Zero is shown.

A table is a grid of counts. Its row totals, column totals and grand total are taken as
published, whether the output shows them or not (a reader may have them from another
slide), so the suppression here is safe in the worst case:

* **primary**: every cell (margins included) from 1 to ``min_cell - 1``;
* **complementary**: the table with its margins, signed so that every line sums to zero,
  is a bipartite graph whose edges are the suppressed cells. A suppressed cell can be
  worked out by a linear combination of the published cells exactly when its edge lies
  on no cycle of that graph (it is a bridge). Each bridge is closed into a cycle by
  suppressing the cheapest rectangle of other cells (the smallest counts), until none is
  left. Adding cells only adds cycles, so the loop ends.

Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

DEFAULT_MIN_CELL = 11

Cell = tuple[int, int]
Node = tuple[str, int]


def is_small(count: float | None, min_cell: int) -> bool:
    """A count of people that is never shown (1 .. min_cell-1); 0 turns the rule off."""
    return min_cell > 0 and count is not None and 0 < count < min_cell


def shown(count: float | None, min_cell: int) -> str:
    """How a suppressed count reads on screen, in CSV and in a PNG: ``<11``."""
    return f"<{min_cell}" if count is None or is_small(count, min_cell) else str(count)


def with_margins(table: Sequence[Sequence[int]]) -> list[list[int]]:
    """The table with a total column at the right and a total row at the bottom."""
    rows = [[*row, sum(row)] for row in table]
    width = len(rows[0]) if rows else 1
    rows.append([sum(row[j] for row in rows) for j in range(width)])
    return rows


def suppress(table: Sequence[Sequence[int]], min_cell: int = DEFAULT_MIN_CELL) -> set[Cell]:
    """The cells of ``table`` (no margins) to withhold so that no small count, in a cell
    or in a margin, can be derived from what is shown plus the margins."""
    return {(i, j) for i, j in suppress_with_margins(table, min_cell)
            if i < len(table) and j < len(table[i])}  # fmt: skip


def suppress_with_margins(
    table: Sequence[Sequence[int]], min_cell: int = DEFAULT_MIN_CELL
) -> set[Cell]:
    """Cells of the table with margins (row ``len(table)`` and the last column are the
    totals) to withhold: every small one, and others until no withheld one is derivable."""
    if min_cell <= 0 or not table or not table[0]:
        return set()
    full = with_margins(table)
    hidden = {
        (i, j) for i, row in enumerate(full) for j, v in enumerate(row) if is_small(v, min_cell)
    }
    while True:
        bridge = next(iter(sorted(bridges(hidden))), None)
        if bridge is None:
            return hidden
        hidden |= _cheapest_cycle(full, hidden, bridge)


def bridges(cells: set[Cell]) -> set[Cell]:
    """The cells that lie on no cycle of the bipartite row-column graph (derivable)."""
    adjacency: dict[Node, list[tuple[Node, Cell]]] = {}
    for i, j in cells:
        adjacency.setdefault(("r", i), []).append((("c", j), (i, j)))
        adjacency.setdefault(("c", j), []).append((("r", i), (i, j)))
    found: set[Cell] = set()
    order: dict[Node, int] = {}
    low: dict[Node, int] = {}
    for root in sorted(adjacency):
        if root not in order:
            _walk(root, adjacency, order, low, found)
    return found


def _walk(
    root: Node,
    adjacency: dict[Node, list[tuple[Node, Cell]]],
    order: dict[Node, int],
    low: dict[Node, int],
    found: set[Cell],
) -> None:
    """Tarjan's bridge search, iterative (tables may be long)."""
    order[root] = low[root] = len(order)
    stack: list[tuple[Node, Cell | None, Iterator[tuple[Node, Cell]]]] = [
        (root, None, iter(adjacency[root]))
    ]
    while stack:
        node, via, edges = stack[-1]
        step = next(edges, None)
        if step is None:
            stack.pop()
            if stack:
                parent = stack[-1][0]
                low[parent] = min(low[parent], low[node])
                if via is not None and low[node] > order[parent]:
                    found.add(via)
            continue
        other, cell = step
        if cell == via:
            continue
        if other in order:
            low[node] = min(low[node], order[other])
        else:
            order[other] = low[other] = len(order)
            stack.append((other, cell, iter(adjacency[other])))


def _cheapest_cycle(full: list[list[int]], hidden: set[Cell], bridge: Cell) -> set[Cell]:
    """The other three corners of the rectangle through ``bridge`` whose not yet hidden
    cells add up to the least (fewest people withheld), preferring cells that are not 0
    (a withheld 0 protects little: stages are nested, so a reader may infer it) and
    interior cells before totals."""
    i, j = bridge
    best: tuple[tuple[int, int, int], set[Cell]] | None = None
    for r in range(len(full)):
        for c in range(len(full[0])):
            if r == i or c == j:
                continue
            corners = {(i, c), (r, j), (r, c)} - hidden
            last_row, last_col = len(full) - 1, len(full[0]) - 1
            margins = sum(1 for a, b in corners if a == last_row or b == last_col)
            zeros = sum(1 for a, b in corners if full[a][b] == 0)
            cost = (zeros, margins, sum(full[a][b] for a, b in corners))
            if best is None or cost < best[0]:
                best = (cost, corners)
    return best[1] if best else set()
