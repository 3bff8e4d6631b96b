"""Runs the report tests read: the monitor spec run (a row gaming its proxy, a reward-model card,
flags), and three toy runs for comparisons — the reference (seed 0), another seed on the same
prompts, and other prompts — each with its units.parquet, on one store."""

import os

import pytest

from tests.helpers import HELPERS


@pytest.fixture(scope="session")
def monitored_run(tmp_path_factory):
    from ganrm_bench.harness.app.services.run import evaluate
    from ganrm_bench.harness.report.write import write_run
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.spec.load import load_spec
    from ganrm_bench.harness.store.artifacts import Store

    d = tmp_path_factory.mktemp("monitored")
    os.environ.setdefault("TOY_COUNTER_DIR", str(tmp_path_factory.mktemp("counters")))
    spec = load_spec(HELPERS / "monitor_spec.yaml")
    outcome = evaluate(spec, Context(store=Store(d / "store")))
    write_run(d / "run", spec, "monitor_spec.yaml", outcome.results, {}, outcome.samples, outcome.records, outcome.units,
              outcome.monitor)
    return d / "run"


@pytest.fixture(scope="session")
def toy_runs(tmp_path_factory):
    """{"ref": seed 0, "seed1": seed 1 (same prompts), "more": 8 eval prompts instead of 6}: run dirs."""
    import ganrm_bench as gb

    d = tmp_path_factory.mktemp("toyruns")
    os.environ.setdefault("TOY_COUNTER_DIR", str(tmp_path_factory.mktemp("counters")))
    spec, cache = HELPERS / "toy_spec.yaml", d / "cache"
    return {
        "ref": gb.run(spec, out=d / "ref", cache=cache, seeds=[0]).dir,
        "seed1": gb.run(spec, out=d / "seed1", cache=cache, seeds=[1]).dir,
        "more": gb.run(spec, out=d / "more", cache=cache, seeds=[0], overrides={"prompts.eval.n": 8}).dir,
    }
