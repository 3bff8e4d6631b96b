"""The reward-model monitor of a run: report cards of the trained scorers, the over-optimisation
table (`diagnostics.csv`) and the held-out check of metric columns.

Over-optimisation ("reward hacking"): post-training or best-of-K selection pushes the proxy reward
up while held-out quality falls (the failure reported by users of flow_grpo, SRPO, DDPO; RewardDance
argues for watching the reward's variance). For every row whose samples were chosen or trained with
a scorer (a `scores` node in its graph), and every such proxy scorer, a line gives the proxy's mean
on the row's samples with a bootstrap CI over prompts, the level the scorer gives held-out PPD
images (from its report card), the reward variance, the paired Δ of every metric column vs the
comparison row (the results' delta columns), and flags:

- `beyond_ppd`: the row's proxy mean is significantly above the held-out PPD's mean (the 95% CI of
  the unpaired difference is above 0): the generator looks "more PPD than the PPD".
- `proxy_up_heldout_down`: the proxy improved significantly vs the comparison row (paired Δ CI above
  0) while a held-out metric got significantly worse (its Δ CI on the worse side of 0).
- `collapse`: a diversity column (`DIVERSITY_METRICS`) got significantly worse.
- `gold_past_peak`: the row is the last point of an over-optimisation curve and is significantly
  worse than the curve's observed peak on a held-out column (harness.diagnostics.past_peak).

Everything here is best-effort: a failure is recorded (run.json `diagnostics_errors`), never fatal.
"""

from __future__ import annotations

import json
import logging
import math
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganrm_bench.harness.diagnostics.cross_reward import cross_reward_table
from ganrm_bench.harness.diagnostics.overoptimisation import column_directions, curve_fits, overoptimisation_table
from ganrm_bench.harness.diagnostics.pair_cards import add_pair_accuracies
from ganrm_bench.harness.diagnostics.past_peak import flag_past_peak, past_peak_tests
from ganrm_bench.harness.diagnostics.pngs import save_figure
from ganrm_bench.harness.diagnostics.proxy_values import available, prompt_units, proxy_scorer_nodes, scorer_identity, scorer_scores
from ganrm_bench.harness.diagnostics.scorecard import render_cards_markdown
from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cells import build_cells, comparison_rows
from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.runtime.seeds import derive_seed
from ganrm_bench.harness.stats.paired import Difference, Units, difference, mean_interval

log = logging.getLogger("ganrm_bench")

DIVERSITY_METRICS = frozenset({"mini_diversity", "lpips"})  # within-prompt diversity columns (higher = more diverse)


def is_diversity_metric(metric: Any) -> bool:
    """A diversity column: a metric named in DIVERSITY_METRICS, or one declaring `diversity = True`,
    whose higher values mean more diverse (LPIPS in reference mode is a distance, not diversity)."""
    named = getattr(metric, "name", "") in DIVERSITY_METRICS or bool(getattr(metric, "diversity", False))
    return named and getattr(metric, "direction", "higher") == "higher"


@dataclass
class MonitorOutcome:
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> report card
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    not_heldout: dict[tuple[str, str], str] = field(default_factory=dict)  # (row, column) -> the row's own scorer
    errors: list[str] = field(default_factory=list)
    overoptimisation: pd.DataFrame = field(default_factory=pd.DataFrame)  # best-of-n curves (overoptimisation.csv)
    overoptimisation_fits: pd.DataFrame = field(default_factory=pd.DataFrame)  # Gao's form and the peaks per curve
    cross_reward: pd.DataFrame = field(default_factory=pd.DataFrame)  # rows optimised for X judged by Y (cross_reward.csv)


# ---------------------------------------------------------------------------------------------
# Walking a row's graph.


def trained_scorer_nodes(samples: Node) -> list[Node]:
    return [n for n in samples.walk() if n.op.name == "train_scorer"]


def own_scorer_cells(cells: list[Any]) -> dict[tuple[str, str], str]:
    """(row, column) -> scorer label, for the cells whose metric is computed by a scorer (same
    fingerprint) that selected or trained the row: those columns are not held-out evidence."""
    out: dict[tuple[str, str], str] = {}
    for cell in cells:
        metric_id = scorer_identity(cell.node.params.get("metric"))
        if metric_id is None:
            continue
        for s in proxy_scorer_nodes(cell.node.inputs["samples"]):
            if scorer_identity(s.params.get("scorer")) == metric_id:
                out[(cell.row, cell.column)] = s.label
    return out


# ---------------------------------------------------------------------------------------------
# Report cards.


def collect_cards(ev: Any, row_graphs: dict[int, dict[str, Node]], errors: list[str]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Every trained scorer's `report_card()` (duck-typed), as (file name -> card, node key -> card).
    Names: the scorer node's label, suffixed with the seed for seeds after the first."""
    by_name: dict[str, dict] = {}
    by_key: dict[str, dict] = {}
    first = min(row_graphs) if row_graphs else 0
    for seed, rows in row_graphs.items():
        for row, samples in rows.items():
            for n in trained_scorer_nodes(samples):
                if n.key in by_key:
                    if row not in by_key[n.key]["used_by"]:
                        by_key[n.key]["used_by"].append(row)
                    continue
                if not available(ev, n):
                    errors.append(f"report card of {n.label} (seed {seed}): its artifact is not in the store (not retrained for a card)")
                    continue
                try:
                    value = ev.value(n)
                    card = value.report_card() if callable(getattr(value, "report_card", None)) else None
                except Exception as exc:  # a card is a report, never a reason to fail the run
                    errors.append(f"report card of {n.label} (seed {seed}): {type(exc).__name__}: {exc}")
                    continue
                if not card:
                    continue
                name = n.label if seed == first else f"{n.label}-seed{seed}"
                while name in by_name:
                    name += f"-{n.key[:6]}"
                card = {"name": name, "run_seed": seed, "artifact": n.key, **card, "used_by": [row]}
                by_name[name], by_key[n.key] = card, card
    return by_name, by_key


# ---------------------------------------------------------------------------------------------
# The over-optimisation table.


def _worse(direction: str, lo: float, hi: float) -> bool:
    """A held-out Δ's CI lies wholly on the worse side of 0: below it for a higher-is-better column,
    above it for a lower-is-better one (FID, KID)."""
    return bool(hi < 0) if direction == "higher" else bool(lo > 0)


def judge_line(beyond_ppd: Difference | None, proxy_delta: Difference | None, heldout: dict[str, tuple[str, float, float]],
               diversity: set[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(flags, worse held-out columns) of one line, decided on intervals, never point estimates:
    `beyond_ppd` when the proxy's Δ vs the held-out PPD has its CI above 0; `proxy_up_heldout_down`
    when the proxy's paired Δ vs the comparison row has its CI above 0 and some held-out column's
    Δ CI (column -> (direction, ci_low, ci_high)) is wholly on its worse side; `collapse` when such
    a column is a diversity column."""
    flags = ["beyond_ppd"] if beyond_ppd is not None and beyond_ppd.ci_low > 0 else []
    proxy_up = proxy_delta is not None and bool(proxy_delta.ci_low > 0)
    worse = [col for col, (direction, lo, hi) in heldout.items() if _worse(direction, lo, hi)]
    if proxy_up and worse:
        flags.append("proxy_up_heldout_down")
    if any(col in diversity for col in worse):
        flags.append("collapse")
    return flags, worse


def diagnostics_table(spec: Any, ctx: Any, ev: Any, row_graphs: dict[int, dict[str, Node]], results: pd.DataFrame,
                      cards_by_key: dict[str, dict], not_heldout: dict[tuple[str, str], str], errors: list[str],
                      diversity: set[str] = frozenset()) -> pd.DataFrame:
    against = comparison_rows(spec)
    columns = list(spec.table.columns or [])
    lines = []
    for seed, rows in row_graphs.items():
        res = results[(results["seed"] == seed)].set_index(["row", "column"]) if not results.empty else None
        for row, samples in rows.items():
            for scorer in proxy_scorer_nodes(samples):
                try:
                    lines.append(_line(ev, seed, row, samples, scorer, rows.get(against.get(row, "")), against.get(row),
                                       res, columns, cards_by_key.get(scorer.key), not_heldout, diversity))
                except Exception as exc:
                    log.debug("diagnostics line failed", exc_info=True)
                    errors.append(f"diagnostics {row} × {scorer.label} (seed {seed}): {type(exc).__name__}: {exc}")
    return pd.DataFrame(lines)


def _line(ev: Any, seed: int, row: str, samples: Node, scorer: Node, base_samples: Node | None, base_row: str | None,
          res: pd.DataFrame | None, columns: list[str], card: dict | None, not_heldout: dict, diversity: set[str]) -> dict[str, Any]:
    """One line of the table: the proxy on the row's samples, vs the PPD level and the comparison row."""
    scores, items = scorer_scores(ev, scorer, samples)
    units = prompt_units(scores, items)
    ci = mean_interval(units, seed=derive_seed(0, "proxy", row, scorer.key))
    line: dict[str, Any] = {
        "row": row, "scorer": scorer.label, "seed": seed, "proxy_mean": units.value, "proxy_ci_low": ci.ci_low,
        "proxy_ci_high": ci.ci_high, "ppd_proxy_mean": math.nan, "beyond_ppd_ci_low": math.nan,
        "proxy_var": float(np.var(scores, ddof=1)) if scores.size > 1 else math.nan, "compare_to": base_row,
        "proxy_delta": math.nan, "proxy_delta_ci_low": math.nan, "proxy_delta_ci_high": math.nan,
    }
    beyond = proxy_delta = None
    ppd = ((card or {}).get("heldout_scores") or {}).get("ppd")
    if ppd:
        ppd_units = Units.from_samples(ppd, [f"ppd{i}" for i in range(len(ppd))])
        beyond = difference(units, ppd_units, seed=derive_seed(0, "beyond-ppd", row, scorer.key))
        line.update(ppd_proxy_mean=ppd_units.value, beyond_ppd_ci_low=beyond.ci_low)
    if base_samples is not None:
        base_scores, base_items = scorer_scores(ev, scorer, base_samples)
        proxy_delta = difference(units, prompt_units(base_scores, base_items), seed=derive_seed(0, "proxy-delta", row, scorer.key))
        line.update(proxy_delta=proxy_delta.estimate, proxy_delta_ci_low=proxy_delta.ci_low, proxy_delta_ci_high=proxy_delta.ci_high)
    heldout: dict[str, tuple[str, float, float]] = {}
    for col in columns:
        r = res.loc[(row, col)] if res is not None and (row, col) in res.index else None
        if isinstance(r, pd.DataFrame):
            r = r.iloc[0]
        vals = (r["delta"], r["delta_ci_low"], r["delta_ci_high"]) if r is not None else (math.nan,) * 3
        line.update({f"delta_{col}": vals[0], f"delta_{col}_ci_low": vals[1], f"delta_{col}_ci_high": vals[2]})
        if r is None or not all(math.isfinite(float(v)) for v in vals):
            continue
        if (row, col) in not_heldout:
            line[f"delta_{col}_heldout"] = False
            continue
        heldout[col] = (str(r["direction"]), float(vals[1]), float(vals[2]))
    flags, worse = judge_line(beyond, proxy_delta, heldout, diversity)
    line.update(worse_heldout=";".join(worse), flags=";".join(flags))
    return line


# ---------------------------------------------------------------------------------------------
# The whole monitor, and its Markdown.


def monitor_run(spec: Any, ctx: Any, ev: Any, row_graphs: dict[int, dict[str, Node]], results: pd.DataFrame,
                cells: list[Any], units: pd.DataFrame | None = None) -> MonitorOutcome:
    """Cards, diagnostics, held-out marks, over-optimisation curves (harness.diagnostics.overoptimisation),
    the `gold_past_peak` test on the results' `units` (harness.diagnostics.past_peak) and the
    cross-reward matrix (harness.diagnostics.cross_reward); every failure recorded in `errors`, none raised."""
    out = MonitorOutcome()
    try:
        out.not_heldout = own_scorer_cells(cells)
    except Exception as exc:
        out.errors.append(f"held-out check: {type(exc).__name__}: {exc}")
    by_key: dict[str, dict] = {}
    try:
        out.cards, by_key = collect_cards(ev, row_graphs, out.errors)
        add_pair_accuracies(spec, ctx, ev, row_graphs, by_key, out.errors)  # cards gain agreement with people
    except Exception as exc:
        out.errors.append(f"report cards: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
    diversity = {c.column for c in cells if is_diversity_metric(c.node.obj)}
    try:
        out.diagnostics = diagnostics_table(spec, ctx, ev, row_graphs, results, by_key, out.not_heldout, out.errors, diversity)
    except Exception as exc:
        out.errors.append(f"diagnostics: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
    try:
        out.overoptimisation = overoptimisation_table(spec, ev, row_graphs, results, out.errors, diversity)
        heldout = {cell: False for cell in out.not_heldout}
        out.overoptimisation_fits = curve_fits(out.overoptimisation, column_directions(results), heldout)
        out.overoptimisation_fits = past_peak_tests(out.overoptimisation_fits, out.overoptimisation, units)
        out.diagnostics = flag_past_peak(out.diagnostics, out.overoptimisation_fits, out.overoptimisation)
    except Exception as exc:
        out.errors.append(f"over-optimisation curves: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
    try:
        out.cross_reward = cross_reward_table(spec, ev, row_graphs, results, units, cells, out.not_heldout, out.errors)
    except Exception as exc:
        out.errors.append(f"cross-reward matrix: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
    return out


def monitor_outcome(spec: Any, ctx: Any, outcome: Any) -> Any:
    """Judge a finished evaluation (harness.engine.runner.RunOutcome) on the graphs it computed: set
    `outcome.monitor` and mark the cells judged by their own selector as not held-out. Never raises."""
    outcome.monitor = monitor_run(spec, ctx, outcome.evaluator, outcome.row_graphs, outcome.results, outcome.cells,
                                  getattr(outcome, "units", None))
    results = outcome.results
    for row, column in outcome.monitor.not_heldout:
        results.loc[(results["row"] == row) & (results["column"] == column), "heldout"] = False
    return outcome


def _n(x: Any, digits: int = 3) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "–"
    return f"{x:.{digits}f}" if math.isfinite(x) else "–"


#: what each flag of the over-optimisation table means, in one line
FLAG_MEANINGS = {
    "beyond_ppd": "the proxy's mean on the row is significantly above its level on held-out PPD images",
    "proxy_up_heldout_down": "the proxy rose vs the comparison row while a held-out metric got significantly worse (paired Δ CIs)",
    "collapse": "a within-prompt diversity metric fell significantly vs the comparison row",
    "gold_past_peak": "the last point of an over-optimisation curve is significantly worse than the curve's peak on a held-out metric (paired Δ)",
}


def flag_reason(flag: str, record: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    """Why a line of diagnostics.csv raised `flag`, with its numbers (one line); rows by `labels`."""
    if flag == "beyond_ppd":
        return f"proxy mean {_n(record.get('proxy_mean'))} is significantly above the held-out PPD's {_n(record.get('ppd_proxy_mean'))}"
    if flag == "proxy_up_heldout_down":
        against = str(record.get("compare_to"))
        return f"the proxy rose vs {(labels or {}).get(against, against)} while held-out {str(record.get('worse_heldout')).replace(';', ', ')} got significantly worse"
    if flag == "collapse":
        return "within-prompt diversity fell significantly"
    if flag == "gold_past_peak":
        return f"held-out {str(record.get('past_peak')).replace(';', ', ')} significantly better at the curve's peak than here"
    return FLAG_MEANINGS.get(flag, flag)


def render_diagnostics_markdown(diag: pd.DataFrame, labels: dict[str, str] | None = None) -> str:
    """The over-optimisation table with its flags as a marked note under it."""
    if diag is None or diag.empty:
        return ""
    labels = labels or {}
    lines = ["### Over-optimisation monitor (proxy reward vs held-out metrics)", "",
             "| row | seed | proxy scorer | proxy mean [95% CI] | held-out PPD level | reward var | Δ proxy vs comparison | flags |",
             "|---|---|---|---|---|---|---|---|"]
    notes = []
    for r in diag.to_dict("records"):
        dp = "–" if not math.isfinite(float(r.get("proxy_delta", math.nan))) else (
            f"{float(r['proxy_delta']):+.3f} [{float(r['proxy_delta_ci_low']):+.3f}, {float(r['proxy_delta_ci_high']):+.3f}]")
        flags = str(r.get("flags") or "")
        if flags in ("nan", "None"):
            flags = ""
        row = labels.get(r["row"], r["row"])
        lines.append(f"| {row} | {r['seed']} | {r['scorer']} | {_n(r['proxy_mean'])} [{_n(r['proxy_ci_low'])}, {_n(r['proxy_ci_high'])}] | "
                     f"{_n(r['ppd_proxy_mean'])} | {_n(r['proxy_var'], 4)} | {dp} | {('⚠ ' + flags) if flags else ''} |")
        for flag in filter(None, flags.split(";")):
            notes.append(f"- ⚠ **{flag}** — {row} / {r['scorer']} (seed {r['seed']}): {flag_reason(flag, r, labels)}.")
    lines += ["", "Flags: `beyond_ppd` proxy mean significantly above its level on held-out PPD; `proxy_up_heldout_down` "
              "proxy up vs the comparison row while a held-out metric got significantly worse (paired Δ CIs); `collapse` "
              "a diversity metric fell significantly. Full table: `diagnostics.csv`."]
    lines += notes or ["- no flags raised."]
    return "\n".join(lines) + "\n"


def write_round_figure(run_dir: Path, spec: Any, results: pd.DataFrame, records: pd.DataFrame | None) -> Path | None:
    """Multi-round rows: `figures/rounds.png`, the proxy reward by round (each round's RM on that
    round's own samples, from records.csv: mean ± sd) beside every metric column for the rows that
    stop after r rounds (round 0: their comparison row). None when the run has no rounds."""
    if records is None or records.empty or "round" not in records or results.empty:
        return None
    recs = records.dropna(subset=["round"])
    if recs.empty:
        return None
    round_of = {row: int(g["round"].max()) for row, g in recs.groupby("row")}
    cells = results[results["scope"] == ("pooled" if (results["scope"] == "pooled").any() else "seed")]
    first_seed = cells["seed"].min()
    cells = cells[cells["seed"] == first_seed]
    for row in list(round_of):
        base = cells.loc[cells["row"] == row, "compare_to"].dropna()
        if len(base) and base.iloc[0] not in round_of:
            round_of[str(base.iloc[0])] = 0
    if len(set(round_of.values())) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(spec.table.columns or [])
    fig, axes = plt.subplots(1, 1 + len(columns), figsize=(3.2 * (1 + len(columns)), 3), squeeze=False)
    per_round = recs.groupby("round").agg(mean=("mean", "mean"), var=("var", "mean")).sort_index()
    ax = axes[0][0]
    ax.errorbar(per_round.index, per_round["mean"], yerr=np.sqrt(per_round["var"]), marker="o", capsize=3)
    ax.set_title("proxy reward (round's RM, own samples)")
    ax.set_xlabel("round")
    ax.set_xticks(list(per_round.index))
    for ax, col in zip(axes[0][1:], columns):
        pts = sorted((round_of[r], v, lo, hi) for r, v, lo, hi in
                     cells.loc[cells["column"] == col, ["row", "value", "ci_low", "ci_high"]].itertuples(index=False) if r in round_of)
        if pts:
            x, v, lo, hi = map(np.asarray, zip(*pts))
            ax.errorbar(x, v, yerr=[v - lo, hi - v], marker="s", color="tab:red", capsize=3)
            ax.set_xticks(sorted(set(x.tolist())))
        label = spec.metrics[col].label if col in spec.metrics and spec.metrics[col].label else col
        ax.set_title(f"held-out {label}")
        ax.set_xlabel("rounds of post-training")
    return save_figure(fig, run_dir, "rounds")


def heldout_warnings(spec: Any, ctx: Any) -> list[str]:
    """For `validate`: the cells whose metric is the row's own selector / training scorer."""
    b = Builder(spec, ctx, spec.seeds[0] if spec.seeds else 0, planning=True)
    own = own_scorer_cells(build_cells(spec, b))
    return [f"row {row!r} × column {col!r}: the metric is the scorer {scorer!r} (same fingerprint) that selected or "
            f"trained this row, so the cell is not held-out evidence (marked * in the tables)"
            for (row, col), scorer in own.items()]


def run_extras_markdown(run_dir: Path, spec: Any = None) -> str:
    """The report-card and diagnostics sections of a run directory (what `table.md` appends)."""
    run_dir = Path(run_dir)
    cards = {}
    for p in sorted((run_dir / "scorers").glob("*.json")) if (run_dir / "scorers").is_dir() else []:
        try:
            card = json.loads(p.read_text())
            cards[card.get("name", p.stem)] = card
        except (OSError, ValueError):
            continue
    parts = [render_cards_markdown(cards)]
    if (run_dir / "diagnostics.csv").is_file():
        try:
            labels = {r: spec.row_name(r) for r in spec.methods} if spec is not None else {}
            parts.append(render_diagnostics_markdown(pd.read_csv(run_dir / "diagnostics.csv"), labels))
        except (OSError, ValueError, pd.errors.EmptyDataError):
            pass
    return "\n".join(p for p in parts if p)
