"""Compute accounting on toy plugins: every row reports its sampling NFE per delivered sample
(K × the generator's NFE for best-of-K), the RM's training data as amortised `train_nfe`, scorer
calls, and the seconds its artifacts recorded when computed — the same numbers on a cached re-run."""

import math

import pytest

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cost import split_graph
from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import HELPERS
from tests.helpers.toy_plugins import count  # noqa: E402

TOY_NFE = 3  # toy_pattern.nfe_per_sample()


def _by_row(results):
    return results.set_index("row")


def test_rows_report_sampling_and_training_compute(tmp_path, counters):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    store = Store(tmp_path / "store")
    res = _by_row(run_spec(spec, Context(store=store)).results)
    assert res.loc["base", "nfe"] == TOY_NFE
    assert res.loc["best4", "nfe"] == 4 * TOY_NFE and res.loc["best2", "nfe"] == 2 * TOY_NFE
    assert res.loc["base", "scorer_calls"] == 0 and res.loc["best4", "scorer_calls"] == 4
    # the RM's negatives (3 prompts × k=2) are training data, amortised over the 6 delivered samples
    assert res.loc["base", "train_nfe"] == 0 and res.loc["best4", "train_nfe"] == 3 * 2 * TOY_NFE / 6
    assert (res["seconds"] > 0).all() and res["seconds"].map(math.isfinite).all()
    # a row's seconds are the sum of what its graph's stored artifacts recorded (counted, not timed here)
    for row in ("base", "best4"):
        sampling, training = split_graph(Builder(spec, Context(store=store), 0).method(row))
        recorded = [store.manifest(n.key)["cost"]["seconds"] for n in sampling + training if n.op.stored and store.has(n.key)]
        assert res.loc[row, "seconds"] == pytest.approx(sum(recorded), rel=1e-12)
    assert len(split_graph(Builder(spec, Context(store=store), 0).method("best4"))[1]) > 0  # best4 also pays for its RM


def test_cached_rerun_reports_the_recorded_cost(tmp_path, counters):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    store = Store(tmp_path / "store")
    cold = run_spec(spec, Context(store=store)).results
    generated = count(counters, "generated")
    warm = run_spec(spec, Context(store=store))
    assert sum(warm.computed.values()) == 0 and count(counters, "generated") == generated
    cols = ["nfe", "train_nfe", "scorer_calls", "train_steps", "seconds"]
    assert warm.results[cols].equals(cold[cols])


def test_costs_are_in_the_manifests(tmp_path, counters):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    store = Store(tmp_path / "store")
    run_spec(spec, Context(store=store))
    pools = [a for a in store.artifacts() if a.producer == "pool"]
    nfe = sorted(a.manifest["cost"]["nfe"] for a in pools)
    assert nfe == sorted([6 * 4 * TOY_NFE, 3 * 2 * TOY_NFE, 6 * 2 * TOY_NFE, 6 * 1 * TOY_NFE])
    assert all(a.manifest["cost"]["seconds"] >= 0 for a in store.artifacts())


def test_training_ops_split_the_graph(tmp_path, counters):
    spec = load_spec(HELPERS / "toy_spec.yaml")
    b = Builder(spec, Context(store=Store(tmp_path / "store")), 0)
    sampling, training = split_graph(b.method("best4"))
    assert {n.op.name for n in training} == {"train_scorer", "pool", "images", "prompts"}
    assert [n.params["k"] for n in training if n.op.name == "pool"] == [2]
    assert [n.params["k"] for n in sampling if n.op.name == "pool"] == [4]
    # the generator plugin feeds both: it is sampling (shared nodes count where they are needed at inference)
    assert sum(n.op.name == "plugin" for n in sampling) == 1


def _synthetic_results(spec, nfe):
    """A results table as a run writes it: one cell per (row, column) with a value, CI and NFE."""
    from ganrm_bench.harness.engine.runner import RESULT_COLUMNS

    rows = []
    for i, (row, n) in enumerate(nfe.items()):
        for col in spec.table.columns or list(spec.metrics):
            rows.append({c: None for c in RESULT_COLUMNS} | {
                "spec": spec.name, "row": row, "column": col, "seed": 0, "scope": "seed", "value": 100.0 + i,
                "ci_low": 99.0 + i, "ci_high": 101.0 + i, "n": 6, "direction": "higher", "convention": "toy", "nfe": n})
    import pandas as pd

    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def test_compute_curves_one_line_per_method_in_nfe_order(tmp_path):
    from ganrm_bench.harness.report.figures import compute_lines, write_compute_curves
    from ganrm_bench.harness.report.write import write_run

    spec = load_spec(HELPERS / "toy_spec.yaml")
    results = _synthetic_results(spec, {"base": 3.0, "best4": 12.0, "best2": 6.0})
    assert compute_lines(spec, results) == {"toy_base": ["base"], "toy_best · rm": ["best2", "best4"]}
    write_run(tmp_path / "run", spec, "toy_spec.yaml", results, {"seconds": 0})
    from PIL import Image

    with Image.open(tmp_path / "run" / "figures" / "compute.png") as im:
        assert im.size[0] > 200 and im.size[1] > 200
    # nothing to draw: no NFE spread (every row equal, or unknown)
    same = _synthetic_results(spec, {"base": 3.0, "best4": 3.0, "best2": 3.0})
    assert compute_lines(spec, same) == {} and write_compute_curves(tmp_path / "same", spec, same) is None
    unknown = _synthetic_results(spec, {"base": math.nan, "best4": math.nan, "best2": math.nan})
    assert write_compute_curves(tmp_path / "unknown", spec, unknown) is None
    assert not (tmp_path / "same" / "figures" / "compute.png").exists()
