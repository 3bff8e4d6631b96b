"""Small things a newcomer trips on: progress in logs, -v noise, wrapped tables, run folders of
another spec, plural plugin kinds, --version, validate's default, the offline asset table."""

import io
import logging
import time
from pathlib import Path

import pytest

from ganrm_bench.harness.runtime.progress import Progress
from tests.helpers import HELPERS
from tests.helpers.clirun import ganrm  # noqa: E402

LONG = "a row label long enough that an 80-column console would break the table row in two"
SPEC = f"""spec_version: 1
name: {{name}}
plugins: [{HELPERS / 'toy_plugins.py'}]
generators: {{{{gen: {{{{generator: toy_pattern}}}}}}}}
prompts: {{{{eval: {{{{source: toy_prompts}}}}}}}}
methods:
  {{row}}: {{{{method: toy_base, generator: gen, prompts: eval, label: "{LONG}"}}}}
metrics: {{{{brightness: {{{{metric: toy_brightness}}}}}}}}
"""


def spec(tmp_path, name="one", row="base") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(SPEC.format(name=name, row=row))
    return p


def test_line_progress_prints_periodically_and_at_the_end(monkeypatch):
    monkeypatch.delenv("GANRM_BENCH_PROGRESS", raising=False)
    stream = io.StringIO()
    p = Progress(True, lines=True, interval=0.01, stream=stream)
    with p.task("generate pool", 3) as advance:
        for _ in range(3):
            time.sleep(0.02)
            advance(1)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("generate pool: 1/3 (33%)") and "left" in lines[0]
    assert lines[-1].startswith("generate pool: 3/3 (100%)") and lines[-1].endswith("done")
    quiet = io.StringIO()
    with Progress(True, lines=True, interval=60, stream=quiet).task("fast", 5) as advance:
        advance(5)
    assert quiet.getvalue() == ""  # short steps say nothing
    assert Progress.auto(io.StringIO()).lines and Progress.auto(io.StringIO()).enabled


def test_verbose_keeps_third_party_loggers_at_warning():
    from ganrm_bench.harness.app.cli.common import setup_logging as _setup_logging

    try:
        _setup_logging(True)
        assert logging.getLogger("ganrm_bench.harness.engine.runner").isEnabledFor(logging.DEBUG)
        for name in ("matplotlib.font_manager", "PIL.PngImagePlugin", "filelock", "urllib3.connectionpool"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    finally:
        logging.getLogger("ganrm_bench").setLevel(logging.NOTSET)


def test_run_prints_table_rows_whole_and_guards_run_folders(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TOY_COUNTER_DIR", str(tmp_path))
    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    code, out, err = ganrm(capsys, "run", spec(tmp_path), "--cache", cache, "--out", run_dir)
    assert code == 0, err
    assert any(line.startswith("|") and LONG in line and line.rstrip().endswith("|") for line in out.splitlines())
    assert (run_dir / "gallery" / "base.png").exists()
    code, _, err = ganrm(capsys, "run", spec(tmp_path), "--cache", cache, "--out", run_dir)  # the same spec: fine
    assert code == 0, err
    other = spec(tmp_path, "two", row="other")
    code, _, err = ganrm(capsys, "run", other, "--cache", cache, "--out", run_dir)
    assert code == 2 and "holds a run of spec 'one', not of 'two'" in err and "--overwrite" in err
    assert (run_dir / "gallery" / "base.png").exists()  # refused before anything changed
    code, _, err = ganrm(capsys, "run", other, "--cache", cache, "--out", run_dir, "--overwrite")
    assert code == 0, err
    assert (run_dir / "gallery" / "other.png").exists() and not (run_dir / "gallery" / "base.png").exists()


@pytest.mark.parametrize("kind, title", [("generators", "generator plugins"), ("generator", "generator plugins"),
                                         ("prompt", "prompts plugins"), ("metrics", "metric plugins")])
def test_list_accepts_singular_and_plural_kinds(capsys, kind, title):
    code, out, err = ganrm(capsys, "list", kind)
    assert code == 0 and title in out, err


def test_list_unknown_kind_suggests(capsys):
    code, _, err = ganrm(capsys, "list", "genrators")
    assert code == 2 and "did you mean 'generator'" in err


def test_version(capsys):
    from importlib.metadata import version

    code, out, _ = ganrm(capsys, "--version")
    assert code == 0 and out.strip() == f"ganrm-bench {version('ganrm-bench')}"


def test_validate_defaults_to_the_mini_table1(capsys):
    code, out, err = ganrm(capsys, "validate")
    assert code == 0, err
    assert "ok " in out and "benchmarks/mini/table1.yaml" in out and "5 methods" in out


def test_offline_asset_error_is_one_line_per_asset():
    from ganrm_bench.harness.spec.assets import _missing_message
    from ganrm_bench.harness.store.assets import AssetStatus, hub_asset, local_asset

    missing = [AssetStatus(local_asset(f"data/d{i}"), [f"images.e{i}", "images.x", "images.y"], "missing", detail="missing data") for i in range(5)]
    missing.append(AssetStatus(hub_asset("org/model", ["config.json"], what="weights"), ["generators.g"], "failed", detail="HTTPError 401"))
    lines = _missing_message("t", missing, "offline run").splitlines()
    assert len(lines) == 1 + 1 + 6 + 1  # title, header, one per asset, the failure's reason
    assert all(f"data/d{i}" in lines[2 + i] and "(+1)" in lines[2 + i] for i in range(5))
    assert "org/model" in lines[7] and lines[8].strip() == "failed: HTTPError 401"


def test_run_without_a_spec_says_which_spec_it_runs(tmp_path, capsys, monkeypatch):
    from ganrm_bench.harness.app.services.specs import DEFAULT_SPEC

    monkeypatch.chdir(tmp_path)  # another directory: the default is the installed package's spec
    for args in (("run", "--dry-run"), ("plan",), ("validate",)):
        code, out, err = ganrm(capsys, *args, "--cache", tmp_path / "cache")
        assert code == 0, (args, err)
        assert f"no spec given: using the default, the miniature world's Table 1 ({DEFAULT_SPEC})" in " ".join(err.split()), args
    code, out, err = ganrm(capsys, "validate", "mini/table1")
    assert code == 0 and "no spec given" not in err


def test_a_mistyped_spec_gets_a_did_you_mean(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = ganrm(capsys, "run", "mini/tabel1")
    assert code == 2 and "mini/tabel1: spec file not found; did you mean 'mini/table1'?" in err
    assert "Traceback" not in err and not (tmp_path / "reports").exists()
    (tmp_path / "specs").mkdir()
    spec(tmp_path / "specs", name="mine")
    code, out, err = ganrm(capsys, "validate", "specs/mien.yaml")  # a file beside it, written as it was given
    assert code == 2 and "did you mean 'specs/mine.yaml'?" in err
    code, out, err = ganrm(capsys, "validate", "zzz_nothing_like_it")
    assert code == 2 and "did you mean" not in err and "a shipped spec by name: " in err and "mini/table1" in err


def test_fetch_assets_dry_run_of_a_spec_without_downloads_says_so(tmp_path, capsys):
    cache = tmp_path / "cache"
    code, out, err = ganrm(capsys, "fetch-assets", "mini/table1", "--dry-run", "--cache", cache)
    assert code == 0, err
    assert "nothing to fetch: the spec needs no downloadable assets" in " ".join(out.split())
    assert not cache.exists()  # a dry run writes nothing


def test_validate_inputs_prints_no_ok_before_an_error(tmp_path, capsys):
    p = spec(tmp_path)
    p.write_text(p.read_text().replace("{source: toy_prompts}", f"{{source: text_file, path: {tmp_path / 'absent.txt'}}}"))
    code, out, err = ganrm(capsys, "validate", p)
    assert code == 0 and out.startswith("ok ")  # the spec itself is sound
    code, out, err = ganrm(capsys, "validate", p, "--inputs")
    assert code == 2 and "absent.txt does not exist" in err
    assert "ok" not in out  # nothing claimed fine before the error
