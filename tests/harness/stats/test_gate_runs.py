"""`check` through real runs of the toy world with a set metric (tests/helpers/toy_gate_spec.yaml:
FID over 8-d features, a trained reward model's best-of-K rows): what issue 25 asks of it.

- a seed-0 run passes against a three-seed baseline of the same code and machine (the baseline's
  pooled cells, at three times the N, are not compared with it);
- a three-seed run with a planted +5 FID regression fails against it;
- an unchanged commit from another numerics class passes (trained cells carry training variance);
- the output names the matching, the margins and the correction (service, API and CLI alike)."""

import json
import shutil

import pytest

from tests.helpers import HELPERS
from tests.helpers.clirun import ganrm

SPEC = HELPERS / "toy_gate_spec.yaml"
PLANTED = 8.3  # generator brightness: features (row means / 10) move by 0.83 in 8 dims, FID by ≈ 8·0.83² ≈ 5.5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """run(name, seeds, overrides) -> its run directory, in one cache; `baseline` is the three-seed baseline folder."""
    from ganrm_bench.harness.app.services import report as report_service
    from ganrm_bench.harness.app.services import run as run_service

    root = tmp_path_factory.mktemp("gate-runs")
    done = {}

    def run(name, seeds, overrides=None):
        if name not in done:
            run_service.run(SPEC, seeds=seeds, overrides=overrides, cache=root / "cache", out=root / name)
            done[name] = root / name
        return done[name]

    report_service.baseline(run("base3", [0, 1, 2]), root / "baseline")
    run.baseline = root / "baseline"
    return run


def test_a_seed_0_run_passes_against_a_three_seed_baseline(runs):
    from ganrm_bench.harness.app.services.check import check
    from ganrm_bench.harness.report.rundir import load_run

    rep = check(runs("seed0", [0]), runs.baseline)
    assert rep.passed, rep.lines()
    assert {c.scope for c in rep.cells} == {"seed 0"}
    assert all(c.verdict.difference.estimate == 0 and c.verdict.difference.paired for c in rep.cells)
    assert {c.row for c in rep.cells if c.conditional} == {"best4", "best2"}  # trained rows on one seed
    text = "\n".join(rep.lines())
    assert "matched seeds 0 (run 0; baseline 0,1,2)" in text
    assert "pooled cells not compared: the run has no pooled cell, the baseline pools seeds 0+1+2 (N 180)" in text
    # what pairing the seed-0 cell with the pooled one (the old rule) would have compared: FID's small-N
    # bias makes seed 0's FID larger than the pool's by more than the pool's own standard error
    base, _ = load_run(runs.baseline)
    fid = base[(base["row"] == "base") & (base["column"] == "fid")].set_index("scope")
    assert fid.loc["seed"].query("seed == 0")["value"].iloc[0] - fid.loc["pooled", "value"] > 2 * fid.loc["pooled", "se"]


def test_a_planted_fid_regression_fails_and_a_margin_above_it_passes(runs):
    from ganrm_bench.harness.app.services.check import check
    from ganrm_bench.harness.report.rundir import load_run

    worse = runs("planted", [0, 1, 2], {"generators.gen.brightness": PLANTED})
    rep = check(worse, runs.baseline)
    results, _ = load_run(worse)
    base, _ = load_run(runs.baseline)
    pooled = lambda f: f[(f["row"] == "base") & (f["column"] == "fid") & (f["scope"] == "pooled")]["value"].iloc[0]  # noqa: E731
    assert 4.0 < pooled(results) - pooled(base) < 7.0  # the planted regression: about +5 FID
    failed = {(c.row, c.column) for c in rep.failures}
    assert ("base", "fid") in failed and not rep.passed
    line = next(c.line() for c in rep.cells if (c.row, c.column) == ("base", "fid"))
    assert line.startswith("FAIL base × fid↓ [pooled seeds 0+1+2]") and "Holm p" in line
    trained = next(c for c in rep.cells if (c.row, c.column) == ("best4", "fid"))
    assert trained.scope == "seeds 0,1,2" and trained.verdict.difference.basis == "seeds"
    assert check(worse, runs.baseline, margin={"fid": 20.0}).passed  # within a 20-point margin: allowed


def test_an_unchanged_commit_from_another_numerics_class_passes(runs, tmp_path):
    from ganrm_bench.harness.app.services.check import check

    other = tmp_path / "other"
    shutil.copytree(runs("seed0", [0]), other)
    info = json.loads((other / "run.json").read_text())
    info["numerics"] = {**info["numerics"], "class": "cuda+tf32", "device": "cuda", "gpu": "H100"}  # a CUDA run's record
    (other / "run.json").write_text(json.dumps(info))
    rep = check(other, runs.baseline)
    assert rep.passed, rep.lines()
    assert any(n.startswith("numerics: run and baseline were computed under different numerics (run vs baseline: device: cuda vs cpu")
               for n in rep.notes)
    trained = [c for c in rep.cells if c.row == "best4"]
    assert trained and all(c.verdict.difference.basis == "training" for c in trained)
    unknown = tmp_path / "baseline-without-numerics"
    shutil.copytree(runs.baseline, unknown)
    info = json.loads((unknown / "run.json").read_text())
    info.pop("numerics")
    (unknown / "run.json").write_text(json.dumps(info))
    assert any("the baseline's run.json has no numerics record" in n for n in check(runs("seed0", [0]), unknown).notes)


def test_the_baseline_records_the_seeds_it_ran(runs):
    assert json.loads((runs.baseline / "run.json").read_text())["seeds"] == [0, 1, 2]


def test_cli_and_api_print_matching_margins_and_correction(runs, capsys):
    """The command through its entry point in-process (tests.helpers.clirun: the same `main` and streams)."""
    import ganrm_bench as gb

    seed0 = runs("seed0", [0])
    code, stdout, stderr = ganrm(capsys, "check", seed0, "--baseline", runs.baseline, "--margin", "fid=2")
    assert code == 0, stdout + stderr
    head = stdout.splitlines()[:3]
    assert head[0].startswith("matched seeds 0 (run 0; baseline 0,1,2): ")
    assert head[1] == "margins brightness=1 (spec gate), fid=2 (--margin)"
    assert head[2].startswith("Holm over 6 cells: family-wise error ≤ 5%")
    assert "‡ conditional on this trained model" in stdout and "tolerance" not in stdout
    api = gb.check(seed0, runs.baseline, margin={"fid": 2})
    assert stdout.splitlines()[:len(api.lines())] == api.lines()  # one service: the same lines
    code, old, _ = ganrm(capsys, "check", seed0, "--baseline", runs.baseline, "--tolerance", "fid=2", "--no-correction")
    assert code == 0 and "no correction: each of 6 cells at 5%" in old and "fid=2 (--margin)" in old
