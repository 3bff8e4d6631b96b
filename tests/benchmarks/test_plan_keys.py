"""Every artifact key of every shipped spec's plan (seeds 0-2), against the committed list: a key
names an artifact forever, so a change that moves one must be deliberate (then rewrite the list:
`python -m tests.benchmarks.test_plan_keys` and say why in the commit). Paper specs plan without
their weights (provisional identities), so their keys are pinned too. The keys are those of the
pinned x86-64-v3 CPU class (harness.runtime.cpu_pin): the same on every such machine.

Changed on purpose: issue 24 (CPU numerics pinned, so every numerics-sensitive key carries the class
`cpu-pin1-v3`; metric keys carry their bootstrap seed; the GAN-RM scorer is version 3, with dropout
masks that no longer depend on the CPU vendor)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

from ganrm_bench.harness.engine.builder import Builder
from ganrm_bench.harness.engine.cells import build_cells
from ganrm_bench.harness.runtime import cpu_pin
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.spec.load import load_spec
from ganrm_bench.harness.store.artifacts import Store
from tests.helpers import REPO

GOLDEN = Path(__file__).parent / "golden" / "plan_keys.json"
NOT_SPECS = {"common.yaml", "selectors.yaml"}


def plan_keys(cache: Path) -> dict[str, list[str]]:
    """{"benchmarks/<spec>.yaml#<seed>": sorted artifact keys of its plan}."""
    out = {}
    root = REPO / "benchmarks"
    for path in sorted(root.glob("mini/*.yaml")) + sorted(root.glob("*.yaml")):
        if path.name in NOT_SPECS:
            continue
        spec = load_spec(path)
        for seed in sorted(set(spec.seeds) | {0, 1, 2}):
            ctx = Context(store=Store(cache), device="cpu")
            cells = build_cells(spec, Builder(spec, ctx, seed, planning=True))
            out[f"{path.relative_to(REPO)}#{seed}"] = sorted({n.key for c in cells for n in c.node.walk()})
    return out


@pytest.mark.skipif(cpu_pin.cpu_class() != "cpu-pin1-v3",
                    reason=f"the committed keys are those of the pinned x86-64-v3 CPU class; this process's is {cpu_pin.cpu_class()}")
def test_plan_keys_are_the_committed_ones(tmp_path):
    expected = json.loads(GOLDEN.read_text())
    found = plan_keys(tmp_path / "cache")
    assert found.keys() == expected.keys()
    changed = {k: (len(set(found[k]) - set(expected[k])), len(set(expected[k]) - set(found[k]))) for k in found if found[k] != expected[k]}
    assert not changed, f"keys changed (new, gone) per spec and seed: {changed}"


if __name__ == "__main__":  # rewrite the committed list (a deliberate key change)
    with tempfile.TemporaryDirectory() as d:
        GOLDEN.write_text(json.dumps(plan_keys(Path(d)), indent=0) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)
