"""`ganrm-bench rm train / score` through typer's CliRunner on a tiny random-init backbone."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from ganrm_bench.methods.ganrm.cli import app
from tests.helpers.ganrm_fixtures import write_images

TINY_ARGS = ["-B", "model=ganrm-tiny-vit", "-B", "pretrained=none"]


def test_train_then_score(image_sets, tmp_path):
    ppd, gen = image_sets
    runner = CliRunner()
    cache, out = str(tmp_path / "cache"), tmp_path / "ckpt"
    res = runner.invoke(app, ["train", str(ppd), str(gen), "--out", str(out), *TINY_ARGS, "--variant", "naive", "--epochs", "30", "--seed", "1", "--cache", cache])
    assert res.exit_code == 0, res.output
    assert "heldout_accuracy" in res.output and "saved GAN-RM (naive)" in res.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["training"]["variant"] == "naive" and cfg["training"]["seed"] == 1
    assert cfg["backbone"]["params"]["model"] == "ganrm-tiny-vit" and cfg["backbone"]["params"]["pretrained"] is None

    bright = write_images(tmp_path / "new", 3, 190, seed=7, prefix="bright")
    dark = write_images(tmp_path / "new", 3, 70, seed=8, prefix="dark")
    res = runner.invoke(app, ["score", str(out), str(tmp_path / "new"), "--csv", str(tmp_path / "s.csv"), "--cache", cache])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "s.csv")
    assert len(df) == 6
    by_name = dict(zip(df.path.str.split("/").str[-1], df.score))
    assert min(by_name[p.name] for p in bright) > max(by_name[p.name] for p in dark)

    res = runner.invoke(app, ["score", str(out), str(bright[0]), "--cache", cache])
    assert res.exit_code == 0 and "bright000.png" in res.output


def test_bad_files_are_named_or_skipped(image_sets, tmp_path):
    ppd, gen = image_sets
    (gen / "corrupt.png").write_bytes(b"garbage")
    runner = CliRunner()
    args = ["train", str(ppd), str(gen), "--out", str(tmp_path / "ckpt"), *TINY_ARGS, "--variant", "naive", "--epochs", "2", "--cache", str(tmp_path / "c")]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "corrupt.png" in res.output and "--skip-bad" in res.output
    res = runner.invoke(app, [*args, "--skip-bad"])
    assert res.exit_code == 0, res.output
    assert "images skipped (unreadable)" in res.output


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(app, ["score", str(tmp_path / "none"), str(tmp_path)])
    assert res.exit_code == 2 and "config.json" in res.output


@pytest.mark.parametrize("rank, shown", [("0", True), ("1", False)])
def test_progress_is_drawn_by_process_0_alone(tmp_path, monkeypatch, rank, shown):
    from ganrm_bench.methods.ganrm.cli import make_context

    monkeypatch.setenv("GANRM_BENCH_PROGRESS", "1")
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert make_context(tmp_path / "cache", "cpu").progress.enabled is shown
