"""The preflight (issue 15, item 3): before computing anything, `run` (and `validate --inputs`) opens
every local input the rows still need and lists every unreadable file at once, with the spec key
to skip them and the cells each failing input breaks; a failure during the run is reported once
per failing artifact, with its cells."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganrm_bench.harness.engine.preflight import check_inputs, require_inputs
from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.errors import UnreadableFilesError, UserError
from ganrm_bench.harness.plugins.sources import FolderImages
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS
from tests.helpers.clirun import ganrm

REPO = HELPERS.parents[1]


def good_png(path: Path, level: int = 120) -> None:
    Image.fromarray(np.full((8, 8, 3), level, dtype=np.uint8)).save(path, format="PNG")


def three_bad_files(folder: Path) -> list[str]:
    """Random bytes, text named .png, a truncated PNG: the issue's three."""
    (folder / "random.png").write_bytes(np.random.default_rng(0).bytes(300))
    (folder / "text.png").write_text("not an image\n")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    (folder / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return ["random.png", "text.png", "truncated.png"]


def ppd_folder(tmp_path: Path, bad: bool = True) -> Path:
    folder = tmp_path / "ppd"
    folder.mkdir()
    for i in range(3):
        good_png(folder / f"good{i}.png", 150 + 10 * i)
    if bad:
        three_bad_files(folder)
    return folder


def test_mini_world_run_names_every_bad_ppd_file_before_computing(tmp_path, capsys, monkeypatch):
    """The commands through `main` in-process (tests.helpers.clirun; an escaping traceback would fail the
    test), on the private store $GANRM_BENCH_CACHE = tmp_path/cache, 250 columns wide (rich reads $COLUMNS)."""
    monkeypatch.setenv("COLUMNS", "250")
    folder = ppd_folder(tmp_path)
    spec = tmp_path / "mine.yaml"
    spec.write_text(f"include: [{REPO / 'benchmarks/mini/table1.yaml'}]\nimages:\n  ppd: {{source: folder, path: {folder}}}\n")
    code, stdout, stderr = ganrm(capsys, "run", spec, "--out", tmp_path / "run")
    assert code == 2, stdout + stderr
    for name in ("random.png", "text.png", "truncated.png"):
        assert stderr.count(str(folder / name)) == 1, stderr  # each named, once
    assert "add `skip_bad: true` to the spec's `images.ppd`" in stderr and "--skip-bad" not in stderr
    assert ("needed by 9 cell(s): rm10 × fid, rm10 × align, rm10 × kid, sft × fid, sft × align, sft × kid, "
            "dpo × fid, dpo × align, dpo × kid") in stderr
    assert "Traceback" not in stderr
    assert not any((tmp_path / "cache" / "objects").iterdir())  # nothing computed, not even the base rows
    code, _, stderr = ganrm(capsys, "validate", spec, "--inputs")
    assert code == 2 and str(folder / "truncated.png") in stderr
    spec.write_text(spec.read_text().replace(f"path: {folder}}}", f"path: {folder}, skip_bad: true}}"))
    code, stdout, stderr = ganrm(capsys, "validate", spec, "--inputs")
    assert code == 0 and "inputs ok" in stdout, stdout + stderr


def test_more_than_twenty_bad_files_list_twenty_then_a_count(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    good_png(folder / "ok.png")
    for i in range(25):
        (folder / f"bad{i:02d}.png").write_text("x")
    with pytest.raises(UnreadableFilesError) as info:
        FolderImages(path=str(folder)).check_inputs(Context(store=Store(tmp_path / "store")))
    msg = info.value.message
    assert "25 unreadable files" in msg and "... and 5 more" in msg and len(info.value.files) == 25
    assert sum(f"bad{i:02d}.png" in msg for i in range(25)) == 20


TOY = (HELPERS / "toy_spec.yaml").read_text().replace("plugins: [toy_plugins.py]", f"plugins: [{HELPERS / 'toy_plugins.py'}]")


def toy_with_inputs(tmp_path: Path, ppd: Path, extra: str = "") -> Path:
    text = TOY.replace("ppd_dummy: {source: toy_images}", f"ppd_dummy: {{source: folder, path: {ppd}}}") + extra
    p = tmp_path / "toy.yaml"
    p.write_text(text)
    return p


def test_every_kind_of_local_input_is_opened_and_reported_together(tmp_path):
    """A folder, a table of images and a prompt file, all bad: one error names all of them."""
    ppd = ppd_folder(tmp_path)
    (tmp_path / "prompts.txt").write_bytes(b"a cat\n\xff\xfe not utf-8\n")
    (tmp_path / "refs.csv").write_text("path\nmissing.png\n")
    extra = ("  listed: {source: table, path: %s}\n" % (tmp_path / "refs.csv"))
    text = TOY.replace("ppd_dummy: {source: toy_images}", f"ppd_dummy: {{source: folder, path: {ppd}}}\n" + extra)
    text = text.replace("eval: {source: toy_prompts, n: 6}", f"eval: {{source: text_file, path: {tmp_path / 'prompts.txt'}}}")
    text = text.replace("brightness: {metric: toy_brightness}", "brightness: {metric: toy_brightness}\n  ref: {metric: toy_ref, reference: listed}")
    (tmp_path / "extra_plugins.py").write_text(
        "from ganrm_bench.harness.plugins.base import MetricResult\nfrom ganrm_bench.harness.plugins.registry import METRICS\n"
        "from tests.helpers.toy_plugins import ToyBrightness\n"
        "@METRICS.register('toy_ref')\nclass ToyRef(ToyBrightness):\n    needs_reference = True\n")
    text = text.replace(f"plugins: [{HELPERS / 'toy_plugins.py'}]", f"plugins: [{HELPERS / 'toy_plugins.py'}, extra_plugins.py]")
    p = tmp_path / "toy.yaml"
    p.write_text(text)
    spec = load_spec(p)
    checks, failed = check_inputs(spec, Context(store=Store(tmp_path / "store")))
    entries = {c.entry: c for c in failed}
    assert set(entries) == {"images.ppd_dummy", "images.listed", "prompts.eval"}
    assert len(entries["images.ppd_dummy"].error.files) == 3
    assert "missing.png" in entries["images.listed"].error.message
    assert "not utf-8 text" in entries["prompts.eval"].error.message
    assert entries["images.ppd_dummy"].cells == ["best4 × brightness", "best4 × ref", "best2 × brightness", "best2 × ref"]
    assert entries["images.listed"].cells == ["base × ref", "best4 × ref", "best2 × ref"]
    with pytest.raises(UserError) as info:
        require_inputs(spec, Context(store=Store(tmp_path / "store")))
    assert str(info.value).startswith("3 input(s) cannot be read; nothing was computed:")


def test_inputs_of_cached_artifacts_are_not_needed_but_are_rechecked_when_a_consumer_is_not(tmp_path, monkeypatch):
    monkeypatch.delenv("TOY_COUNTER_DIR", raising=False)
    ppd = ppd_folder(tmp_path, bad=False)
    store = Store(tmp_path / "store")
    spec = load_spec(toy_with_inputs(tmp_path, ppd))
    assert not run_spec(spec, Context(store=store)).failures
    three_bad_files(ppd)  # every cell is cached: the warm run reads no input
    again = run_spec(spec, Context(store=store))
    assert not again.failures and sum(again.computed.values()) == 0
    path = toy_with_inputs(tmp_path, ppd)
    path.write_text(path.read_text().replace("negatives: {generator: gen, prompts: train, k: 2}", "negatives: {generator: gen, prompts: train, k: 3}"))
    retrain = load_spec(path)  # a new scorer to train reads the (cached) PPD's files again
    with pytest.raises(UserError, match="3 unreadable files"):
        run_spec(retrain, Context(store=store))


def test_a_failing_artifact_is_computed_once_and_reported_once_with_its_cells(tmp_path, monkeypatch):
    import tests.helpers.toy_plugins  # noqa: F401  (registers the toy plugins)
    from ganrm_bench.harness.plugins.registry import SCORERS

    spec = load_spec(HELPERS / "toy_spec.yaml")
    calls = []

    def broken(self, *a, **k):
        calls.append(1)
        raise UserError("the PPD is all black")

    monkeypatch.setattr(SCORERS.get("toy_rm"), "fit", broken)
    out = run_spec(spec, Context(store=Store(tmp_path / "store")))
    assert len(out.failures) == 2 and len(calls) == 1  # two cells need the scorer; it is trained (and fails) once
    assert out.failure_groups == ["2 cells (best4 × brightness (seed 0), best2 × brightness (seed 0)): the PPD is all black"]
