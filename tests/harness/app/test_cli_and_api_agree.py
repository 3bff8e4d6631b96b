"""Every user action through the CLI and through the Python API gives the same answer: both call
one service function (harness.app.services), so a disagreement like `check`'s (paired in one,
unpaired in the other) cannot come back."""

from __future__ import annotations

import pandas as pd
import pytest

import ganrm_bench as gb
from tests.helpers import HELPERS
from tests.helpers.clirun import ganrm, ganrm_uncaptured

TOY = HELPERS / "toy_spec.yaml"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The toy spec (seeds 0 and 1) run by the CLI and by the API on one store; made once for the module,
    since the tests only read the two run directories (what they write goes to their own tmp_path)."""
    root = tmp_path_factory.mktemp("two_runs")
    (root / "counters").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOY_COUNTER_DIR", str(root / "counters"))
        code, _, err = ganrm_uncaptured("run", TOY, "--out", root / "cli", "--cache", root / "cache", "--seed", "0", "--seed", "1")
        assert code == 0, err
        api = gb.run(TOY, out=root / "api", cache=root / "cache", seeds=[0, 1])
        yield root / "cli", api


def test_run_gives_the_same_table(two_runs):
    cli_dir, api = two_runs
    cli = gb.load_run(cli_dir)
    cols = ["row", "column", "seed", "scope", "value", "ci_low", "ci_high", "delta", "delta_ci_low", "delta_ci_high", "key"]
    pd.testing.assert_frame_equal(cli.results[cols], api.results[cols])
    assert (cli_dir / "table.md").read_text() == (api.dir / "table.md").read_text()


@pytest.mark.parametrize("fmt", ["markdown", "latex", "csv"])
def test_report_renders_the_same(two_runs, capsys, fmt):
    cli_dir, _ = two_runs
    code, out, _ = ganrm(capsys, "report", cli_dir, "--format", fmt)
    assert code == 0 and out == gb.load_run(cli_dir).table(fmt)


def test_compare_writes_the_same_page_and_tables(two_runs, capsys, tmp_path):
    """`report RUN RUN --out` and `gb.compare(..., out=)`: the same files, byte for byte; `-o -` prints
    what `.table()` returns. The two runs computed the same samples: every Δ is a paired 0."""
    cli_dir, api = two_runs
    code, _, err = ganrm(capsys, "report", cli_dir, api.dir, "--out", tmp_path / "c_cli")
    assert code == 0, err
    compared = gb.compare(cli_dir, api, out=tmp_path / "c_api")
    for name in ("compare.html", "compare.csv", "compare.md", "compare.tex"):
        assert (tmp_path / "c_cli" / name).read_bytes() == (tmp_path / "c_api" / name).read_bytes(), name
    code, out, _ = ganrm(capsys, "report", cli_dir, api.dir, "-o", "-")
    assert code == 0 and out == compared.table("markdown")
    other = compared.frame[compared.frame["run"] == "api"]
    assert len(other) == 3 and (other["delta"] == 0).all() and other["paired"].all()


def test_baseline_writes_the_same_files(two_runs, capsys, tmp_path):
    cli_dir, _ = two_runs
    assert ganrm(capsys, "baseline", cli_dir, "--out", tmp_path / "b_cli")[0] == 0
    files = gb.baseline(cli_dir, tmp_path / "b_api")
    assert sorted(f.name for f in files) == sorted(p.name for p in (tmp_path / "b_cli").iterdir())
    for f in files:
        assert f.read_bytes() == (tmp_path / "b_cli" / f.name).read_bytes(), f.name


def test_check_gives_the_same_verdicts_cell_for_cell(two_runs, capsys, tmp_path):
    """On an identical re-run both pass; against a baseline whose generator is brighter (same prompts
    and seeds: paired) both fail the same cells with the same lines, exit 1 and `.passed` False."""
    cli_dir, api = two_runs
    code, out, err = ganrm(capsys, "check", cli_dir, "--baseline", api.dir)
    report = gb.check(cli_dir, api.dir)
    assert code == 0 and report.passed and "no regression" in out
    assert out.splitlines()[:len(report.lines())] == report.lines()  # the header (matching, margins, correction), then the cells
    brighter = gb.run(TOY, out=tmp_path / "brighter", cache=api.dir.parent / "cache", seeds=[0, 1],
                      overrides={"generators.gen.brightness": 30}).dir
    code, out, err = ganrm(capsys, "check", cli_dir, "--baseline", brighter)
    report = gb.check(gb.load_run(cli_dir), brighter)
    assert code == 1 and not report.passed
    fails = [line for line in err.splitlines() if line.startswith("FAIL")]
    assert fails and fails == [c.line() for c in report.failures] and all("paired" in line for line in fails)


def test_plan_counts_the_same_work(capsys, tmp_path, counters):
    """A fresh store: the CLI's summary line per seed is what the API's plans count."""
    fresh = tmp_path / "fresh"
    code, out, _ = ganrm(capsys, "plan", TOY, "--cache", fresh, "--seed", "0", "--seed", "3")
    plans = gb.plan(TOY, cache=fresh, seeds=[0, 3])
    assert code == 0 and [p.seed for p in plans] == [0, 3]
    summaries = [line for line in out.splitlines() if " cached, " in line and " to compute" in line]
    assert len(summaries) == 2
    for p, line in zip(plans, summaries):
        assert line.startswith(f"{p.cached} artifact") and f", {p.to_compute} to compute" in line
        assert p.totals["images to generate"] > 0 and f"{p.totals['images to generate']} images to generate" in line
