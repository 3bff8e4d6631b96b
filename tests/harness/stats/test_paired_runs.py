"""Paired Δ columns, pooled seeds, `--set` overrides and the regression gate through real runs of the
toy plugins (runner, run directory, CLI)."""

import json
import math
import subprocess
import sys

import pytest
from scipy import stats

from tests.helpers import HELPERS
from tests.helpers.clirun import ganrm

SPEC = HELPERS / "toy_spec.yaml"


def run(spec_overrides, tmp_path, seeds):
    from ganrm_bench.harness.engine.runner import run_spec
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.spec.load import load_spec
    from ganrm_bench.harness.store.artifacts import Store

    spec = load_spec(SPEC, spec_overrides)
    return spec, run_spec(spec, Context(store=Store(tmp_path / "cache")), seeds=seeds)


def test_pooled_cells_cover_every_seed_and_get_paired_deltas(tmp_path):
    spec, out = run({"prompts.eval.n": 40}, tmp_path, [0, 1, 2])
    r = out.results
    assert not out.failures
    pooled = r[r["scope"] == "pooled"].set_index("row")
    single = r[(r["scope"] == "seed") & (r["seed"] == 0)].set_index("row")
    assert set(pooled.index) == {"base", "best4", "best2"} and (pooled["seed"] == -1).all()
    assert (pooled["n"] == 3 * single["n"]).all()
    # the pooled value is the mean over every seed's samples: with equal n, the mean of the seed values
    for row in pooled.index:
        seeds = r[(r["row"] == row) & (r["scope"] == "seed")]["value"]
        assert pooled.loc[row, "value"] == pytest.approx(seeds.mean())
    assert set(pooled["seeds"]) == {"0+1+2"} and set(single["seeds"]) == {"0"}
    # best-of-K selects with a trained reward model: a trained row; base is not
    assert not pooled.loc["base", "trained"] and pooled.loc["best4", "trained"] and single.loc["best4", "trained"]
    # Δ against the first row (base); base itself has none. A seed's Δ is paired by prompt and, the row
    # being trained, conditional on that seed's reward model
    assert math.isnan(pooled.loc["base", "delta"]) and pooled.loc["best4", "compare_to"] == "base"
    assert single.loc["best4", "paired"] and single.loc["best4", "delta_basis"] == "conditional"
    assert single.loc["best4", "delta_method"].startswith("paired bootstrap over 40 prompts")
    assert "conditional on this trained model" in single.loc["best4", "delta_method"]
    # the pooled Δ of a trained row: centred on the pooled difference, a t interval (2 df) across the seeds' Δs
    per_seed = r[(r["row"] == "best4") & (r["scope"] == "seed")]["delta"].to_numpy()
    best4 = pooled.loc["best4"]
    assert best4["delta"] == pytest.approx(best4["value"] - pooled.loc["base", "value"])
    assert best4["delta_basis"] == "seeds" and best4["delta_df"] == 2
    assert best4["delta_se"] == pytest.approx(per_seed.std(ddof=1) / math.sqrt(3))
    half = stats.t.ppf(0.975, 2) * per_seed.std(ddof=1) / math.sqrt(3)
    assert best4["delta_ci_high"] - best4["delta"] == pytest.approx(half)
    # each cell's own se: the standard error of a mean over prompts (one sample a prompt and seed)
    base0 = r[(r["row"] == "base") & (r["seed"] == 0)].iloc[0]
    assert base0["se"] == pytest.approx((base0["ci_high"] - base0["ci_low"]) / 2 / 1.96, rel=0.05) and math.isinf(base0["df"])
    # units for every cell and scope
    assert set(zip(out.units["row"], out.units["seed"])) >= {(row, s) for row in pooled.index for s in (0, 1, 2, -1)}


def test_markdown_shows_delta_columns_and_the_convention(tmp_path):
    from ganrm_bench.harness.report.tables import render_markdown

    spec, out = run({"prompts.eval.n": 20}, tmp_path, [0, 1])
    md = render_markdown(out.results, spec)
    header = next(line for line in md.splitlines() if line.startswith("| method"))
    assert "Δ brightness" in header
    assert "paired difference to base" in md and "pooled" in md
    base_line = next(line for line in md.splitlines() if line.startswith("| base"))
    assert base_line.rstrip(" |").endswith("–")  # the comparison row has no Δ


def test_overrides_are_validated_and_reach_the_keys(tmp_path):
    from ganrm_bench.harness.errors import SpecError
    from ganrm_bench.harness.spec.load import load_spec

    with pytest.raises(SpecError, match=r"prompts.evl: no such key to set; did you mean 'eval'"):
        load_spec(SPEC, {"prompts.evl.n": 4})
    with pytest.raises(SpecError, match=r"prompts.eval.n"):
        load_spec(SPEC, {"prompts.eval.n": "many"})
    _, a = run({}, tmp_path, [0])
    _, b = run({"generators.gen.brightness": 5}, tmp_path, [0])
    ka, kb = set(a.results["key"]), set(b.results["key"])
    assert not ka & kb  # every cell's key changed with the generator
    assert b.computed["pool"] > 0


def run_like_cli(tmp_path, name, *sets):
    """`ganrm-bench run SPEC --seed 0 --seed 1 --set prompts.eval.n=30 [--set ...] --out tmp_path/name`, in-process
    through the service the command calls (with the same string overrides): the runs are the check's input, not
    what this test is about, and each subprocess would cost seconds of start-up."""
    from ganrm_bench.harness.app.services.run import run

    done = run(SPEC, seeds=[0, 1], overrides=["prompts.eval.n=30", *sets], cache=tmp_path / "cache", out=tmp_path / name)
    assert not done.outcome.failures, done.outcome.failures
    return done.run_dir


def test_check_catches_a_planted_regression_and_passes_noise_within_tolerance(tmp_path, counters, capsys):
    """`check` through the entry point: in-process (tests.helpers.clirun, the same `main`, its exit codes and
    messages) except the failing check, which runs as a real `ganrm-bench` subprocess."""
    import os

    base = run_like_cli(tmp_path, "base")
    code, out, err = ganrm(capsys, "baseline", base, "--out", tmp_path / "baseline")
    assert code == 0 and (tmp_path / "baseline" / "units.csv").exists(), err
    same = run_like_cli(tmp_path, "same")
    code, out, err = ganrm(capsys, "check", same, "--baseline", tmp_path / "baseline")
    assert code == 0 and "no regression" in out and "UNPAIRED" not in out, out + err

    worse = run_like_cli(tmp_path, "worse", "generators.gen.brightness=-30")
    assert json.loads((worse / "run.json").read_text())["overrides"][-1] == "generators.gen.brightness=-30"
    env = {**os.environ, "GANRM_BENCH_CACHE": str(tmp_path / "cache"), "GANRM_BENCH_PROGRESS": "0"}
    bad = subprocess.run([sys.executable, "-m", "ganrm_bench.harness.app.cli.main", "check", str(worse), "--baseline",
                          str(tmp_path / "baseline"), "--tolerance", "brightness=3"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "FAIL base × brightness" in bad.stderr, bad.stdout + bad.stderr

    slight = run_like_cli(tmp_path, "slight", "generators.gen.brightness=-1")
    code, out, err = ganrm(capsys, "check", slight, "--baseline", tmp_path / "baseline", "--tolerance", "brightness=3")
    assert code == 0, out + err
    line = next(x for x in out.splitlines() if x.startswith("ok") and "base × brightness" in x)
    assert "paired" in line and "detects ≥" in line

    neg = ganrm(capsys, "check", slight, "--baseline", tmp_path / "baseline", "--tolerance", "brightness=-1")
    bogus = ganrm(capsys, "check", slight, "--baseline", tmp_path / "baseline", "--tolerance", "bogus=1")
    assert neg[0] == 2 and "must be ≥ 0" in neg[2] and "Traceback" not in neg[2]
    assert bogus[0] == 2 and "no column 'bogus'" in bogus[2]
