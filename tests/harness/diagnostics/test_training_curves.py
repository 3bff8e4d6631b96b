"""Over-optimisation curves along training (harness/diagnostics/training_curves.py) in the toy world:
rows that sample one toy fine-tune's checkpoints, with the untuned generator as step 0, are one
curve over the step; its proxy means against the proxy computed by hand on the rows' samples, its
gold column against the results, and its peak against the constructed inverted U (contrast ×
(1 + 0.02·s·(10 − s)): best at s = 4–6)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import curve_fit

from ganrm_bench.harness.app.services.run import evaluate as run_spec
from ganrm_bench.harness.diagnostics.training_curves import KL_NONE, training_curves, training_point
from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.report.write import write_run
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS

STEPS = (2, 4, 6, 8, 10)


def spec_text(shape="inverted_u", steps=STEPS, columns="contrast", kl=None):
    extra = f", kl: {kl}" if kl else ""
    rows = "\n".join(f"  tune{s}: {{method: toy_tune, generator: gen, prompts: eval, scorer: rm, checkpoint: {s}, shape: {shape}{extra}}}"
                     for s in steps)
    names = ", ".join(f"tune{s}" for s in steps)
    return f"""
spec_version: 1
name: along-training
plugins: [{HELPERS}/toy_plugins.py, {HELPERS}/monitor_plugins.py, {HELPERS}/training_plugins.py]
seeds: [0]
generators:
  gen: {{generator: mon_gen}}
prompts:
  eval: {{source: toy_prompts, n: 24}}
  train: {{source: toy_prompts, n: 16, prefix: t}}
images:
  ppd: {{source: toy_images, n: 16, level: 150}}
scorers:
  rm: {{scorer: mon_rm, train: {{positives: ppd, negatives: {{generator: gen, prompts: train, k: 1}}}}}}
methods:
  base: {{method: toy_base, generator: gen, prompts: eval}}
  best2: {{method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 2}}
  best4: {{method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 4}}
{rows}
metrics:
  contrast: {{metric: mon_contrast}}
  texture: {{metric: mon_texture}}
table:
  rows: [base, best2, best4, {names}]
  columns: [{columns}]
  compare: base
"""


def run(tmp_path, **kw):
    (tmp_path / "spec.yaml").write_text(spec_text(**kw))
    spec = load_spec(tmp_path / "spec.yaml")
    outcome = run_spec(spec, Context(store=Store(tmp_path / "store")))
    write_run(tmp_path / "run", spec, "spec.yaml", outcome.results, {}, outcome.samples, outcome.records, outcome.units, outcome.monitor)
    return spec, outcome, tmp_path / "run"


def test_checkpoint_rows_read_as_one_curve_over_the_step(tmp_path):
    (tmp_path / "spec.yaml").write_text(spec_text())
    spec = load_spec(tmp_path / "spec.yaml")
    b = Builder(spec, Context(store=Store(tmp_path / "store")), 0, planning=True)
    rows = {r: b.method(r) for r in spec.table.rows}
    assert training_point(rows["tune4"]).step == 4 and training_point(rows["tune10"]).step == 10  # 10: the run itself
    assert training_point(rows["tune4"]).run.key == training_point(rows["tune10"]).run.key
    assert training_point(rows["best2"]) is None  # a selection is no pool
    (curve,) = training_curves(rows, 3)
    assert curve.scorer.label == "rm" and curve.rows == {"base": 0, **{f"tune{s}": s for s in STEPS}}
    assert training_curves({r: rows[r] for r in ("base", "tune2")}, 3) == []  # two steps are no curve


def test_the_curve_along_training_in_the_table_fits_and_figure(tmp_path):
    spec, outcome, rundir = run(tmp_path)
    assert not outcome.failures and not outcome.monitor.errors
    table = pd.read_csv(rundir / "overoptimisation.csv")
    along = table[table["step"].notna()].set_index("row")
    assert list(along.index) == ["base", *[f"tune{s}" for s in STEPS]] and along["step"].tolist() == [0, *STEPS]
    assert (along["kl_estimator"] == KL_NONE).all() and along["kl"].isna().all() and along["n"].isna().all()
    assert table[table["n"].notna()]["row"].tolist() == ["base", "best2", "best4"]  # the best-of-n curve beside it
    assert "diversity" not in table  # no diversity column in this table
    for row in along.index:
        images = outcome.evaluator.value(outcome.row_graphs[0][row]).load()
        by_hand = np.mean([np.asarray(im, dtype=float).mean() / 255 for im in images])  # the proxy: brightness / 255
        assert along.loc[row, "proxy_mean"] == pytest.approx(by_hand)
        contrast = np.mean([np.asarray(im, dtype=float).std() for im in images])
        assert along.loc[row, "contrast"] == pytest.approx(contrast)
    assert np.all(np.diff(along["proxy_mean"]) > 0)  # 3·s brighter at step s
    fits = pd.read_csv(rundir / "overoptimisation_fits.csv")
    fit = fits[fits["method"].str.contains("along training")].set_index("metric")
    assert fit.loc["contrast", "peak_step"] in (4, 6) and fit.loc["contrast", "final_step"] == 10
    assert fit.loc["proxy", "peak_step"] == 10 and math.isnan(fit.loc["contrast", "alpha"])  # no KL, no fit
    md = (rundir / "table.md").read_text().split("### Over-optimisation curves")[1]
    assert f"| contrast | higher | step {int(fit.loc['contrast', 'peak_step'])} |" in md
    assert (rundir / "figures" / "overoptimisation.png").stat().st_size > 10_000


def contrast_per_prompt(outcome, row):
    items = outcome.evaluator.value(outcome.row_graphs[0][row])
    return {it.prompt_id: float(np.asarray(im, dtype=float).std()) for it, im in zip(items, items.load())}


def test_gold_past_peak_on_the_inverted_u_against_a_hand_paired_difference(tmp_path):
    from scipy.stats import norm

    _, outcome, rundir = run(tmp_path)
    fits = pd.read_csv(rundir / "overoptimisation_fits.csv")
    line = fits[fits["method"].str.contains("along training") & (fits["metric"] == "contrast")].iloc[0]
    peak = line["peak_row"]
    final, best = contrast_per_prompt(outcome, "tune10"), contrast_per_prompt(outcome, peak)
    diffs = np.array([final[p] - best[p] for p in final])  # paired by prompt (one sample each)
    assert line["final_vs_peak"] == pytest.approx(diffs.mean())
    z = norm.ppf(1 - 0.05 / 5)  # one-sided 95 %, split over the 5 candidate peaks (steps 0–8)
    assert line["final_vs_peak_bound"] - line["final_vs_peak"] == pytest.approx(z * diffs.std(ddof=1) / np.sqrt(diffs.size), rel=0.2)
    assert line["gold_past_peak"] and line["final_vs_peak_bound"] < 0
    diag = pd.read_csv(rundir / "diagnostics.csv").set_index("row")
    assert "gold_past_peak" in diag.loc["tune10", "flags"].split(";") and diag.loc["tune10", "past_peak"] == f"contrast ({peak})"
    assert not any("gold_past_peak" in str(diag.loc[r, "flags"]) for r in ("tune2", "tune4", "tune6", "tune8"))
    assert "gold_past_peak" in (rundir / "table.md").read_text()


def test_no_gold_past_peak_on_a_monotone_curve(tmp_path):
    _, outcome, rundir = run(tmp_path, shape="monotone")
    assert not outcome.monitor.errors
    fits = pd.read_csv(rundir / "overoptimisation_fits.csv")
    line = fits[fits["method"].str.contains("along training") & (fits["metric"] == "contrast")].iloc[0]
    assert line["peak_step"] == 10 and not line["gold_past_peak"] and math.isnan(line["final_vs_peak"])
    diag = pd.read_csv(rundir / "diagnostics.csv")
    assert not diag["flags"].astype(str).str.contains("gold_past_peak").any()


def test_the_diversity_column_of_a_table_with_a_diversity_metric(tmp_path):
    _, outcome, rundir = run(tmp_path, columns="contrast, texture")
    table = pd.read_csv(rundir / "overoptimisation.csv")
    assert (table["diversity_metric"] == "texture").all()  # mon_texture declares diversity = True
    for s in ("", "_ci_low", "_ci_high"):
        assert table[f"diversity{s}"].tolist() == pytest.approx(table[f"texture{s}"].tolist())
    res = outcome.results[(outcome.results["scope"] == "seed") & (outcome.results["column"] == "texture")].set_index("row")
    assert table.set_index("row").loc["tune6", "diversity"] == pytest.approx(res.loc["tune6", "value"])


def test_a_fine_tune_with_a_kl_estimator_puts_its_kl_on_the_curve(tmp_path):
    """The op's `divergence` node is evaluated per tuned row: kl and its CI are the toy's Gaussian
    shift (3·s brighter: (0.3·s)²/2), step 0 is KL 0, Gao's RL form (not best-of-n's) is fitted
    against √KL, and the figure's x is √KL."""
    spec, outcome, rundir = run(tmp_path, kl="shift")
    assert not outcome.failures and not outcome.monitor.errors
    table = pd.read_csv(rundir / "overoptimisation.csv")
    along = table[table["step"].notna()].set_index("row")
    by_hand = {row: (0.3 * s) ** 2 / 2 for row, s in zip(along.index, along["step"].astype(int))}
    assert along["kl"].to_dict() == pytest.approx(by_hand)
    assert along["sqrt_kl"].tolist() == pytest.approx([math.sqrt(v) for v in by_hand.values()])
    assert along["kl_ci_high"].tolist() == pytest.approx([1.1 * v for v in by_hand.values()])
    assert (along["kl_estimator"] == "toy: Gaussian shift").all() and along.loc["base", "kl"] == 0
    fits = pd.read_csv(rundir / "overoptimisation_fits.csv")
    rl = fits[fits["method"].str.contains("along training")].set_index("metric")
    assert (rl["form"] == "rl").all() and rl["fit_best_n"].isna().all()  # RL's form against the KL; no n along training
    # Gao's RL form through the step-0 value, against scipy's nonlinear least squares on the same points
    gold = along.sort_values("step")
    d, v = gold["sqrt_kl"].to_numpy(float), gold["contrast"].to_numpy(float)
    (a, b), _ = curve_fit(lambda x, a, b: v[0] + x * (a - b * np.log(np.where(x > 0, x, 1.0))), d, v, p0=(0.0, 0.0))
    assert (rl.loc["contrast", "alpha"], rl.loc["contrast", "beta"]) == pytest.approx((a, b), rel=1e-5, abs=1e-8)
    assert rl.loc["contrast", "r0"] == pytest.approx(v[0])
    assert (rundir / "figures" / "overoptimisation.png").is_file()
    md = (rundir / "table.md").read_text()
    assert "d(α − β log d)" in md


def test_without_a_kl_no_form_is_fitted_along_training(tmp_path):
    """The step is no √KL: a curve along training whose KL failed has its observed peak and no fit."""
    _, _, rundir = run(tmp_path, kl="fail")
    fits = pd.read_csv(rundir / "overoptimisation_fits.csv")
    along = fits[fits["method"].str.contains("along training")]
    assert along["alpha"].isna().all() and along["peak_step"].notna().all()


def test_a_failing_kl_estimate_keeps_the_curve_on_the_step_axis_and_says_why(tmp_path):
    spec, outcome, rundir = run(tmp_path, kl="fail")
    along = pd.read_csv(rundir / "overoptimisation.csv").query("step == step").set_index("row")
    assert along["step"].tolist() == [0, *STEPS] and along["kl"].isna().all()
    assert along.loc["tune4", "kl_estimator"].startswith(KL_NONE) and "toy KL refuses" in along.loc["tune4", "kl_estimator"]
