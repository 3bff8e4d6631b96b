"""Bad input gives one clear message with exit 2 (never a traceback), and hints that fit where the
user is: flags on the command line, spec keys in a spec."""

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganrm_bench.harness.errors import SpecError, UserError
from ganrm_bench.harness.plugins.registry import Registry
from ganrm_bench.harness.spec.load import load_spec
from tests.helpers import HELPERS
from tests.helpers.clirun import ganrm  # noqa: E402

TOY = f"""spec_version: 1
name: t
plugins: [{HELPERS / 'toy_plugins.py'}]
generators: {{gen: {{generator: toy_pattern}}}}
prompts: {{eval: {{source: toy_prompts}}}}
methods: {{base: {{method: toy_base, generator: gen, prompts: eval}}}}
metrics: {{brightness: {{metric: toy_brightness}}}}
"""


def one_clean_line(err: str) -> str:
    assert "Traceback" not in err and "ValidationError" not in err and "pydantic" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.lstrip().startswith("hint:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def images(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(d / f"{i}.png")
    return d


@pytest.mark.parametrize("args, expected", [
    (("--backbone", "mini_conv", "-B", "widht=64"), "-B widht: unknown key; did you mean 'width'?"),
    (("--backbone", "mini_conv", "-B", "width=abc"), "-B width: expected an integer, got 'abc'"),
    (("--backbone", "mini_conv", "--epochs", "0"), "--epochs: input should be greater than or equal to 1"),
    (("--backbone", "mini_conv", "--lr", "-1"), "--lr: input should be greater than 0"),
    (("--backbone", "mini_conv", "--device", "gpu"), "device 'gpu' is not one of auto, cpu, cuda, cuda:N, mps"),
])
def test_rm_train_bad_values(tmp_path, capsys, images, args, expected):
    code, _, err = ganrm(capsys, "rm", "train", images, images, "--out", tmp_path / "ck", "--cache", tmp_path / "c", *args)
    assert code == 2 and expected in one_clean_line(err)
    assert not (tmp_path / "ck").exists()


def test_rm_train_refuses_to_overwrite_a_checkpoint(tmp_path, capsys, images):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "config.json").write_text("{}")
    code, _, err = ganrm(capsys, "rm", "train", images, images, "--out", ck, "--backbone", "mini_conv")
    assert code == 2 and "--overwrite" in err and (ck / "config.json").read_text() == "{}"


def test_rm_hints_use_flags_not_spec_syntax():
    from ganrm_bench.methods.ganrm.cli import as_flags

    hint = "pass `checkpoint: /path/to/open_clip_model.safetensors`, or set `download: true`; `width: 3` is not a param"
    assert as_flags(hint, "openclip") == ("pass `-B checkpoint=/path/to/open_clip_model.safetensors`, or set "
                                          "`-B download=true`; `width: 3` is not a param")
    assert "--skip-bad" in as_flags("remove or fix the file, or set `skip_bad: true` on the entry to skip", None)


def test_rm_score_of_a_mistyped_path_does_not_suggest_skip_bad(tmp_path, capsys, images, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = ganrm(capsys, "rm", "score", tmp_path / "ck", "imgs/0.png")
    assert code == 2  # no checkpoint: reported before the images
    from ganrm_bench.harness.plugins.sources import items_from_files
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store

    with pytest.raises(UserError) as exc:
        items_from_files([(Path("imgs/9.png"), {})], Context(store=Store(tmp_path / "c")), what="score", skip_bad=False, full_check=True)
    assert "skip" not in str(exc.value) and "working directory" in str(exc.value)


def test_run_time_skip_hint_names_the_spec_key(tmp_path, images):
    from ganrm_bench.harness.plugins.sources import FolderImages
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store

    (images / "9.png").write_bytes(b"not a png")
    with pytest.raises(UserError) as exc:
        FolderImages(path=str(images)).load(Context(store=Store(tmp_path / "c")))
    assert "`skip_bad: true`" in exc.value.hint and "--skip-bad" not in str(exc.value)


def test_relative_folder_not_found_says_working_directory(tmp_path, monkeypatch):
    from ganrm_bench.harness.plugins.sources import FolderImages

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=f"relative path is looked up from the working directory {tmp_path}"):
        FolderImages(path="data/ppd").files()


@pytest.mark.parametrize("batch", ["-3", "0"])
def test_run_refuses_non_positive_batch_size(tmp_path, capsys, batch):
    spec = tmp_path / "s.yaml"
    spec.write_text(TOY)
    code, _, err = ganrm(capsys, "run", spec, "--cache", tmp_path / "c", "--batch-size", batch, "--out", tmp_path / "r")
    assert code == 2 and "--batch-size" in one_clean_line(err) and not (tmp_path / "c").exists()


def test_run_refuses_unknown_device(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(TOY)
    code, _, err = ganrm(capsys, "run", spec, "--cache", tmp_path / "c", "--device", "gpu", "--out", tmp_path / "r")
    assert code == 2 and "'gpu' is not one of auto, cpu, cuda, cuda:N, mps" in one_clean_line(err)


def test_runtime_section_is_validated(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(TOY + "runtime: {device: tpu, batch_size: 0}\n")
    with pytest.raises(SpecError) as exc:
        load_spec(spec)
    text = str(exc.value)
    assert "runtime.device" in text and "'tpu'" in text and "runtime.batch_size" in text


def test_plugin_file_with_syntax_error_names_file_and_line(tmp_path, capsys):
    (tmp_path / "broken.py").write_text("x = 1\ndef f(:\n    pass\n")
    spec = tmp_path / "s.yaml"
    spec.write_text(TOY.replace("plugins: [", "plugins: [broken.py, "))
    code, _, err = ganrm(capsys, "validate", spec)
    assert code == 2 and "Traceback" not in err
    assert f"{tmp_path / 'broken.py'}:2: syntax error" in err


def test_plugin_file_that_raises_names_file_and_line(tmp_path):
    (tmp_path / "raises.py").write_text("import os\n\nraise RuntimeError('boom')\n")
    spec = tmp_path / "s.yaml"
    spec.write_text(TOY.replace("plugins: [", "plugins: [raises.py, "))
    with pytest.raises(SpecError, match=r"raises.py:3: RuntimeError: boom"):
        load_spec(spec)


def test_duplicate_yaml_key_is_an_error_with_its_line(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(TOY + "metrics: {other: {metric: toy_brightness}}\n")
    with pytest.raises(SpecError, match=r"(?s)s.yaml:8:\d+.*YAML: duplicate key 'metrics' \(first given on line 7\)"):
        load_spec(spec)


def test_extra_columns_must_name_table_rows(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(TOY + "table: {extra_columns: {FT: {base: 'no', bsae: 'yes'}}}\n")
    with pytest.raises(SpecError, match=r"table.extra_columns.FT.bsae: no method named 'bsae'; did you mean 'base'\?"):
        load_spec(spec)


def test_prompt_table_without_text_column_is_caught_by_validate(tmp_path):
    (tmp_path / "prompts.csv").write_text("id,prompt\n1,a cat\n")
    spec = tmp_path / "s.yaml"
    spec.write_text(TOY.replace("{eval: {source: toy_prompts}}", f"{{eval: {{source: table, path: {tmp_path / 'prompts.csv'}}}}}"))
    with pytest.raises(SpecError, match=r"prompts.eval: prompt table .* has no column 'text' \(columns: id, prompt\); set `text_column: prompt`"):
        load_spec(spec)


def test_plugin_taking_a_builtin_name_replaces_it_with_a_warning(caplog):
    reg = Registry("metric")
    builtin, mine = object(), object()
    reg.add("fid", builtin)
    with caplog.at_level(logging.WARNING, logger="ganrm_bench"):
        reg.add("fid", mine, origin="plugin module my_plugins")
    assert reg.get("fid") is mine and "my_plugins registers the metric 'fid', which replaces the built-in one" in caplog.text
    later = Registry("metric")  # the user's plugin loaded before the built-ins
    later.add("fid", mine, origin="plugin module my_plugins")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganrm_bench"):
        later.add("fid", builtin)
    assert later.get("fid") is mine and "replaces the built-in" in caplog.text


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(TOY.replace("generators: {gen: {generator: toy_pattern}}",
                                "generators:\n  gen: &g {generator: toy_pattern, brightness: 1.0}\n  gen2: {<<: *g, brightness: 2.0}"))
    assert load_spec(spec).generators["gen2"].params == {"brightness": 2.0}
