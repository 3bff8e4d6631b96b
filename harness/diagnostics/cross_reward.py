"""The cross-reward matrix: every row optimised for a reward (a selector's or a fine-tune's proxy)
judged by every other reward, as paired Δ against the row's comparison row — rows "optimised for X",
columns "judged by Y". The proxy's own cells (the diagonal) say how far the optimisation moved what
it optimised; the rest say whether held-out verifiers agree (Gao et al. 2022 call the held-out ones
gold). A spec with one proxy has no matrix.

Which reward a row is optimised for is read on the artifact graph, whatever method built it: the
row's proxy scorers (harness.diagnostics.proxy_values.proxy_scorer_nodes: the `scorer` of every
`scores` node that chose or trained its samples — RM@K's `scorer`, the scorer that picked a
fine-tune's data), named by their spec names. The judges are the table's per-sample metric columns
(their units are per-prompt; set metrics such as FID have no per-sample reward and stay in the
table) and every proxy scorer that is not the same model as one of those columns (same weights and
convention: harness.diagnostics.proxy_values.scorer_identity).

Δs: a column's Δ is the table's own (the results' pooled cell with several seeds, else the seed's),
so the matrix never disagrees with the table. A scorer judge's Δ is computed the way the runner
computes a cell's (harness.engine.runner): per seed the paired difference of the judge's per-sample
scores over prompts (harness.stats.paired.difference), then harness.stats.twolevel.row_difference —
with several seeds and a trained row, comparison row or judge (a GAN-RM judge is retrained per
seed), the t interval across the per-seed Δs centred on the pooled Δ; one seed of a trained one,
conditional on the trained models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ganrm_bench.harness.diagnostics.proxy_values import proxy_scorer_nodes, scorer_identity, scorer_scores
from ganrm_bench.harness.engine.cells import comparison_rows
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.stats.paired import Difference, Units, difference
from ganrm_bench.harness.stats.twolevel import row_difference

COLUMNS = ["row", "row_label", "optimised_for", "judge", "judge_label", "judge_kind", "own", "direction", "compare_to",
           "seeds", "delta", "delta_ci_low", "delta_ci_high", "p_value", "delta_basis", "delta_method"]


@dataclass(frozen=True)
class Judge:
    """A column of the matrix: a table column (kind "column") or a proxy scorer (kind "scorer")."""

    name: str  # the column, or the scorer's spec name
    label: str
    kind: str
    direction: str = "higher"


def row_proxies(row_graphs: dict[int, dict[str, Node]], rows: list[str]) -> dict[str, list[str]]:
    """row -> the spec names of the scorers it is optimised for (its first seed's graph), for the
    rows that have any."""
    out: dict[str, list[str]] = {}
    for seed in sorted(row_graphs):
        for row in rows:
            samples = row_graphs[seed].get(row)
            if row not in out and samples is not None:
                out[row] = [s.label for s in proxy_scorer_nodes(samples)]
    return {r: p for r, p in out.items() if p}


def _scorer_nodes(row_graphs: dict[int, dict[str, Node]]) -> dict[int, dict[str, Node]]:
    """seed -> proxy scorer name -> its node (a trained scorer is another node each seed)."""
    return {seed: {s.label: s for samples in rows.values() for s in proxy_scorer_nodes(samples)}
            for seed, rows in row_graphs.items()}


def judges(spec: Any, row_graphs: dict[int, dict[str, Node]], proxies: dict[str, list[str]], cells: list[Any],
           units: pd.DataFrame | None, directions: dict[str, str]) -> list[Judge]:
    """The table's per-sample columns, then the proxies that are not one of those columns."""
    per_sample = set()
    if units is not None and not units.empty:
        per_sample = {str(c) for c, k in units.drop_duplicates("column")[["column", "kind"]].itertuples(index=False) if k == "prompts"}
    columns = [c for c in (spec.table.columns or []) if c in per_sample and c in directions]
    out = [Judge(c, _label(spec, c), "column", directions[c]) for c in columns]
    column_ids = {scorer_identity(cell.node.params.get("metric")) for cell in cells if cell.column in columns} - {None}
    nodes = _scorer_nodes(row_graphs)
    for name in dict.fromkeys(p for ps in proxies.values() for p in ps):
        node = next((n[name] for n in nodes.values() if name in n), None)
        if node is not None and scorer_identity(node.params.get("scorer")) not in column_ids:
            out.append(Judge(name, name, "scorer"))
    return out


def _label(spec: Any, col: str) -> str:
    entry = spec.metrics.get(col)
    return (entry.label if entry is not None and entry.label else None) or col


def _trained(node: Node | None) -> bool:
    return node is not None and any(n.op.trains for n in node.walk())


def scorer_delta(ev: Any, row_graphs: dict[int, dict[str, Node]], row: str, against: str, judge: str) -> tuple[Difference, str]:
    """(Δ, seeds) of a row vs its comparison row judged by a proxy scorer, by the runner's rule
    (module docstring): per seed a paired difference over prompts, pooled over the seeds' union."""
    nodes = _scorer_nodes(row_graphs)
    per_seed, parts, trained, seeds = [], {"a": [], "b": []}, False, []
    for seed in sorted(row_graphs):
        rows, scorer = row_graphs[seed], nodes[seed].get(judge)
        if scorer is None or row not in rows or against not in rows:
            continue
        trained = trained or _trained(rows[row]) or _trained(rows[against]) or _trained(scorer)
        for side, r in (("a", row), ("b", against)):
            scores, items = scorer_scores(ev, scorer, rows[r])
            parts[side].append((scores, [it.prompt_id or it.key for it in items]))
        (sa, ia), (sb, ib) = parts["a"][-1], parts["b"][-1]
        per_seed.append(difference(Units.from_samples(sa, ia), Units.from_samples(sb, ib),
                                   seed=derive_seed(0, "cross-reward", row, judge, seed)))
        seeds.append(seed)
    pooled = None
    if len(per_seed) > 1:
        a, b = (Units.from_samples(np.concatenate([s for s, _ in parts[k]]), [i for _, ids in parts[k] for i in ids]) for k in "ab")
        pooled = difference(a, b, seed=derive_seed(0, "cross-reward", row, judge, "pooled"))
    return row_difference(per_seed, pooled, trained=trained), "+".join(map(str, seeds))


def _column_cells(results: pd.DataFrame) -> pd.DataFrame:
    """The results' cells whose Δ the table shows: pooled ones with several seeds, else the first seed's."""
    if results.empty:
        return results
    pooled = results[results["scope"] == "pooled"]
    if not pooled.empty:
        return pooled
    seed = results.loc[results["scope"] == "seed", "seed"].min()
    return results[(results["scope"] == "seed") & (results["seed"] == seed)]


def cross_reward_table(spec: Any, ev: Any, row_graphs: dict[int, dict[str, Node]], results: pd.DataFrame,
                       units: pd.DataFrame | None, cells: list[Any], not_heldout: dict[tuple[str, str], str],
                       errors: list[str]) -> pd.DataFrame:
    """`cross_reward.csv`: one line per (row optimised for a proxy, judge), rows in table order;
    empty when fewer than two distinct proxies optimise the table's rows. `own`: the judge is the
    row's proxy (a column computed by it, or the scorer itself)."""
    against = comparison_rows(spec)
    proxies = row_proxies(row_graphs, [r for r in spec.table.rows if r in against])
    if len({p for ps in proxies.values() for p in ps}) < 2:
        return pd.DataFrame()
    directions = {str(c): str(d) for c, d in results.drop_duplicates("column")[["column", "direction"]].itertuples(index=False)} \
        if not results.empty else {}
    table_cells = _column_cells(results).set_index(["row", "column"]) if not results.empty else None
    lines = []
    for judge in judges(spec, row_graphs, proxies, cells, units, directions):
        for row, names in proxies.items():
            base = {"row": row, "row_label": spec.row_name(row), "optimised_for": "+".join(names), "judge": judge.name,
                    "judge_label": judge.label, "judge_kind": judge.kind, "direction": judge.direction, "compare_to": against[row]}
            try:
                if judge.kind == "column":
                    lines.append({**base, "own": (row, judge.name) in not_heldout, **_column_line(table_cells, row, judge.name)})
                else:
                    d, seeds = scorer_delta(ev, row_graphs, row, against[row], judge.name)
                    lines.append({**base, "own": judge.name in names, "seeds": seeds, **_difference_line(d)})
            except Exception as exc:  # a matrix cell is a report, never a reason to fail the run
                errors.append(f"cross-reward {row} judged by {judge.name}: {type(exc).__name__}: {exc}")
    return pd.DataFrame(lines, columns=COLUMNS) if lines else pd.DataFrame()


def _column_line(table_cells: pd.DataFrame | None, row: str, column: str) -> dict[str, Any]:
    if table_cells is None or (row, column) not in table_cells.index:
        return {"delta": math.nan, "delta_ci_low": math.nan, "delta_ci_high": math.nan, "p_value": math.nan}
    r = table_cells.loc[(row, column)]
    if isinstance(r, pd.DataFrame):
        r = r.iloc[0]
    return {"seeds": r["seeds"], **{k: r[k] for k in ("delta", "delta_ci_low", "delta_ci_high", "p_value", "delta_basis", "delta_method")}}


def _difference_line(d: Difference) -> dict[str, Any]:
    return {"delta": d.estimate, "delta_ci_low": d.ci_low, "delta_ci_high": d.ci_high, "p_value": d.p_value,
            "delta_basis": d.basis, "delta_method": d.method}
