"""Best-of-n over-optimisation curves (harness/diagnostics/overoptimisation.py): which rows the graph
reads as best-of-n, the table's KL against log n − (n−1)/n, its proxy means against the proxy scored
by hand on the rows' samples (and the monitor's diagnostics.csv), its columns against the results,
the fits against an independent least squares, the peak on a constructed inverted-U curve, and the
CSV and figure a run writes."""

import math

import numpy as np
import pandas as pd
import pytest

from ganrm_bench.harness.app.services.run import evaluate as run_spec
from ganrm_bench.harness.diagnostics.overoptimisation import best_of_n, best_of_n_curves, curve_fits
from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.report.overoptimisation import spaced_tick_labels
from ganrm_bench.harness.report.rundir import load_overoptimisation
from ganrm_bench.harness.report.write import write_run
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS

SPEC = """
spec_version: 1
name: overopt
plugins: [HELPERS/toy_plugins.py, HELPERS/monitor_plugins.py]
seeds: [0]
generators:
  gen: {generator: mon_gen}
  other: {generator: mon_gen, brightness: 10}
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
  best2: {method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 2}
  best4: {method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 4}
  best16: {method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 16}
  other4: {method: toy_best, generator: other, prompts: eval, scorer: rm, k: 4}
  bright2: {method: toy_best, generator: gen, prompts: eval, scorer: bright, k: 2}
metrics:
  contrast: {metric: mon_contrast}
  darkness: {metric: mon_darkness}
table:
  rows: [base, best2, best4, best16, other4, bright2]
  columns: [contrast, darkness]
"""


@pytest.fixture(scope="module")
def curves(tmp_path_factory):
    d = tmp_path_factory.mktemp("overopt")
    (d / "spec.yaml").write_text(SPEC.replace("HELPERS", str(HELPERS)))
    spec = load_spec(d / "spec.yaml")
    outcome = run_spec(spec, Context(store=Store(d / "store")))
    write_run(d / "run", spec, "spec.yaml", outcome.results, {}, outcome.samples, outcome.records, outcome.units, outcome.monitor)
    return spec, outcome, d / "run"


def test_rows_read_as_best_of_n_from_the_graph(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("HELPERS", str(HELPERS)))
    spec = load_spec(tmp_path / "spec.yaml")
    b = Builder(spec, Context(store=Store(tmp_path / "store")), 0, planning=True)
    rows = {r: b.method(r) for r in spec.table.rows}
    assert {r: best_of_n(n).n for r, n in rows.items()} == {"base": 1, "best2": 2, "best4": 4, "best16": 16, "other4": 4, "bright2": 2}
    pool = b.pool("gen", "eval", k=8)
    assert best_of_n(b.select(pool, b.scores("rm", pool), "rank", rank=2)) is None  # a rank is not best-of-n
    assert best_of_n(b.select(pool, b.scores("rm", pool), "argmin")) is None
    assert best_of_n(b.select(pool, b.scores("rm", pool), "argmax", k=3)).n == 3  # the first 3 of the pool
    assert best_of_n(pool) is None  # 8 samples per prompt, nothing chosen
    # one curve: gen × eval × rm with n = 1, 2, 4, 16; `other` and `bright` have too few n for a curve
    (curve,) = best_of_n_curves(rows)
    assert curve.scorer.label == "rm" and curve.rows == {"base": 1, "best2": 2, "best4": 4, "best16": 16}


def test_table_numbers_against_independent_computations(curves):
    spec, outcome, run = curves
    assert not outcome.failures and not outcome.monitor.errors
    table = pd.read_csv(run / "overoptimisation.csv").set_index("row")
    assert list(table.index) == ["base", "best2", "best4", "best16"] and set(table["method"]) == {"best-of-n by rm"}
    for row, n in zip(table.index, (1, 2, 4, 16)):
        assert table.loc[row, "kl"] == pytest.approx(math.log(n) - (n - 1) / n)
        assert table.loc[row, "sqrt_kl"] == pytest.approx(math.sqrt(math.log(n) - (n - 1) / n))
        # the proxy (mean brightness / 255) scored by hand on the row's samples
        images = outcome.evaluator.value(outcome.row_graphs[0][row]).load()
        by_hand = np.mean([np.asarray(im, dtype=float).mean() / 255 for im in images])
        assert table.loc[row, "proxy_mean"] == pytest.approx(by_hand)
        assert table.loc[row, "proxy_ci_low"] < by_hand < table.loc[row, "proxy_ci_high"]
        assert table.loc[row, "darkness"] == pytest.approx(1 - by_hand)  # darkness is 1 − the proxy per sample
    res = outcome.results[outcome.results["scope"] == "seed"].set_index(["row", "column"])
    assert table.loc["best4", "contrast_ci_high"] == pytest.approx(res.loc[("best4", "contrast"), "ci_high"])
    diag = pd.read_csv(run / "diagnostics.csv").set_index("row")  # the monitor reports the same proxy interval
    assert table.loc["best16", ["proxy_mean", "proxy_ci_low", "proxy_ci_high"]].tolist() == pytest.approx(
        diag.loc["best16", ["proxy_mean", "proxy_ci_low", "proxy_ci_high"]].tolist())
    assert np.all(np.diff(table["proxy_mean"]) > 0)  # the best of nested pools only rises


def test_fits_and_peaks_of_the_run(curves):
    _, _, run = curves
    table = pd.read_csv(run / "overoptimisation.csv")
    fits = pd.read_csv(run / "overoptimisation_fits.csv").set_index("metric")
    assert list(fits.index) == ["proxy", "contrast", "darkness"]
    assert not fits.loc["proxy", "gold"] and fits.loc["contrast", "gold"] and fits.loc["darkness", "gold"]
    d, v = table["sqrt_kl"].to_numpy(), table["proxy_mean"].to_numpy()
    X = np.column_stack([d[1:], -d[1:] ** 2])  # independent least squares through the n = 1 value
    alpha, beta = np.linalg.lstsq(X, v[1:] - v[0], rcond=None)[0]
    assert fits.loc["proxy", ["alpha", "beta", "r0"]].tolist() == pytest.approx([alpha, beta, v[0]])
    # darkness is lower-is-better and falls as the proxy rises: its best point is the largest n
    assert fits.loc["darkness", "peak_n"] == 16 and fits.loc["proxy", "peak_n"] == 16
    assert fits.loc["darkness", "direction"] == "lower"
    assert (run / "figures" / "overoptimisation.png").stat().st_size > 10_000
    md = (run / "table.md").read_text().split("### Over-optimisation curves")[1]
    assert "| darkness | lower | 16 (1.35) | " in md and f"| contrast | higher | {int(fits.loc['contrast', 'peak_n'])} (" in md
    assert "the proxy reward that chose the samples (blue, right axis) against √KL" in (run / "report.html").read_text()  # its caption
    loaded, loaded_fits = load_overoptimisation(run)  # what ganrm_bench.api's Run.overoptimisation returns
    pd.testing.assert_frame_equal(loaded, table)
    pd.testing.assert_frame_equal(loaded_fits.set_index("metric"), fits)


def test_no_curve_no_files(tmp_path):
    """A table with fewer than three n per curve (base and best-of-2 only) writes no curve files."""
    spec_text = SPEC.replace("HELPERS", str(HELPERS)).replace("rows: [base, best2, best4, best16, other4, bright2]", "rows: [base, best2]")
    (tmp_path / "spec.yaml").write_text(spec_text)
    spec = load_spec(tmp_path / "spec.yaml")
    outcome = run_spec(spec, Context(store=Store(tmp_path / "store")))
    write_run(tmp_path / "run", spec, "spec.yaml", outcome.results, {}, None, None, None, outcome.monitor)
    assert outcome.monitor.overoptimisation.empty and not outcome.monitor.errors
    assert not (tmp_path / "run" / "overoptimisation.csv").exists() and load_overoptimisation(tmp_path / "run") is None
    assert not (tmp_path / "run" / "figures" / "overoptimisation.png").exists()


def test_the_gold_peak_of_an_inverted_u():
    ns = [1, 2, 4, 8, 16, 32]
    d = np.sqrt([math.log(n) - (n - 1) / n for n in ns])
    gold = 0.5 + d * (0.4 - 0.25 * d)  # Gao's form: peak at d = 0.8, between n = 4 (d 0.79) and n = 8
    fid = 40 + d * (-6 + 2 * d)  # lower is better: best at d = 1.5
    table = pd.DataFrame({"method": "m", "seed": 0, "row": [f"r{n}" for n in ns], "n": ns, "sqrt_kl": d,
                          "proxy_mean": 0.1 + d, "gold": gold, "fid": fid})
    fits = curve_fits(table, {"gold": "higher", "fid": "lower"}, {("r8", "gold"): False}).set_index("metric")
    assert fits.loc["gold", "peak_n"] == 4 and fits.loc["gold", "peak_value"] == pytest.approx(gold[2])
    assert fits.loc["gold", "fit_best_sqrt_kl"] == pytest.approx(0.8)
    assert math.log(fits.loc["gold", "fit_best_n"]) - (fits.loc["gold", "fit_best_n"] - 1) / fits.loc["gold", "fit_best_n"] == pytest.approx(0.64)
    assert fits.loc["fid", "peak_n"] == 32 and fits.loc["fid", "fit_best_sqrt_kl"] == pytest.approx(1.5)
    assert not fits.loc["gold", "gold"] and fits.loc["fid", "gold"]  # one cell judged by its own selector: no gold
    assert math.isnan(fits.loc["proxy", "fit_best_sqrt_kl"])  # a proxy rising linearly has no peak


def test_crowded_tick_labels_are_thinned_keeping_the_ends():
    """The mini DPO curve's √KL points (steps 0…200): "step 25 / step 50" touched and "step 100 / 150 /
    200" overlapped at 7 pt; every kept label is at least 2.2 % of the axis per character of the longest
    label from the next, both ends are labelled, and no tick loses its position. Short best-of-n labels
    at the same spacing all stay."""
    d = np.array([0.0, 0.7289, 1.0053, 1.4245, 1.5694, 1.8049])  # measured (mini overoptimisation.yaml, seed 0)
    labels = [f"{x:.2f}\nstep {s}" for x, s in zip(d, (0, 25, 50, 100, 150, 200))]
    shown = spaced_tick_labels(d, labels)
    assert len(shown) == len(d) and shown[0] == labels[0] and shown[-1] == labels[-1]
    kept = [x for x, lab in zip(d, shown) if lab]
    assert min(np.diff(kept)) >= 0.022 * 8 * (d.max() - d.min())
    assert shown[2] == shown[4] == "" and shown[3] == labels[3]  # 1.01 next to 0.73; 1.57 between 1.42 and the end
    bon = np.sqrt([0.0, 0.193, 0.636, 1.204, 1.835, 2.497])  # best-of-n, n = 1…32
    assert all(spaced_tick_labels(bon, [f"{x:.2f}\nn={n}" for x, n in zip(bon, (1, 2, 4, 8, 16, 32))]))
    assert spaced_tick_labels(np.array([5.0]), ["x"]) == ["x"]


def test_legends_of_neighbouring_panels_do_not_overlap_and_n_reads_as_an_integer():
    """The figure of mini DPO's run (best-of-n and trajectory-KL rows, four gold columns, Gao's RL fit
    labels, the longest we write): every legend inside the figure and clear of every other."""
    from ganrm_bench.harness.diagnostics.pngs import DPI
    from ganrm_bench.harness.report.overoptimisation import overoptimisation_figure

    data = HELPERS / "overopt_mini_dpo"
    fig = overoptimisation_figure(None, pd.read_csv(data / "overoptimisation.csv"), pd.read_csv(data / "overoptimisation_fits.csv"))
    fig.set_dpi(DPI)  # laid out as save_figure writes it
    fig.tight_layout()
    fig.canvas.draw()
    boxes = [ax.get_legend().get_window_extent() for ax in fig.axes if ax.get_legend() is not None]
    assert len(boxes) == 8  # one per panel: 2 rows × 4 columns
    page = fig.bbox
    assert all(b.x0 >= page.x0 and b.x1 <= page.x1 and b.y0 >= page.y0 for b in boxes)
    gap = 0.1 * DPI  # a tenth of an inch between legends: touching ones read as one
    clashes = [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].padded(gap / 2).overlaps(boxes[j].padded(gap / 2))]
    assert not clashes
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]  # n read back from the CSV is a float column
    assert ticks[0] == "0.00\nn=1" and ticks[-1] == "1.58\nn=32"
