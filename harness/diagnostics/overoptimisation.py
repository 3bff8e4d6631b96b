"""Over-optimisation curves (Gao et al. 2022, arXiv 2210.10760): the proxy reward that chose the
samples and every held-out ("gold") metric column against d = √KL(π‖π₀), so one sees *where* gold
stops following the proxy, not just whether a row's end point is worse (the monitor's flags).

Best-of-n rows are found on the artifact graph, whatever method built them: a row whose samples are
`select(argmax)` over a `pool` of n samples per prompt, scored by a proxy, is best-of-n with the
exact KL log n − (n−1)/n (harness.stats.kl); a row that is a one-sample pool of the same generator
and prompts is n = 1 (KL 0). Rows sharing generator, prompts and proxy form one curve; a curve needs
MIN_POINTS distinct n. Per curve, metric and seed, Gao's form R(d) = d(α − βd) is fitted by least
squares (harness.stats.gao_forms) and the observed best n (the "gold peak") is reported. Rows along
one fine-tune's training (harness.diagnostics.training_curves) are curves over the step, with their
observed peak and the fine-tune's trajectory KL where its op estimates one; with the KL, Gao's RL
form R(d) = d(α − β log d) is fitted against it (without, there is no d to fit against).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ganrm_bench.harness.diagnostics.curve_rows import add_point, finished
from ganrm_bench.harness.diagnostics.proxy_values import prompt_units, scorer_scores
from ganrm_bench.harness.diagnostics.training_curves import TrainingCurve, training_curves
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.stats.gao_forms import fit_best_of_n, fit_rl, n_for_kl
from ganrm_bench.harness.stats.kl import best_of_n_kl
from ganrm_bench.harness.stats.paired import mean_interval

AXES = ("n", "step")  # the x of a best-of-n curve, of a curve along training
MIN_POINTS = 3  # distinct n (or steps) on a curve: a fitted two-parameter form through r0 needs two more points
PROXY = "proxy"  # the metric name of the proxy's lines in the fits table


@dataclass(frozen=True)
class BestOfN:
    """What makes a row best-of-n: n, the proxy scorer (None: a one-sample row) and the pool's source."""

    n: int
    scorer: Node | None
    source: tuple[str, str]  # (generator key, prompts key) of the pool


def best_of_n(samples: Node) -> BestOfN | None:
    """The best-of-n reading of a row's samples node, or None when it is something else (a rank,
    a fine-tune, a search): only those rows have the closed-form KL."""
    if samples.op.name == "pool" and int(samples.params.get("k", 0)) == 1:
        return BestOfN(1, None, _source(samples))
    if samples.op.name != "select" or samples.params.get("rule") != "argmax":
        return None
    pool, scores = samples.inputs.get("pool"), samples.inputs.get("scores")
    if pool is None or scores is None or pool.op.name != "pool" or scores.op.name != "scores":
        return None
    n = int(samples.params.get("k") or pool.params["k"])
    return BestOfN(min(n, int(pool.params["k"])), scores.inputs["scorer"], _source(pool))


def _source(pool: Node) -> tuple[str, str]:
    return pool.inputs["generator"].key, pool.inputs["prompts"].key


@dataclass
class Curve:
    """Best-of-n rows of one generator, prompt set and proxy scorer: row -> n."""

    scorer: Node
    rows: dict[str, int] = field(default_factory=dict)
    axis = "n"

    @property
    def method(self) -> str:
        return f"best-of-n by {self.scorer.label}"

    def point(self, n: int, ev: Any = None, row: str | None = None) -> dict[str, Any]:
        kl = best_of_n_kl(n)
        return {"n": n, "kl": kl, "sqrt_kl": math.sqrt(kl), "kl_estimator": "best-of-n: log n − (n−1)/n"}


def best_of_n_curves(rows: dict[str, Node]) -> list[Curve]:
    """The curves among one seed's rows (row -> samples node), in row order; a one-sample row joins
    every curve of its generator and prompts. Rows of equal n keep the first."""
    read = {row: b for row, node in rows.items() if (b := best_of_n(node)) is not None}
    curves: dict[tuple, Curve] = {}
    for row, b in read.items():
        if b.scorer is not None:
            add_point(curves.setdefault((b.source, b.scorer.key), Curve(b.scorer)), row, b.n)
    for (source, _), curve in curves.items():
        for row, b in read.items():
            if b.scorer is None and b.source == source:
                add_point(curve, row, b.n)
    return finished(curves.values(), MIN_POINTS)


def monitor_nodes(rows: dict[str, Node]) -> list[Node]:
    """The artifacts the monitor pass computes for one seed's rows (row -> samples node) beyond the
    table's: each tuned point's KL estimate on a curve along training that has one for every tuned
    point (the rule of TrainingCurve.point), so that `plan` lists and counts them."""
    out: dict[str, Node] = {}
    for curve in training_curves(rows, MIN_POINTS):
        tuned = [r for r, s in curve.rows.items() if s > 0]
        if tuned and all(r in curve.divergences for r in tuned):
            out.update({curve.divergences[r].key: curve.divergences[r] for r in tuned})
    return list(out.values())


def curve_lines(ev: Any, seed: int, curve: Curve | TrainingCurve, rows: dict[str, Node], results: pd.DataFrame,
                columns: list[str], diversity: str | None = None) -> list[dict[str, Any]]:
    """One line per row of a curve: n or step, KL, √KL, the proxy's mean [CI] on the row's samples
    (the monitor's interval: bootstrap over prompts), each column's value [CI] from the results, and
    `diversity` [CI]: the value of the table's (first) diversity column, named in `diversity_metric`."""
    cells = results[(results["seed"] == seed) & (results["scope"] == "seed")].set_index(["row", "column"]) if not results.empty else None
    lines = []
    for row, x in curve.rows.items():
        scores, items = scorer_scores(ev, curve.scorer, rows[row])
        units = prompt_units(scores, items)
        ci = mean_interval(units, seed=derive_seed(0, "proxy", row, curve.scorer.key))
        line: dict[str, Any] = {"method": curve.method, "proxy": curve.scorer.label, "seed": seed, "row": row, **curve.point(x, ev, row),
                                "proxy_mean": units.value, "proxy_ci_low": ci.ci_low, "proxy_ci_high": ci.ci_high}
        for col in columns:
            r = cells.loc[(row, col)] if cells is not None and (row, col) in cells.index else None
            if isinstance(r, pd.DataFrame):
                r = r.iloc[0]
            vals = (r["value"], r["ci_low"], r["ci_high"]) if r is not None else (math.nan,) * 3
            line.update({col: float(vals[0]), f"{col}_ci_low": float(vals[1]), f"{col}_ci_high": float(vals[2])})
        if diversity is not None and diversity in columns:
            line.update({"diversity_metric": diversity, **{f"diversity{s}": line[f"{diversity}{s}"] for s in ("", "_ci_low", "_ci_high")}})
        lines.append(line)
    return lines


def overoptimisation_table(spec: Any, ev: Any, row_graphs: dict[int, dict[str, Node]], results: pd.DataFrame,
                           errors: list[str], diversity: set[str] = frozenset()) -> pd.DataFrame:
    """`overoptimisation.csv`: every curve's lines over every seed (empty when the spec has none):
    best-of-n curves (column `n`), then curves along training (column `step`); `diversity` columns
    when the table has a diversity metric (the first of `diversity` in the table's order)."""
    columns = list(spec.table.columns or [])
    diversity_col = next((c for c in columns if c in diversity), None)
    lines: list[dict[str, Any]] = []
    for seed, rows in row_graphs.items():
        for curve in [*best_of_n_curves(rows), *training_curves(rows, MIN_POINTS)]:
            try:
                lines += curve_lines(ev, seed, curve, rows, results, columns, diversity_col)
            except Exception as exc:  # a curve is a report, never a reason to fail the run
                errors.append(f"over-optimisation curve {curve.method} (seed {seed}): {type(exc).__name__}: {exc}")
    table = pd.DataFrame(lines)
    for axis in AXES:
        if axis in table:
            table[axis] = table[axis].astype("Int64")  # whole numbers, empty where the other axis applies
    return table


def curve_axis(g: pd.DataFrame) -> str:
    """The x of one curve's lines: "step" along training, else "n" (best-of-n)."""
    return "step" if "step" in g and g["step"].notna().all() else "n"


def column_directions(results: pd.DataFrame) -> dict[str, str]:
    """column -> "higher" / "lower" (which way is better), from the results."""
    if results.empty:
        return {}
    return {str(c): str(d) for c, d in results.drop_duplicates("column")[["column", "direction"]].itertuples(index=False)}


def curve_fits(table: pd.DataFrame, directions: dict[str, str], heldout: dict[tuple[str, str], bool] | None = None) -> pd.DataFrame:
    """`overoptimisation_fits.csv`: per curve, seed and metric (the proxy, then each column), Gao's
    form fitted (`form`: best-of-n's, or RL's along training with a KL; α, β, r0 = the value at d = 0),
    the fitted best d (and its n for best-of-n), and the observed
    peak: the n whose value is best for the metric's direction. `heldout`: (row, column) -> False for
    cells judged by the row's own selector (those columns are no gold; marked, still fitted)."""
    if table.empty:
        return pd.DataFrame()
    out = []
    metrics = [PROXY] + [c for c in directions if c in table.columns]
    for (method, seed), g in table.groupby(["method", "seed"], sort=False):
        axis = curve_axis(g)
        g = g.sort_values(axis)
        for metric in metrics:
            col = "proxy_mean" if metric == PROXY else metric
            direction = "higher" if metric == PROXY else directions[metric]
            out.append(_fit_line(method, seed, metric, direction, g, col, heldout or {}, axis))
    return pd.DataFrame(out)


def _fit_line(method: str, seed: int, metric: str, direction: str, g: pd.DataFrame, col: str,
              heldout: dict[tuple[str, str], bool], axis: str = "n") -> dict[str, Any]:
    d, v = g["sqrt_kl"].to_numpy(float), g[col].to_numpy(float)
    line: dict[str, Any] = {"method": method, "seed": seed, "metric": metric, "direction": direction,
                            "gold": metric != PROXY and all(heldout.get((r, metric), True) for r in g["row"]),
                            "form": "", "alpha": math.nan, "beta": math.nan, "r0": math.nan, "rss": math.nan,
                            "fit_best_sqrt_kl": math.nan, "fit_best_n": math.nan}
    ok = np.isfinite(v)
    if ok.any():
        best = int(np.nanargmax(v) if direction == "higher" else np.nanargmin(v))
        line.update({f"peak_{axis}": int(g[axis].iloc[best]), "peak_sqrt_kl": float(d[best]), "peak_value": float(v[best]),
                     "peak_row": str(g["row"].iloc[best]), f"final_{axis}": int(g[axis].iloc[-1]), "final_value": float(v[-1])})
    form = "best-of-n" if axis == "n" else "rl"
    if form == "rl" and not np.isfinite(d).all():  # along training without a KL estimate: the step is no d
        return line
    try:
        fit = (fit_best_of_n if form == "best-of-n" else fit_rl)(d[ok], v[ok])
    except ValueError:
        return line
    best_d = fit.best_d(direction)
    line.update(form=form, alpha=fit.alpha, beta=fit.beta, r0=fit.r0, rss=fit.rss, fit_best_sqrt_kl=best_d,
                fit_best_n=n_for_kl(best_d ** 2) if form == "best-of-n" and math.isfinite(best_d) else math.nan)
    return line
