"""`plugins:` in an included file: resolved next to that file, and kept when the including spec has
its own list (the lists add up)."""

import shutil

from ganrm_bench.harness.spec.load import load_raw, load_spec
from tests.helpers import HELPERS

INK = '''
import numpy as np
from ganrm_bench.harness.plugins.base import Metric, MetricResult
from ganrm_bench.harness.plugins.registry import METRICS


@METRICS.register("ink_included")
class Ink(Metric):
    """Mean darkness."""

    def compute(self, samples, ctx, *, reference=None):
        v = np.array([255 - np.asarray(im, dtype=float).mean() for im in samples.load()])
        return MetricResult(float(v.mean()), float("nan"), float("nan"), len(v), "ink", per_sample=v)
'''


def test_included_plugin_file_resolves_next_to_its_spec_and_lists_merge(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "ink.py").write_text(INK)
    (shared / "base.yaml").write_text("plugins: [ink.py]\nmetrics:\n  ink: {metric: ink_included}\n")
    top = tmp_path / "specs" / "deep"
    top.mkdir(parents=True)
    shutil.copy(HELPERS / "toy_plugins.py", top / "toy_plugins.py")
    (top / "spec.yaml").write_text(
        "include: [../../shared/base.yaml]\nname: t\nplugins: [toy_plugins.py]\n"
        "generators: {gen: {generator: toy_pattern}}\nprompts: {eval: {source: toy_prompts}}\n"
        "methods: {base: {method: toy_base, generator: gen, prompts: eval}}\n"
    )
    raw = load_raw(top / "spec.yaml")
    assert raw["plugins"] == [str(shared / "ink.py"), str(top / "toy_plugins.py")]
    spec = load_spec(top / "spec.yaml")  # "unknown metric" if ink.py were looked for in specs/deep/
    assert spec.metrics["ink"].metric == "ink_included"
    assert spec.plugins == ["../../shared/ink.py", "toy_plugins.py"]  # relative to the top spec
