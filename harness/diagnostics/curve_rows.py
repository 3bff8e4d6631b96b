"""Grouping one seed's rows into curves (best-of-n over n, a fine-tune over its steps): shared by
harness.diagnostics.overoptimisation and harness.diagnostics.training_curves, so both keep the first
row at an x, sort by x and drop curves with too few points alike."""

from __future__ import annotations

from typing import Iterable, Protocol, TypeVar


class _Curve(Protocol):
    rows: dict[str, int]  # row -> x (n or step)


C = TypeVar("C", bound=_Curve)


def add_point(curve: _Curve, row: str, x: int) -> None:
    """The row at x, unless the curve has a row there already (the first in table order is kept)."""
    if x not in curve.rows.values():
        curve.rows[row] = x


def finished(curves: Iterable[C], min_points: int) -> list[C]:
    """The curves with at least `min_points` distinct x, each one's rows sorted by x."""
    out = []
    for curve in curves:
        if len(set(curve.rows.values())) >= min_points:
            curve.rows = dict(sorted(curve.rows.items(), key=lambda kv: kv[1]))
            out.append(curve)
    return out
