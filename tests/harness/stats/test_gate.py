"""The gate's matching, margins, Holm correction and training-variance rule on synthetic results
(harness.stats.gate, .matching, .multiple, .twolevel), against hand computations and simulations."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.stats.gate import NO_MARGIN, check_against_baseline
from ganrm_bench.harness.stats.matching import unpaired
from ganrm_bench.harness.stats.multiple import holm_adjust, uncorrected_familywise
from ganrm_bench.harness.stats.paired import Units
from tests.helpers.gate_frames import IDS, frames, world


def test_holm_matches_a_hand_computation():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone 0.06
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, math.nan]) == pytest.approx([0.5, math.nan], nan_ok=True)
    assert uncorrected_familywise(15, 0.05) == pytest.approx(0.5367, abs=1e-4)


def null_cells(rng, cells=15, blocks=10):
    """A run and a baseline with `cells` block-unit cells whose true regression is exactly 0: the
    run's per-block differences are N(0, 1), so each cell's d/se is t with 9 df."""
    rows, units = {"c": [], "b": []}, {"c": [], "b": []}
    for i in range(cells):
        base_loo = rng.normal(30, 1, blocks)
        delta = rng.normal(0, 1, blocks)
        d = delta.mean()
        cand_loo = base_loo + (blocks * d - delta) / (blocks - 1)
        for side, value, loo in (("b", 30.0, base_loo), ("c", 30.0 + d, cand_loo)):
            u = Units.from_jackknife(value, loo, IDS)
            rows[side].append({"spec": "s", "row": f"r{i}", "column": "fid", "seed": 0, "scope": "seed", "value": value,
                               "direction": "lower", "n": 300, "trained": False})
            units[side].extend({"row": f"r{i}", "column": "fid", "seed": 0, **r} for r in u.to_rows())
    return [pd.DataFrame(x) for x in (rows["c"], rows["b"], units["c"], units["b"])]


def test_holm_keeps_the_familywise_error_where_uncorrected_cells_do_not():
    rng = np.random.default_rng(11)
    runs, holm, none = 200, 0, 0
    for _ in range(runs):
        cand, base, cu, bu = null_cells(rng)
        rep = check_against_baseline(cand, base, units=cu, baseline_units=bu)
        holm += not rep.passed
        none += any(c.verdict.p_value <= 0.05 for c in rep.cells)  # what --no-correction decides (each cell at 5 %)
    assert holm / runs <= 0.09  # ≤ 5 % (binomial noise of 200 runs)
    assert none / runs >= 0.4  # 1 − 0.95^15 = 54 %


def test_a_seed_0_run_is_compared_seed_by_seed_against_a_pooled_baseline():
    rng = np.random.default_rng(1)
    base_seeds = world(rng, [0, 1, 2], training_sd=0.3)
    base, bu = frames(base_seeds)
    run, ru = frames({0: base_seeds[0]})  # the same code and machine: seed 0 reproduces exactly
    rep = check_against_baseline(run, base, units=ru, baseline_units=bu)
    assert rep.passed and {c.scope for c in rep.cells} == {"seed 0"}
    assert all(c.verdict.difference.estimate == 0 for c in rep.cells)
    rm = next(c for c in rep.cells if c.row == "rm")
    assert rm.conditional and "conditional on this trained model" in rm.line()
    text = "\n".join(rep.lines())
    assert "matched seeds 0 (run 0; baseline 0,1,2)" in text
    assert "pooled cells not compared: the run has no pooled cell, the baseline pools seeds 0+1+2 (N 600)" in text


def test_unequal_seed_sets_compare_untrained_cells_seed_by_seed_and_trained_cells_across_seeds():
    rng = np.random.default_rng(2)
    base, bu = frames(world(rng, [0, 1, 2], training_sd=0.3))
    run, ru = frames(world(rng, [0, 1], training_sd=0.3))
    rep = check_against_baseline(run, base, units=ru, baseline_units=bu)
    scopes = sorted((c.row, c.scope) for c in rep.cells)
    assert scopes == [("base", "seed 0"), ("base", "seed 1"), ("rm", "seeds 0,1")]
    rm = next(c for c in rep.cells if c.row == "rm").verdict.difference
    assert rm.basis == "seeds" and rm.df == 1
    assert any("pooled cells not compared: the run pools seeds 0+1 (N 400), the baseline pools seeds 0+1+2 (N 600)" in n for n in rep.notes)


def test_trained_cells_across_seeds_use_the_t_over_per_seed_differences():
    rng = np.random.default_rng(3)
    base, bu = frames(world(rng, [0, 1, 2], training_sd=0.3))
    run_seeds = world(rng, [0, 1, 2], training_sd=0.3)
    run, ru = frames(run_seeds)
    rep = check_against_baseline(run, base, units=ru, baseline_units=bu)
    rm = next(c for c in rep.cells if c.row == "rm")
    per_seed = [run[(run.row == "rm") & (run.seed == s)]["value"].iloc[0] - base[(base.row == "rm") & (base.seed == s)]["value"].iloc[0]
                for s in (0, 1, 2)]
    d = rm.verdict.difference
    pooled = lambda f: f[(f.row == "rm") & (f.scope == "pooled")]["value"].iloc[0]  # noqa: E731
    assert d.estimate == pytest.approx(pooled(run) - pooled(base))  # centred on the pooled difference
    assert d.se == pytest.approx(np.std(per_seed, ddof=1) / math.sqrt(3)) and d.df == 2
    assert rm.scope == "seeds 0,1,2" and next(c for c in rep.cells if c.row == "base").scope == "pooled seeds 0+1+2"


def test_another_numerics_class_adds_the_baselines_training_variance():
    rng = np.random.default_rng(4)
    base_seeds = world(rng, [0, 1, 2], training_sd=0.3)
    base, bu = frames(base_seeds)
    run, ru = frames({0: base_seeds[0]})
    same = check_against_baseline(run, base, units=ru, baseline_units=bu)
    other = check_against_baseline(run, base, units=ru, baseline_units=bu, numerics_comparable=False,
                                   numerics_note="the baseline's run.json has no numerics record")
    d_same = next(c for c in same.cells if c.row == "rm").verdict.difference
    d_other = next(c for c in other.cells if c.row == "rm").verdict.difference
    # τ̂² by hand: the between-seed variance of the baseline's per-seed Δ (rm − base)
    deltas = []
    for s in (0, 1, 2):
        b = base[base.seed == s].set_index("row")
        deltas.append(b.loc["rm", "value"] - b.loc["base", "value"])
    tau2 = np.var(deltas, ddof=1)
    assert d_other.basis == "training" and d_other.se == pytest.approx(math.sqrt(d_same.se ** 2 + 2 * tau2))
    assert d_other.df < 3  # Welch–Satterthwaite: dominated by τ̂²'s 2 df
    assert "numerics: the baseline's run.json has no numerics record" in other.lines()


def test_margins_are_named_and_zero_says_so():
    rng = np.random.default_rng(5)
    seeds = world(rng, [0])
    base, bu = frames(seeds)
    worse, wu = frames({0: {r: v - 0.1 for r, v in seeds[0].items()}})
    rep = check_against_baseline(worse, base, units=wu, baseline_units=bu)
    assert not rep.passed and f"q: {NO_MARGIN}" in rep.lines()
    ok = check_against_baseline(worse, base, units=wu, baseline_units=bu, margins={"q": 0.3}, margin_sources={"q": "spec gate"})
    assert ok.passed and "margins q=0.3 (spec gate)" in ok.lines()
    assert check_against_baseline(worse, base, units=wu, baseline_units=bu, tolerance={"q": 0.3}).passed  # the old name
    same = check_against_baseline(base, base, units=bu, baseline_units=bu)
    assert same.passed and all("vs margin 0;" in c.line() for c in same.cells)  # never the float-rounding floor
    with pytest.raises(UserError, match="must be ≥ 0"):
        check_against_baseline(base, base, margins={"q": -1})


def test_output_names_matching_margin_and_correction():
    rng = np.random.default_rng(6)
    base, bu = frames(world(rng, [0, 1, 2], training_sd=0.3))
    rep = check_against_baseline(base, base, units=bu, baseline_units=bu, margins={"q": 0.05})
    head = rep.lines()[:3]
    assert head[0].startswith("matched seeds 0,1,2 (run 0,1,2; baseline 0,1,2): 1 pooled (same seeds, same N); "
                              "1 trained: t across the shared seeds")
    assert head[1] == "margins q=0.05 (--margin)"
    assert head[2] == "Holm over 2 cells: family-wise error ≤ 5% (one-sided)"
    none = check_against_baseline(base, base, units=bu, baseline_units=bu, correction="none")
    assert "no correction: each of 2 cells at 5%; family-wise error up to 10% (if the cells were independent)" in none.lines()


def test_unpaired_fallback_uses_stored_se_or_the_95_percent_ci():
    c = pd.Series({"value": 1.0, "ci_low": 1.0 - 1.96, "ci_high": 1.0 + 1.96})
    b = pd.Series({"value": 0.0, "ci_low": -1.96, "ci_high": 1.96})
    d = unpaired(c, b, 0.90)
    assert d.se == pytest.approx(math.sqrt(2), rel=1e-3) and not d.paired  # half-width / z₀.₉₇₅, not / z₀.₉₅
    stored = unpaired(pd.Series({**c, "se": 0.5, "df": 9.0}),
                      pd.Series({**b, "se": 0.5, "df": 9.0}), 0.90)
    assert stored.se == pytest.approx(math.sqrt(0.5)) and stored.df == pytest.approx(18.0)
    assert stored.ci_high - stored.estimate == pytest.approx(stats.t.ppf(0.95, 18.0) * math.sqrt(0.5))


def test_no_seed_in_common_is_refused():
    rng = np.random.default_rng(7)
    base, bu = frames(world(rng, [0]))
    run, ru = frames({5: world(rng, [5])[5]})
    with pytest.raises(UserError, match="no seed in common"):
        check_against_baseline(run, base, units=ru, baseline_units=bu)
