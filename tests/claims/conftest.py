"""The mini tables the claims read, computed once per session in one store (cold in CI)."""

from __future__ import annotations

import os

import pytest

from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import REPO

MINI = REPO / "benchmarks" / "mini"
SEEDS = [0, 1, 2]


@pytest.fixture(scope="session")
def mini_tables(tmp_path_factory):
    """mini_tables(name) -> that mini table's RunOutcome over SEEDS, computed once in a shared store
    (cold; GANRM_CLAIMS_STORE=DIR reuses a store, e.g. the one benchmarks/perf/bench_mini_claims.py filled)."""
    store = Store(os.environ.get("GANRM_CLAIMS_STORE") or tmp_path_factory.mktemp("mini-store"))
    done = {}

    def get(name: str):
        if name not in done:
            outcome = run_spec(load_spec(MINI / f"{name}.yaml"), Context(store=store), seeds=SEEDS)
            assert not outcome.failures, outcome.failures
            done[name] = outcome
        return done[name]

    return get
