"""Fixtures of the core tests: a finished toy run (130 prompts, rows base / bright / best4) shared by the
study and HTML report tests, built once per session through the real runner and write_run; and the
environment of a `ganrm-bench` subprocess (private cache, toy counters)."""

import os
from pathlib import Path

import pytest

from tests.helpers import HELPERS

SPEC = """
spec_version: 1
name: toy-study
plugins: [{plugins}]
seeds: [0]
generators:
  gen: {{generator: toy_pattern}}
  bright: {{generator: toy_pattern, brightness: 40}}
prompts:
  eval: {{source: toy_prompts, n: {n}}}
  train: {{source: toy_prompts, n: 3, prefix: t}}
images:
  ppd: {{source: toy_images}}
scorers:
  rm: {{scorer: toy_rm, train: {{positives: ppd, negatives: {{generator: gen, prompts: train, k: 2}}}}}}
  untrained: {{scorer: toy_rm, train: {{positives: ppd, negatives: {{generator: bright, prompts: train, k: 3}}}}}}
methods:
  base: {{method: toy_base, generator: gen, prompts: eval, label: Base}}
  bright: {{method: toy_base, generator: bright, prompts: eval, label: Bright}}
  best4: {{method: toy_best, generator: gen, prompts: eval, scorer: rm, k: 4, label: Best-of-4}}
metrics:
  brightness: {{metric: toy_brightness, label: Brightness}}
reference:
  source: toy paper
  values: {{base: {{brightness: 99.0}}, bright: {{brightness: 1.0}}}}
  tolerance: {{brightness: 5.0}}
"""


def make_run(root: Path, n: int = 130) -> Path:
    """Run the toy spec into root/run with its own store root/cache; returns the run directory."""
    from ganrm_bench.harness.engine.runner import run_spec
    from ganrm_bench.harness.report.write import write_run
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.spec.load import load_spec
    from ganrm_bench.harness.store.artifacts import Store

    spec_path = root / "toy_study.yaml"
    spec_path.write_text(SPEC.format(plugins=HELPERS / "toy_plugins.py", n=n))
    spec = load_spec(spec_path)
    ctx = Context(store=Store(root / "cache"))
    outcome = run_spec(spec, ctx)
    assert not outcome.failures, outcome.failures
    run_dir = root / "run"
    write_run(run_dir, spec, str(spec_path), outcome.results, {"cache": str(ctx.store.root), "failures": []}, outcome.samples, outcome.records)
    return run_dir


@pytest.fixture(scope="session")
def toy_run_template(tmp_path_factory):
    import os

    counters = tmp_path_factory.mktemp("counters")
    os.environ.setdefault("TOY_COUNTER_DIR", str(counters))
    return make_run(tmp_path_factory.mktemp("toyrun"))


@pytest.fixture
def toy_run(toy_run_template, tmp_path):
    """A private copy of the run directory (the store is shared, read-only for these tests)."""
    import shutil

    dst = tmp_path / "run"
    shutil.copytree(toy_run_template, dst)
    return dst


@pytest.fixture
def env(tmp_path):
    counters = tmp_path / "counters"
    counters.mkdir()
    e = {**os.environ, "TOY_COUNTER_DIR": str(counters), "GANRM_BENCH_CACHE": str(tmp_path / "cache"), "GANRM_BENCH_PROGRESS": "0"}
    return e


@pytest.fixture
def inproc_env(env, monkeypatch):
    """`env` (private cache, toy counters) made this process's own too, for runs in-process beside subprocesses."""
    for name in ("GANRM_BENCH_CACHE", "TOY_COUNTER_DIR"):
        monkeypatch.setenv(name, env[name])
    return env
