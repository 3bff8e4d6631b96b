"""The built distribution, installed where the repository cannot be seen: the sdist holds the
owner's folders, a wheel built from that sdist holds one import package `ganrm_bench` (with the
mini world's weights, the GAN-RM configs and the benchmark specs), and in a fresh venv, from a
directory with its own `metrics/` and `harness/` packages, `ganrm-bench list`, a toy spec through
the CLI and a reduced mini Table 1 through `ganrm_bench.run` all work.

The fresh venv reaches the heavy dependencies (torch, ...) through a .pth line naming the
site-packages torch lives in (no nested .pth runs from there, so no editable install leaks in)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO  # noqa: E402

FOLDERS = {"harness": "harness", "methods": "methods", "metrics": "metrics", "mini": "mini"}
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", "reports", "tests", ".cache",
                                    ".pytest_cache", ".benchmarks")

pytestmark = pytest.mark.slow


def _sh(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 300) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _fresh_venv(path: Path) -> Path:
    import torch

    venv.EnvBuilder(with_pip=False).create(path)
    site = next(path.glob("lib/python*/site-packages"))
    (site / "heavy_dependencies.pth").write_text(str(Path(torch.__file__).resolve().parents[1]) + "\n")
    return path / "bin" / "python"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, venv bin, work dir with decoy packages, env, sdist names, wheel names)."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", GANRM_BENCH_PROGRESS="0", GANRM_BENCH_CACHE=str(tmp / "cache"))
    python = _fresh_venv(tmp / "venv")
    version = _sh([str(python), "-c", "import setuptools; print(setuptools.__version__)"], tmp, env).strip()
    if int(version.split(".")[0]) < 69:
        pytest.skip(f"building needs setuptools>=69 beside torch (found {version})")
    src, dist = tmp / "src", tmp / "dist"
    shutil.copytree(REPO, src, ignore=NOT_SOURCE)
    build = "import sys; from setuptools import build_meta as b; print(getattr(b, sys.argv[1])(sys.argv[2]))"
    sdist = dist / _sh([str(python), "-c", build, "build_sdist", str(dist)], src, env).strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        sdist_names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
        tar.extractall(tmp / "unpacked", filter="data")
    unpacked = next((tmp / "unpacked").iterdir())
    wheel = dist / _sh([str(python), "-c", build, "build_wheel", str(dist)], unpacked, env).strip().splitlines()[-1]
    wheel_names = zipfile.ZipFile(wheel).namelist()
    _sh([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)], tmp, env)
    work = tmp / "lab"
    for decoy in ("metrics", "harness", "methods"):  # a lab's own packages beside its notebook
        (work / decoy).mkdir(parents=True)
        (work / decoy / "__init__.py").write_text(f"raise ImportError('the lab\\'s own {decoy} package was imported')\n")
    return python, python.parent, work, env, sdist_names, wheel_names


def _repo_files(folder: str, suffixes: tuple[str, ...]) -> set[str]:
    return {p.relative_to(REPO / folder).as_posix() for p in (REPO / folder).rglob("*")
            if p.is_file() and p.suffix in suffixes and "__pycache__" not in p.parts}


def test_sdist_keeps_the_owners_folders(installed):
    names = set(installed[4])
    for folder in (*FOLDERS, "ganrm_bench", "benchmarks/mini", "benchmarks/paper"):
        missing = {f"{folder}/{f}" for f in _repo_files(folder, (".py", ".yaml", ".safetensors", ".json"))} - names
        assert not missing, f"not in the sdist: {sorted(missing)}"
    assert "pyproject.toml" in names and "mini/weights/generator.safetensors" in names


def test_wheel_is_one_package_with_its_data(installed):
    names = set(installed[5])
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"ganrm_bench"}
    for folder, package in FOLDERS.items():  # every module, weight file and config of the owner's folders
        missing = {f for f in _repo_files(folder, (".py", ".safetensors", ".json")) if f"ganrm_bench/{package}/{f}" not in names}
        assert not missing, f"{folder}: not in the wheel: {sorted(missing)}"
    assert {f"ganrm_bench/benchmarks/{f}" for f in _repo_files("benchmarks", (".yaml",))} <= names
    assert not any(n.startswith("ganrm_bench/benchmarks/perf") for n in names)
    assert any(n.startswith("ganrm_bench/mini/weights/") and n.endswith(".safetensors") for n in names)


def test_installed_package_is_used_not_the_lab_folders(installed):
    python, _, work, env, *_ = installed
    shadowed = subprocess.run([str(python), "-c", "import metrics"], cwd=work, env=env, capture_output=True, text=True)
    assert "the lab's own metrics package was imported" in shadowed.stderr  # the decoys are really on the path
    code = "import ganrm_bench, ganrm_bench.metrics.fid, ganrm_bench.mini.common as c; print(ganrm_bench.__file__); print(c.WEIGHTS_DIR)"
    where, weights = _sh([str(python), "-c", code], work, env).split()
    venv_dir = python.parent.parent
    assert Path(where).is_relative_to(venv_dir) and Path(weights).is_relative_to(venv_dir)
    assert not Path(where).is_relative_to(REPO)


def test_cli_lists_plugins_and_runs_a_toy_spec(installed):
    _, bin_dir, work, env, *_ = installed
    listing = _sh([str(bin_dir / "ganrm-bench"), "list"], work, env)
    for name in ("mini_diffusion", "ganrm", "fid", "rm_at_k", "mini_conv"):
        assert name in listing
    for f in ("toy_spec.yaml", "toy_plugins.py"):
        shutil.copy(REPO / "tests" / "helpers" / f, work / f)
    _sh([str(bin_dir / "ganrm-bench"), "run", "toy_spec.yaml", "--out", "toy_run"], work, env)
    import pandas as pd

    results = pd.read_csv(work / "toy_run" / "results.csv")
    assert list(results["row"]) == ["base", "best4", "best2"] and results["value"].notna().all()


def test_python_api_runs_a_reduced_mini_table1_from_the_wheel(installed):
    python, _, work, env, *_ = installed
    code = textwrap.dedent("""
        import ganrm_bench as gb
        small = {"prompts.eval.n_prompts": 10, "prompts.rm_neg.n_prompts": 20, "prompts.rm_boot.n_prompts": 20,
                 "images.ppd.n": 20, "images.fid_ref.n": 20, "generators.mini.steps": 2, "scorers.ganrm.epochs": 2,
                 "table.rows": ["base", "rm10"], "methods.rm10.k": 2}
        r = gb.run("mini/table1", overrides=small, out="mini_run")
        print(r.results.head())
        print("SPEC", r.info["spec_path"])
        print("ROWS", ",".join(f"{a}:{b}" for a, b in zip(r.results["row"], r.results["column"])))
    """)
    out = _sh([str(python), "-c", code], work, env)
    lines = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith(("SPEC ", "ROWS ")))
    assert Path(lines["SPEC"]).is_relative_to(python.parent.parent)  # the spec shipped in the wheel
    assert lines["ROWS"] == "base:fid,base:align,base:kid,rm10:fid,rm10:align,rm10:kid"
    assert (work / "mini_run" / "table.md").exists()
