"""docs/plugins.md's example runs: a spec-local metric and method, loaded from files next to the
spec; the metric's values equal an independent computation on the rows' samples."""


import numpy as np
from PIL import Image

from ganrm_bench.harness.engine.runner import run_spec
from ganrm_bench.harness.plugins.registry import SCORERS
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import REPO

EXAMPLE = REPO / "docs" / "examples" / "ink.yaml"


def test_plugin_guide_example_runs_and_its_metric_is_right(tmp_path):
    spec = load_spec(EXAMPLE)
    ctx = Context(store=Store(tmp_path / "cache"))
    outcome = run_spec(spec, ctx)
    assert not outcome.failures, outcome.failures
    values = outcome.results.set_index("row")["value"]
    assert set(values.index) == {"base", "best4", "worst4"}
    for row, items in outcome.samples.items():
        assert len(items) == 6  # one sample per prompt
        dark = [(np.asarray(Image.open(it.path).convert("RGB"), dtype=float).mean(axis=-1) < 100).mean() for it in items]
        assert values[row] == np.mean(dark)
    annotator = SCORERS.get("mini_annotator")({})
    ctx.device = "cpu"

    def scores(row):
        items = outcome.samples[row]
        return annotator.score([it.load() for it in items], [it.prompt for it in items], ctx)

    best, worst = scores("best4"), scores("worst4")
    assert np.all(worst <= best + 1e-12) and np.any(worst < best)  # argmin vs argmax of the same 4 samples
