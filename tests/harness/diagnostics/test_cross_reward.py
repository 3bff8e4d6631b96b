"""The cross-reward matrix (harness/diagnostics/cross_reward.py): which rows and judges it holds, its
column cells against the table's Δs and against per-sample values differenced by hand, a scorer
judge's Δ against a hand computation of the paired difference and of the t-across-seeds rule of
trained rows, the CSV, figure, Markdown and report sections a run writes, and no matrix at all for
a spec with one proxy."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import ganrm_bench as gb
from ganrm_bench.harness.app.services.run import evaluate as run_spec
from ganrm_bench.harness.report.cross_reward import CAPTION
from ganrm_bench.harness.report.overoptimisation import CAPTION as OVEROPTIMISATION_CAPTION
from ganrm_bench.harness.report.rundir import load_cross_reward
from ganrm_bench.harness.report.write import write_run
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS

SPEC = """
spec_version: 1
name: cross
plugins: [HELPERS/toy_plugins.py, HELPERS/monitor_plugins.py]
seeds: SEEDS
generators:
  gen: {generator: mon_gen}
prompts:
  eval: {source: toy_prompts, n: 24}
  train: {source: toy_prompts, n: 16, prefix: t}
images:
  ppd: {source: toy_images, n: 16, level: 150}
scorers:
  rm: {scorer: mon_rm, train: {positives: ppd, negatives: {generator: gen, prompts: train, k: 1}}}
  bright: {scorer: mon_bright}
methods:
  base: {method: toy_base, generator: gen, prompts: eval}
  by_rm: {method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 4, label: "best of 4 by rm"}
  by_rm2: {method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 2}
  by_bright: {method: toy_best, generator: gen, prompts: eval, scorer: bright, k: 4}
metrics:
  contrast: {metric: mon_contrast}
  brightness: {metric: mon_bright}
  darkness: {metric: mon_darkness}
table:
  rows: ROWS
  columns: [contrast, brightness, darkness]
  compare: base
"""


def _run(tmp_path, seeds="[0]", rows="[base, by_rm, by_bright]"):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("HELPERS", str(HELPERS)).replace("SEEDS", seeds).replace("ROWS", rows))
    spec = load_spec(tmp_path / "spec.yaml")
    outcome = run_spec(spec, Context(store=Store(tmp_path / "store")))
    write_run(tmp_path / "run", spec, "spec.yaml", outcome.results, {}, outcome.samples, outcome.records, outcome.units, outcome.monitor)
    return outcome, tmp_path / "run"


def _by_prompt(outcome, seed, row, value):
    """prompt id -> the per-sample `value` of a row's images (one sample per prompt)."""
    items = outcome.evaluator.value(outcome.row_graphs[seed][row])
    return {it.prompt_id: value(im) for it, im in zip(items, items.load())}


def _brightness(im):
    return float(np.asarray(im, dtype=float).mean()) / 255


def _contrast(im):
    return float(np.asarray(im, dtype=float).std())


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("cross2"), seeds="[0, 1]")


def test_rows_judges_and_the_diagonal(two_seeds):
    outcome, run = two_seeds
    assert not outcome.failures and not outcome.monitor.errors
    m = load_cross_reward(run)
    pd.testing.assert_frame_equal(m, pd.read_csv(run / "cross_reward.csv", dtype={"seeds": str}))
    pd.testing.assert_frame_equal(gb.load_run(run).cross_reward, m)  # the Python API's Run.cross_reward
    # rows optimised for a proxy (the comparison row is none); judges: the per-sample columns, then the
    # proxy rm (bright is the same model as the brightness column, so it is that column)
    assert list(dict.fromkeys(m["row"])) == ["by_rm", "by_bright"]
    assert list(dict.fromkeys(m["judge"])) == ["contrast", "brightness", "darkness", "rm"]
    assert m.set_index("row")["optimised_for"].to_dict() == {"by_rm": "rm", "by_bright": "bright"}
    own = m[m["own"].astype(bool)][["row", "judge"]].apply(tuple, axis=1).tolist()
    assert own == [("by_bright", "brightness"), ("by_rm", "rm")]
    assert set(m["compare_to"]) == {"base"} and m.set_index(["row", "judge"]).loc[("by_rm", "rm"), "judge_kind"] == "scorer"


def test_column_cells_are_the_tables_deltas(two_seeds):
    outcome, run = two_seeds
    m = load_cross_reward(run).set_index(["row", "judge"])
    pooled = outcome.results[outcome.results["scope"] == "pooled"].set_index(["row", "column"])
    for row in ("by_rm", "by_bright"):
        for col in ("contrast", "brightness", "darkness"):
            for k in ("delta", "delta_ci_low", "delta_ci_high", "p_value"):
                assert m.loc[(row, col), k] == pytest.approx(pooled.loc[(row, col), k], nan_ok=True)
    # independently: the pooled Δ of a per-sample column is the mean per-sample difference over both seeds
    diffs = []
    for seed in (0, 1):
        a, b = _by_prompt(outcome, seed, "by_bright", _contrast), _by_prompt(outcome, seed, "base", _contrast)
        diffs += [a[p] - b[p] for p in a]
    assert m.loc[("by_bright", "contrast"), "delta"] == pytest.approx(np.mean(diffs))


def test_a_scorer_judge_against_hand_computed_paired_deltas(two_seeds):
    """rm (trained, retrained per seed) scores mean brightness / 255: per seed the paired Δ of
    by_bright vs base by hand, then the t interval across the two seeds' Δs (a trained judge)."""
    outcome, run = two_seeds
    m = load_cross_reward(run).set_index(["row", "judge"])
    per_seed = []
    for seed in (0, 1):
        a, b = _by_prompt(outcome, seed, "by_bright", _brightness), _by_prompt(outcome, seed, "base", _brightness)
        per_seed.append(np.mean([a[p] - b[p] for p in a]))
    half = stats.t.ppf(0.975, 1) * np.std(per_seed, ddof=1) / math.sqrt(2)
    r = m.loc[("by_bright", "rm")]
    assert r["delta"] == pytest.approx(np.mean(per_seed))  # pooled over equal-sized seeds: the mean
    assert (r["delta_ci_low"], r["delta_ci_high"]) == pytest.approx((np.mean(per_seed) - half, np.mean(per_seed) + half))
    assert r["delta_basis"] == "seeds" and r["seeds"] == "0+1"
    # rm and the brightness column score the same per-sample values: the same Δ estimate
    assert r["delta"] == pytest.approx(m.loc[("by_bright", "brightness"), "delta"])


def test_one_seed_scorer_judge_interval(tmp_path):
    """One seed: the paired bootstrap over prompts, marked conditional (rm is trained); its standard
    error against the analytic paired one, sd(d)/√n."""
    outcome, run = _run(tmp_path)
    assert not outcome.monitor.errors
    r = load_cross_reward(run).set_index(["row", "judge"]).loc[("by_bright", "rm")]
    a, b = _by_prompt(outcome, 0, "by_bright", _brightness), _by_prompt(outcome, 0, "base", _brightness)
    d = np.array([a[p] - b[p] for p in a])
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert r["delta"] == pytest.approx(d.mean())
    assert (r["delta_ci_high"] - r["delta_ci_low"]) / (2 * 1.96) == pytest.approx(se, rel=0.2)
    assert r["delta_basis"] == "conditional" and r["seeds"] == "0"
    assert (run / "figures" / "cross_reward.png").stat().st_size > 10_000
    md = (run / "table.md").read_text().split("### Cross-reward matrix")[1]
    assert "| best of 4 by rm | rm |" in md and "(own)_" in md
    html = (run / "report.html").read_text()
    assert 'id="figure-cross_reward"' in html and CAPTION.split(":")[0] in html and CAPTION[-40:] in html
    m = load_cross_reward(run)
    held = m[~m["own"]]
    better = int(((held["delta_ci_low"] > 0) & (held["direction"] == "higher") | (held["delta_ci_high"] < 0) & (held["direction"] == "lower")).sum())
    worse = int(((held["delta_ci_high"] < 0) & (held["direction"] == "higher") | (held["delta_ci_low"] > 0) & (held["direction"] == "lower")).sum())
    assert len(held) == 6 and better > 0  # brightness and darkness improve when choosing by brightness
    assert (f"In this run: Δ vs base; rows best of 4 by rm (optimised for rm); by_bright (optimised for bright); of 6 held-out "
            f"cells {better} are significantly better and {worse} significantly worse.") in html


@pytest.mark.parametrize("rows, curve", [("[base, by_rm]", False), ("[base, by_rm, by_rm2]", True)])
def test_one_proxy_no_matrix(tmp_path, rows, curve):
    """One proxy (once or twice): no matrix, no file, no figure, no section; the report shows the
    over-optimisation figure with its caption exactly when the run drew it (n = 1, 2, 4 is a curve)."""
    outcome, run = _run(tmp_path, rows=rows)
    assert outcome.monitor.cross_reward.empty and not outcome.monitor.errors
    assert load_cross_reward(run) is None and gb.load_run(run).cross_reward is None
    assert not (run / "figures" / "cross_reward.png").exists()
    html = (run / "report.html").read_text()
    assert 'id="figure-cross_reward"' not in html and "Cross-reward" not in (run / "table.md").read_text()
    assert (run / "figures" / "overoptimisation.png").exists() is curve
    assert ('id="figure-overoptimisation"' in html) is curve and (OVEROPTIMISATION_CAPTION[:60] in html) is curve
    assert ("In this run — best-of-n by rm, seed 0: gold is best for contrast at n = " in html) is curve  # this run's peaks
