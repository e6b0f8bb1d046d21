"""A benchmark's figures: :class:`Figure` (a value against the baseline of the same run)
and the table or JSON ``winwin bench`` prints (re-exported by :mod:`services.bench`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Figure", "table", "to_json"]


@dataclass
class Figure:
    """One measured figure: its value, the baseline of the same run, the target."""

    bench: str
    name: str
    value: float
    unit: str
    target: str
    met: bool | None = None
    baseline: float | None = None
    baseline_name: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None


def to_json(figures: list[Figure], failed: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "figures": [asdict(f) | {"ratio": f.ratio} for f in figures],
        "failed": failed or {},
    }


def table(figures: list[Figure], failed: dict[str, str] | None = None) -> str:
    """A plain-text table: bench, figure, value, baseline, ratio, target, met."""
    head = ("bench", "figure", "value", "baseline", "ratio", "target", "met")
    rows = [head]
    for f in figures:
        base = f"{_num(f.baseline)} {f.unit} ({f.baseline_name})" if f.baseline else "-"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        met = {True: "yes", False: "NO", None: "-"}[f.met]
        rows.append((f.bench, f.name, f"{_num(f.value)} {f.unit}", base, ratio, f.target, met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for name, error in (failed or {}).items():
        lines.append(f"{name}: FAILED: {error}")
    return "\n".join(lines)


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"
