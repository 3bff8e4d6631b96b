"""Reward-model report cards and the over-optimisation monitor, on toy plugins: ECE and AUC against
hand computations, the AUC interval's coverage, flags that fire where a row games its proxy (and
not where nothing degraded), not-held-out cells, and failures that never cost the table."""

import json

import numpy as np
import pandas as pd
import pytest

from ganrm_bench.harness.app.services.run import evaluate as run_spec
from ganrm_bench.harness.diagnostics.monitor import heldout_warnings
from ganrm_bench.harness.diagnostics.scorecard import auc_with_ci, classifier_card, expected_calibration_error
from ganrm_bench.harness.report.write import write_run
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS


def test_ece_by_hand():
    probs = [0.05, 0.15, 0.12, 0.55, 0.58, 0.95, 1.0, 0.99]
    labels = [0, 0, 1, 1, 0, 1, 1, 1]
    # bins: [0,.1): {.05: 0} -> |0 - .05| ; [.1,.2): {.15: 0, .12: 1} -> |.5 - .135| ; [.5,.6): {.55: 1, .58: 0} -> |.5 - .565|
    # [.9, 1]: {.95, 1.0, .99: all 1} -> |1 - .98|
    hand = (1 * 0.05 + 2 * 0.365 + 2 * 0.065 + 3 * 0.02) / 8
    assert expected_calibration_error(probs, labels) == pytest.approx(hand, abs=1e-12)
    assert expected_calibration_error([0.0, 1.0], [0, 1]) == 0.0  # 1.0 falls in the last bin


def test_auc_matches_sklearn_and_its_interval_covers():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    s, y = rng.normal(size=60), np.r_[np.ones(30), np.zeros(30)]
    s[y == 1] += 0.8
    s[:3] = s[30:33]  # ties across classes count ½
    auc, lo, hi = auc_with_ci(s, y, seed=1)
    assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12) and lo < auc < hi
    # coverage: populations with a known AUC Φ(δ/√2); the 95% interval covers it in most draws
    from scipy.stats import norm

    true, covered, trials = norm.cdf(0.8 / np.sqrt(2)), 0, 200
    for t in range(trials):
        r = np.random.default_rng(100 + t)
        pos, neg = r.normal(0.8, 1, 40), r.normal(0, 1, 40)
        _, lo, hi = auc_with_ci(np.r_[pos, neg], np.r_[np.ones(40), np.zeros(40)], resamples=500, seed=t)
        covered += lo <= true <= hi
    assert 0.88 <= covered / trials <= 0.99


def test_mean_interval_matches_the_standard_error_of_prompt_means():
    from ganrm_bench.harness.stats.paired import Units, mean_interval

    rng = np.random.default_rng(3)
    values = rng.normal(size=(200, 4)) + rng.normal(size=(200, 1))  # 200 prompts × 4 samples, prompt effects
    units = Units.from_samples(values.ravel(), [f"p{i}" for i in range(200) for _ in range(4)])
    ci = mean_interval(units, seed=0)
    se = values.mean(axis=1).std(ddof=1) / np.sqrt(200)  # equal counts: the ratio is the mean of prompt means
    assert ci.estimate == pytest.approx(values.mean()) and (ci.ci_high - ci.ci_low) / (2 * 1.96) == pytest.approx(se, rel=0.08)


def test_classifier_card_fields():
    card = classifier_card([0.9, 0.8, 0.3, 0.2, 0.6], [1, 1, 0, 0, 0])
    assert card["heldout_accuracy"] == pytest.approx(0.8) and card["heldout_auc"] == 1.0
    assert card["n_heldout_ppd"] == 2 and card["n_heldout_generated"] == 3
    assert card["heldout_scores"] == {"ppd": [0.9, 0.8], "generated": [0.3, 0.2, 0.6]}
    assert "10 equal-width bins" in card["ece_binning"]


def test_cards_section_shows_auc_by_ppd_size():
    from ganrm_bench.harness.diagnostics.scorecard import render_cards_markdown

    cards = {f"rm{n}": {"n_ppd": n, **classifier_card([0.9, 0.6, 0.7, 0.2], [1, 1, 0, 0])} for n in (500, 50)}
    md = render_cards_markdown(cards)
    assert "| rm50 | 50 | 0.750 [" in md
    assert "held-out AUC by PPD size: N=50 (rm50) 0.750 [" in md and md.index("N=50 (rm50)") < md.index("N=500 (rm500)")


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    d = tmp_path_factory.mktemp("monitor")
    spec = load_spec(HELPERS / "monitor_spec.yaml")
    store = Store(d / "store")
    outcome = run_spec(spec, Context(store=store))
    write_run(d / "run", spec, "monitor_spec.yaml", outcome.results, {}, outcome.samples, outcome.records, outcome.units,
              outcome.monitor)
    return spec, store, outcome, d / "run"


def test_flags_fire_where_the_proxy_is_gamed_and_not_elsewhere(monitored):
    _, _, outcome, run = monitored
    assert not outcome.failures and not outcome.monitor.errors
    diag = pd.read_csv(run / "diagnostics.csv").set_index("row")
    assert set(diag.index) == {"best2", "tuned", "own"}  # base used no scorer
    tuned, best2 = diag.loc["tuned"], diag.loc["best2"]
    # the gamed row: proxy 200/255 on average vs PPD's 150/255, contrast and texture collapsed
    assert tuned["proxy_mean"] == pytest.approx(0.784, abs=0.01) and tuned["ppd_proxy_mean"] == pytest.approx(150 / 255)
    assert tuned["proxy_ci_low"] < tuned["proxy_mean"] < tuned["proxy_ci_high"]
    assert set(tuned["flags"].split(";")) == {"beyond_ppd", "proxy_up_heldout_down", "collapse"}
    # best-of-2 raised the proxy (significantly) but nothing held-out degraded, and it stays below the PPD
    assert best2["proxy_delta_ci_low"] > 0 and best2["proxy_mean"] < best2["ppd_proxy_mean"]
    assert pd.isna(best2["flags"]) and pd.isna(diag.loc["own", "flags"])
    # the Δ columns are the results' paired Δs
    res = outcome.results.set_index(["row", "column"])
    assert tuned["delta_contrast"] == pytest.approx(res.loc[("tuned", "contrast"), "delta"])
    md = (run / "table.md").read_text()
    assert "⚠ **beyond_ppd** — tuned / rm" in md and "⚠ **collapse**" in md and "best2 / rm" not in md.split("Flags:")[1]


def test_report_card_written_and_rendered(monitored):
    _, _, _, run = monitored
    card = json.loads((run / "scorers" / "rm.json").read_text())
    assert card["heldout_auc"] == 1.0 and card["n_heldout_ppd"] == 4 and card["used_by"] == ["best2", "tuned"]
    # every held-out PPD image scores 150/255, generated ones ≈ 100/255 ⇒ bins .5-.6 (all PPD) and .3-.4 / .4-.5
    scores = np.array(card["heldout_scores"]["ppd"] + card["heldout_scores"]["generated"])
    labels = np.r_[np.ones(4), np.zeros(4)]
    assert card["ece"] == pytest.approx(expected_calibration_error(scores, labels))
    assert (run / "scorers" / "rm.png").stat().st_size > 1000
    md = (run / "table.md").read_text()
    assert "| rm | 16 | 1.000 [1.000, 1.000]" in md
    assert not (run / "scorers" / "bright.json").exists()  # a pretrained scorer has no card


def test_warm_run_writes_the_same_card_without_retraining(monitored, tmp_path):
    spec, store, cold, run = monitored
    warm = run_spec(spec, Context(store=store))
    assert sum(warm.computed.values()) == 0
    assert warm.monitor.cards["rm"]["heldout_auc"] == cold.monitor.cards["rm"]["heldout_auc"]
    pd.testing.assert_frame_equal(warm.monitor.diagnostics, cold.monitor.diagnostics)


def test_own_selector_column_is_marked_and_warned(monitored):
    spec, store, outcome, run = monitored
    marked = outcome.results[~outcome.results["heldout"].astype(bool)]
    assert set(zip(marked["row"], marked["column"])) == {("own", "bright")}
    md = (run / "table.md").read_text()
    assert "0.396 ± 0.005*" in md and "not held-out" in md
    tex = (run / "table.tex").read_text()
    assert tex.count("$^*$") == 2  # the cell and the caption
    warnings = heldout_warnings(spec, Context(store=store))
    assert len(warnings) == 1 and "'own'" in warnings[0] and "'bright'" in warnings[0]


def test_a_failing_monitor_never_fails_the_table(monitored, tmp_path, monkeypatch):
    spec, store, _, _ = monitored
    import ganrm_bench.harness.diagnostics.monitor as monitor

    def broken(*a, **k):
        raise RuntimeError("diagnostics exploded")

    monkeypatch.setattr(monitor, "diagnostics_table", broken)
    outcome = run_spec(spec, Context(store=store))
    assert not outcome.failures and len(outcome.results) == 12
    write_run(tmp_path / "run", spec, "x", outcome.results, {}, None, None, None, outcome.monitor)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert any("diagnostics exploded" in e for e in info["diagnostics_errors"])
    assert (tmp_path / "run" / "table.md").exists() and not (tmp_path / "run" / "diagnostics.csv").exists()
    assert (tmp_path / "run" / "scorers" / "rm.json").exists()  # the cards still came


def test_round_figure_from_records(tmp_path):
    from ganrm_bench.harness.diagnostics.monitor import write_round_figure

    spec = load_spec(HELPERS / "monitor_spec.yaml")
    records = pd.DataFrame([{"row": f"r{n}", "seed": 0, "op": "reward_stats", "round": r, "mean": 0.5 + 0.1 * r, "var": 0.01}
                            for n in (1, 2) for r in range(1, n + 1)])
    results = pd.DataFrame([{"row": row, "column": col, "seed": 0, "scope": "seed", "value": v, "ci_low": v - 1, "ci_high": v + 1,
                             "compare_to": None if row == "b" else "b"}
                            for row, v in (("b", 10.0), ("r1", 9.0), ("r2", 8.0)) for col in ("contrast", "texture", "bright")])
    path = write_round_figure(tmp_path, spec, results, records)
    assert path is not None and path.stat().st_size > 5000
    assert write_round_figure(tmp_path / "none", spec, results, records[records["row"] == "r9"]) is None


def test_monitor_never_retrains_a_scorer_the_store_lost(monitored, tmp_path):
    import shutil

    spec, store, cold, _ = monitored
    shutil.copytree(store.root, tmp_path / "store")
    copy = Store(tmp_path / "store")
    shutil.rmtree(copy.path(cold.monitor.cards["rm"]["artifact"]))  # e.g. removed by `cache gc`
    outcome = run_spec(spec, Context(store=copy))
    assert not outcome.failures and outcome.computed["train_scorer"] == 0
    assert "rm" not in outcome.monitor.cards and any("not in the store" in e for e in outcome.monitor.errors)
    assert set(outcome.monitor.diagnostics["row"]) == {"own"}  # the pretrained selector's line is still there


def test_cli_run_and_validate_report_the_monitor(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ganrm_bench.harness.app.cli.main import app

    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    spec, cache = str(HELPERS / "monitor_spec.yaml"), str(tmp_path / "store")
    res = runner.invoke(app, ["run", spec, "--cache", cache, "--out", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "1 of 3 lines flagged" in res.output and "⚠ tuned / rm (seed 0): beyond_ppd;proxy_up_heldout_down;collapse" in res.output
    shown = runner.invoke(app, ["report", str(tmp_path / "run")])
    assert shown.exit_code == 0 and "| rm | 16 | 1.000" in shown.output and "⚠ **beyond_ppd**" in shown.output
    res = runner.invoke(app, ["validate", spec, "--cache", cache])
    assert res.exit_code == 0 and "row 'own' × column 'bright'" in res.output.replace("\n", " ")
