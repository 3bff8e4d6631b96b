"""The public Python API (ganrm_bench.run / load_run / check / Run / GanRM), on the core's toy
plugins and the mini world's backbone: seconds, no hub."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ganrm_bench as gb
from ganrm_bench.harness.app.services.specs import SPECS_DIR, bundled_specs, resolve_spec_path
from ganrm_bench.harness.errors import SpecError, UserError
from ganrm_bench.harness.report.tables import render_markdown
from ganrm_bench.harness.spec.load import apply_overrides, load_spec
from tests.helpers import HELPERS

TOY = HELPERS / "toy_spec.yaml"


@pytest.fixture
def toy_run(tmp_path):
    return gb.run(TOY, out=tmp_path / "run", cache=tmp_path / "cache")


def test_public_names_import_lazily():
    code = "import sys, ganrm_bench as gb; assert gb.__all__; print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert set(gb.__all__) == {"run", "load_run", "check", "compare", "plan", "baseline", "Run", "GanRM", "__version__"}
    assert all(getattr(gb, name) is not None for name in gb.__all__)
    with pytest.raises(AttributeError):
        gb.not_a_name  # noqa: B018


def test_run_returns_results_table_and_dir(toy_run, tmp_path):
    r = toy_run
    assert r.dir == tmp_path / "run" and (r.dir / "results.parquet").exists()
    assert r.spec.name == "toy" and r.failures == []
    assert list(r.results["row"]) == ["base", "best4", "best2"]
    assert (r.results["n"] == 6).all()
    # the same table the CLI renders, and the results.csv the run wrote
    assert r.table() == (r.dir / "table.md").read_text() and r.table().startswith(render_markdown(r.results, r.spec))
    assert "\\begin{tabular}" in r.table("latex")
    pd.testing.assert_frame_equal(pd.read_csv(pd.io.common.StringIO(r.table("csv"))), pd.read_csv(r.dir / "results.csv"))
    assert r.table("html").lower().startswith("<!doctype html>")
    with pytest.raises(UserError, match="markdown, latex, csv or html"):
        r.table("pdf")


def test_run_uses_the_store_seeds_and_overrides(toy_run, tmp_path):
    again = gb.run(TOY, out=tmp_path / "again", cache=tmp_path / "cache")
    assert again.info["computed"] == {} and sum(again.info["loaded"].values()) > 0
    pd.testing.assert_frame_equal(again.results, toy_run.results)
    r = gb.run(TOY, out=tmp_path / "small", cache=tmp_path / "cache", seeds=[1, 2], overrides={"prompts.eval.n": 3, "table.rows": ["base"]})
    per_seed = r.results[r.results["scope"] == "seed"]
    assert sorted(per_seed["seed"]) == [1, 2] and set(r.results["row"]) == {"base"} and (per_seed["n"] == 3).all()
    assert (r.results[r.results["scope"] == "pooled"]["n"] == 6).all()  # both seeds' samples pooled


def test_load_run_round_trip(toy_run):
    loaded = gb.load_run(toy_run.dir)
    pd.testing.assert_frame_equal(loaded.results, toy_run.results)
    assert loaded.spec == toy_run.spec and loaded.table() == toy_run.table()
    assert loaded.info["spec_path"] == str(TOY)
    with pytest.raises(UserError, match="not a run directory"):
        gb.load_run(toy_run.dir / "figures-nope")


def test_run_exposes_units_diagnostics_and_report_cards(tmp_path):
    """`Run.units`, `.diagnostics` and `.cards` are the run directory's units.parquet,
    diagnostics.csv and scorers/*.json, from `run` and from `load_run` alike."""
    r = gb.run(HELPERS / "monitor_spec.yaml", out=tmp_path / "run", cache=tmp_path / "cache")
    pd.testing.assert_frame_equal(r.units, pd.read_parquet(r.dir / "units.parquet"))
    assert set(r.units["row"]) == set(r.spec.table.rows)
    pd.testing.assert_frame_equal(r.diagnostics, pd.read_csv(r.dir / "diagnostics.csv"))
    assert set(r.diagnostics["row"]) == {"best2", "tuned", "own"}  # the rows some scorer judged
    assert "collapse" in r.diagnostics.set_index("row").loc["tuned", "flags"]
    assert list(r.cards) == ["rm"] and r.cards["rm"] == json.loads((r.dir / "scorers" / "rm.json").read_text())
    assert 0.5 < r.cards["rm"]["heldout_auc"] <= 1
    loaded = gb.load_run(r.dir)
    pd.testing.assert_frame_equal(loaded.units, r.units)
    pd.testing.assert_frame_equal(loaded.diagnostics, r.diagnostics)
    assert loaded.cards == r.cards
    # a run whose rows no scorer judged has no diagnostics and no cards
    base = gb.run(HELPERS / "monitor_spec.yaml", out=tmp_path / "base", cache=tmp_path / "cache", overrides={"table.rows": ["base"]})
    assert base.diagnostics is None and base.cards == {} and set(base.units["row"]) == {"base"}


def test_check_finds_a_planted_regression(toy_run):
    assert gb.check(toy_run, toy_run.dir).passed
    assert gb.check(toy_run.dir, toy_run.dir / "results.csv").passed
    better = toy_run.results.copy()
    better.loc[better["row"] == "best4", "value"] += 10.0  # the baseline was 10 brighter: we regressed by 10
    report = gb.check(toy_run, better)  # no margin: the paper band (5) is not one
    problems = [c.line() for c in report.failures]
    assert not report.passed and len(problems) == 1
    assert problems[0].startswith("FAIL best4 × brightness") and "vs margin 0;" in problems[0]
    assert gb.check(toy_run, better, margin={"brightness": 20}).passed
    assert gb.check(toy_run, better, tolerance={"brightness": 20}).passed  # the old name


def test_run_accepts_a_loaded_spec_with_overrides(tmp_path):
    spec = load_spec(TOY)
    r = gb.run(spec, out=tmp_path / "r", cache=tmp_path / "c", overrides={"prompts.eval.n": 2})
    assert (r.results["n"] == 2).all()
    with pytest.raises(SpecError, match="no generator named 'gne'"):
        gb.run(spec, out=tmp_path / "r2", cache=tmp_path / "c", overrides={"methods.base.generator": "gne"})


def test_apply_overrides_sets_dotted_paths_without_touching_the_input():
    raw = {"generators": {"mini": {"generator": "g", "steps": 10}}, "table": {"rows": ["a"]}}
    out = apply_overrides(raw, {"generators.mini.steps": 4, "generators.mini.eta": 0.5, "table.rows": ["b", "c"], "runtime.device": "cpu"})
    assert out == {"generators": {"mini": {"generator": "g", "steps": 4, "eta": 0.5}}, "table": {"rows": ["b", "c"]}, "runtime": {"device": "cpu"}}
    assert raw["generators"]["mini"]["steps"] == 10 and raw["table"]["rows"] == ["a"]
    with pytest.raises(SpecError, match=r"generatros: no such key to set; did you mean 'generators'"):
        apply_overrides(raw, {"generatros.mini.steps": 4})
    with pytest.raises(SpecError, match=r"table\.rows\.x: table\.rows is not a mapping"):
        apply_overrides(raw, {"table.rows.x": 1})


def test_overrides_are_validated_like_the_file(tmp_path):
    with pytest.raises(SpecError, match=r"prompts\.eval\.n: expected an integer"):
        gb.run(TOY, out=tmp_path / "r", overrides={"prompts.eval.n": "many"})
    assert not (tmp_path / "r").exists()


def test_shipped_specs_resolve_by_name(tmp_path, monkeypatch):
    assert resolve_spec_path("mini/table1") == resolve_spec_path("mini/table1.yaml") == SPECS_DIR / "mini" / "table1.yaml"
    assert {"mini/table1", "mini/table9", "table1"} <= set(bundled_specs()) and "mini/common" not in bundled_specs()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mini").mkdir()
    (tmp_path / "mini" / "table1.yaml").write_text("name: mine\n")
    assert resolve_spec_path("mini/table1") == resolve_spec_path("mini/table1.yaml") == Path("mini/table1.yaml")  # a local file wins
    with pytest.raises(UserError, match="spec file not found"):
        gb.run("mini/no_such_table")


def _batch(level: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(level, 0.1, (n, 3, 16, 16)), 0, 1).astype(np.float32)


def test_ganrm_trains_on_tensors_scores_saves_and_loads(tmp_path):
    import torch

    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store

    ctx = Context(store=Store(tmp_path / "store"))
    bright, dark = torch.from_numpy(_batch(0.8, 24, 1)), torch.from_numpy(_batch(0.2, 24, 2))
    rm = gb.GanRM.train(bright, dark, backbone="mini_conv", variant="naive", epochs=20, seed=0, ctx=ctx)
    test_bright, test_dark = torch.from_numpy(_batch(0.8, 8, 3)), torch.from_numpy(_batch(0.2, 8, 4))
    s_bright, s_dark = rm.score_tensor(test_bright), rm.score_tensor(test_dark)
    assert s_bright.shape == (8,) and ((0 <= s_bright) & (s_bright <= 1)).all()
    assert s_bright.min() > s_dark.max()  # the PPD side (bright) scores higher on held-out images
    # channels-last uint8 arrays are the same images as channels-first floats
    hwc = (test_bright.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    torch.testing.assert_close(rm.score_tensor(hwc), s_bright)
    loaded = gb.GanRM.load(rm.save(tmp_path / "ckpt"))
    torch.testing.assert_close(loaded.score_tensor(test_bright), s_bright)
    # `score`: the same values as a Series, by position for in-memory images
    series = rm.score(test_bright)
    assert series.name == "reward" and list(series.index) == list(range(8)) and np.array_equal(series.to_numpy(), s_bright.numpy())


def test_ganrm_trains_and_scores_from_folders(tmp_path):
    from PIL import Image

    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store

    folders = {}
    for name, level, seed in (("ppd", 0.8, 1), ("gen", 0.2, 2), ("test", 0.8, 3)):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        for i, im in enumerate(_batch(level, 12, seed)):
            Image.fromarray((im.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(folders[name] / f"{i:02d}.png")
    ctx = Context(store=Store(tmp_path / "store"))
    rm = gb.GanRM.train(folders["ppd"], str(folders["gen"]), backbone="mini_conv", variant="naive", epochs=20, ctx=ctx)
    from_folder = rm.score(folders["test"], ctx)
    files = sorted(folders["test"].glob("*.png"))
    # one reward per file, labelled by the file: the folder's in sorted order, a list's as given
    assert list(from_folder.index) == [str(f.resolve()) for f in files]
    shuffled = files[::-1]
    from_list = rm.score(shuffled)
    assert list(from_list.index) == [str(f) for f in shuffled]
    assert np.allclose([from_list[str(f)] for f in files], from_folder.to_numpy(), atol=1e-6)
    assert from_folder.mean() > rm.score(folders["gen"], ctx).mean()
    with pytest.raises(UserError, match="not a folder of images"):
        rm.score(str(tmp_path / "nope"))


def _png_folder(path: Path, level: float, n: int, seed: int) -> Path:
    from PIL import Image

    path.mkdir()
    for i, im in enumerate(_batch(level, n, seed)):
        Image.fromarray((im.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(path / f"{i:02d}.png")
    return path


def test_ganrm_readme_example_works_with_60_and_60_images(tmp_path):
    """The README's `GanRM.train("ppd/", "gen/", ...)` with as many generated images as PPD ones:
    nothing is left over to rank for the paper's bootstrap, so the default is naive, said in a
    warning; with more generated images than PPD ones the default stays bootstrap."""
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store

    ctx = Context(store=Store(tmp_path / "store"))
    ppd, gen = _png_folder(tmp_path / "ppd", 0.8, 60, 1), _png_folder(tmp_path / "gen", 0.2, 60, 2)
    with pytest.warns(UserWarning, match="variant 'naive'.*60 PPD and 60 generated leave 0 over"):
        rm = gb.GanRM.train(ppd, gen, backbone="mini_conv", epochs=5, ctx=ctx)
    assert rm.config["training"]["variant"] == "naive"
    assert repr(rm).startswith("GanRM(variant='naive', backbone='mini_conv', features=")
    assert "models=1" in repr(rm) and "trained on 60 PPD / 60 generated" in repr(rm) and "held-out AUC" in repr(rm)
    scores = rm.score(ppd, ctx)
    assert len(scores) == 60 and scores.index[0].endswith("ppd/00.png")
    more = _png_folder(tmp_path / "more", 0.3, 60, 3)
    boot = gb.GanRM.train(ppd, list(gen.glob("*.png")) + list(more.glob("*.png")), backbone="mini_conv", epochs=5, ctx=ctx)
    assert boot.config["training"]["variant"] == "bootstrap" and boot.metrics["bootstrap_pool_size"] == 60
    with pytest.raises(UserError, match="needs more generator outputs"):  # a variant asked for is never swapped
        gb.GanRM.train(ppd, gen, backbone="mini_conv", epochs=5, ctx=ctx, variant="bootstrap")


def test_progress_bars_on_a_terminal_or_in_jupyter_only(monkeypatch, capsys):
    import types

    from ganrm_bench.harness.runtime.progress import Progress

    monkeypatch.setenv("GANRM_BENCH_PROGRESS", "1")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    piped = Progress.auto()
    assert piped.enabled and piped.lines  # a pipe or log file: no bars, a plain line every few seconds
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: type("ZMQInteractiveShell", (), {})()))
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # a notebook without ipywidgets: rich would only warn
    bars = Progress.auto()
    assert bars.enabled and bars.style == "text"
    with bars.task("scoring", 5) as advance:
        advance(5)
    drawn = capsys.readouterr().err
    assert "scoring" in drawn and "5/5" in drawn
    monkeypatch.setenv("GANRM_BENCH_PROGRESS", "0")
    assert not Progress.auto().enabled


def test_cli_finds_shipped_specs_by_name(tmp_path):
    from typer.testing import CliRunner

    from ganrm_bench.harness.app.cli.main import app

    result = CliRunner().invoke(app, ["validate", "mini/table1"])
    assert result.exit_code == 0 and "ok mini/table1: 5 methods, 3 metrics" in result.output
    missing = CliRunner().invoke(app, ["validate", "mini/no_such_table"])
    assert missing.exit_code != 0 and "spec file not found" in str(missing.exception)
